"""Infotext paste-back (PNG Info → Send to txt2img, the API's `infotext`) and alwayson_scripts args."""
import math

import pytest
from modules import infotext_utils
from webui_env import TITLE

from lib_lcm.rules import infotext

ON = [True, 1.0, 4, 1.0]


@pytest.fixture
def sd15(webui):
    webui.add_lora()
    return webui


def paste_into_fresh_tab(webui, text):
    ours = webui.runner().by_title(TITLE)
    params, values = infotext_utils.paste(ours.infotext_fields, text)
    return params, [values[c] for c in ours.controls]  # enabled, weight, steps, cfg, preset


def test_pasting_our_infotext_restores_the_accordion_and_strips_our_tag(sd15):
    _, processed = sd15.txt2img([True, 0.75, 6, 1.5], enable_hr=True, hr_prompt="hires cat")
    params, values = paste_into_fresh_tab(sd15, processed.infotexts[0])
    assert values == [True, 0.75, 6.0, 1.5, "LCM-LoRA"]
    assert params["Prompt"] == "a cat"
    assert params["Hires prompt"] == "hires cat"


def test_regenerating_from_a_pasted_infotext_gives_one_tag(sd15):
    _, processed = sd15.txt2img(ON)
    params, (enabled, weight, steps, cfg, preset) = paste_into_fresh_tab(sd15, processed.infotexts[0])
    p, again = sd15.txt2img([enabled, weight, int(steps), cfg, preset], prompt=params["Prompt"])
    assert p.all_prompts == ["a cat <lora:lcm-lora-sdv1-5:1>"]
    assert again.infotexts[0].split("\n")[0] == processed.infotexts[0].split("\n")[0]


def test_an_infotext_without_our_key_turns_the_accordion_off(sd15):
    _params, values = paste_into_fresh_tab(sd15, "a dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    assert values[0] is False
    assert values[1:] == [infotext_utils.UNCHANGED] * 4


def test_a_tcd_preset_round_trips_through_the_infotext(sd15):
    sd15.add_lora(name="TCD-SD15-LoRA")
    p, processed = sd15.txt2img([True, 1.0, 4, 1.0, "TCD-LoRA"])
    assert p.sampler_name == "TCD" and p.all_prompts == ["a cat <lora:TCD-SD15-LoRA:1>"]
    params, values = paste_into_fresh_tab(sd15, processed.infotexts[0])
    assert params[infotext.KEY_PRESET] == "TCD-LoRA" and values[4] == "TCD-LoRA"
    assert params["Prompt"] == "a cat"


def test_an_old_infotext_without_a_preset_pastes_as_lcm_lora(sd15):
    _, processed = sd15.txt2img(ON)
    old = processed.infotexts[0].replace("LCM-LoRA preset: LCM-LoRA, ", "")
    assert "preset" not in old
    _params, values = paste_into_fresh_tab(sd15, old)
    assert values[0] is True and values[4] == "LCM-LoRA"


def test_a_typed_tag_survives_paste(sd15):
    _, processed = sd15.txt2img(ON, prompt="a cat <lora:lcm-lora-sdv1-5:0.5>")
    params, _ = paste_into_fresh_tab(sd15, processed.infotexts[0])
    assert params["Prompt"] == "a cat <lora:lcm-lora-sdv1-5:0.5>"


def test_infotext_even_when_skipped_parses(webui):
    _, processed = webui.txt2img(ON)
    params, values = paste_into_fresh_tab(webui, processed.infotexts[0])
    assert "latent-consistency/lcm-lora-sdv1-5" in params[infotext.KEY_SKIPPED]
    assert values[0] is False


def test_api_positional_args(sd15):
    p, _processed = sd15.txt2img(ON, ui=False, steps=50, cfg_scale=7.0, sampler_name="Euler")
    assert (p.steps, p.cfg_scale, p.sampler_name) == (4, 1.0, "LCM")
    assert p.sampled[0].loras == [("lcm-lora-sdv1-5", ["1"])]


def test_api_without_our_args_is_off(sd15):
    p, _processed = sd15.txt2img([], ui=False, steps=50, sampler_name="Euler")
    assert (p.steps, p.sampler_name, p.all_prompts) == (50, "Euler", ["a cat"])


def test_api_short_args_take_the_ui_defaults(sd15):
    p, _ = sd15.txt2img([True], ui=False, steps=50)
    assert (p.steps, p.cfg_scale) == (4, 1.0)


def test_api_a_single_dict_by_name(sd15):
    p, _processed = sd15.txt2img([{"enabled": True, "steps": 6, "cfg": 1.5, "weight": 0.8}], ui=False)
    assert (p.steps, p.cfg_scale) == (6, 1.5)
    assert p.all_prompts == ["a cat <lora:lcm-lora-sdv1-5:0.8>"]


@pytest.mark.parametrize(("args", "expect_on", "message"), [
    ([True, math.nan, 4, 1.0], True, "'weight' must be a finite number"),
    ([True, 1.0, "four", 1.0], True, "'steps' must be a number"),
    ([True, 1.0, -4, 1.0], True, "'steps' -4 is not a step count"),
    ([True, 1.0, 4, 1e9], True, None),  # accepted, then clamped by the plan
    (["perhaps", 1.0, 4, 1.0], False, "'enabled' must be true or false"),
    ([{"enabled": True, "sampler": "LCM"}], True, "unknown argument 'sampler'"),
    ([[True]], False, "'enabled' must be true or false"),
])
def test_api_bad_args_never_break_the_generation(sd15, args, expect_on, message):
    p, processed = sd15.txt2img(args, ui=False)  # run() asserts no hook raised
    assert (p.sampler_name == "LCM") is expect_on
    if message:
        assert message in p.extra_generation_params[infotext.KEY_INPUT]
        assert message in processed.infotexts[0]
    if expect_on:
        assert 1.0 <= p.cfg_scale <= 2.5 and 2 <= p.steps <= 8


def test_api_disabled_with_garbage_values_stays_untouched(sd15):
    p, processed = sd15.txt2img([False, "heavy", -3, "x"], ui=False, steps=30, sampler_name="Euler")
    assert (p.steps, p.sampler_name, p.all_prompts) == (30, "Euler", ["a cat"])
    assert "LCM-LoRA" not in processed.infotexts[0]
