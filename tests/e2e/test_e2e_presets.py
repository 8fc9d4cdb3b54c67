"""The accordion's presets in a real WebUI, through the HTTP API: each preset's own file, sampler,
schedule and range, a preset the loaded architecture lacks, and style LoRAs beside the acceleration one."""
from __future__ import annotations

import pytest
from e2e_support import lora_file

from lib_lcm.rules import catalog

TITLE = "LCM-LoRA"


def on(preset: str, steps: int = 4, cfg: float = 1.0, weight: float = 1.0) -> dict:
    return {TITLE: {"args": [True, weight, steps, cfg, preset]}}


def infotext(info: dict) -> str:
    return info["infotexts"][0]


def test_every_preset_sampler_and_schedule_exists_in_this_webui(api):
    samplers = {s["name"] for s in api.get("/sdapi/v1/samplers")}
    schedules = {s["label"] for s in api.get("/sdapi/v1/schedulers")}
    for entry in catalog.CATALOG:
        assert entry.sampler in samplers and entry.scheduler in schedules, entry.key


@pytest.mark.parametrize("family", catalog.FAMILIES)
def test_each_preset_runs_its_recipe_with_its_own_file(api, model, family):
    entry = catalog.for_architecture(model.architecture, family)
    if entry is None:
        pytest.skip(f"{family} does not exist for {model.architecture.label}")
    with lora_file(api, entry.local_name, model.architecture) as name:
        info = api.generate("txt2img", {"prompt": "a cat", "steps": 30, "cfg_scale": 7, "sampler_name": "DPM++ 2M",
                                        "alwayson_scripts": on(family, steps=8, cfg=3.0)})
    text = infotext(info)
    assert info["prompt"] == f"a cat <lora:{name}:1>"
    assert info["sampler_name"] == entry.sampler
    assert (info["steps"], info["cfg_scale"]) == (entry.steps.maximum, entry.cfg.maximum)  # 8 and 3 clamped
    assert f"LCM-LoRA preset: {family}" in text and f"LCM-LoRA: {name}" in text
    assert f"Lora hashes: \"{name}:" in text or f"Lora hashes: {name}:" in text  # the WebUI loaded the file
    assert "Schedule type: SGM Uniform" in text
    if entry.timesteps:
        wanted = ",".join(map(str, entry.timesteps))
        assert f'LCM-LoRA timesteps: "{wanted}"' in text and f'LCM-LoRA explicit timesteps: "{wanted}"' in text
    if entry.sampler == "TCD":
        assert "TCD gamma: 0.3" in text


def test_a_preset_the_architecture_lacks_is_skipped_with_what_to_choose(api, model, lora):
    missing = [f for f in catalog.FAMILIES if catalog.for_architecture(model.architecture, f) is None]
    if not missing:
        pytest.skip(f"every preset exists for {model.architecture.label}")
    info = api.generate("txt2img", {"prompt": "a cat", "steps": 20, "alwayson_scripts": on(missing[0])})
    assert info["prompt"] == "a cat" and info["steps"] == 20
    assert f"{missing[0]} exists only for" in infotext(info) and "choose another preset" in infotext(info)


def test_a_style_lora_is_kept_beside_the_acceleration_weight(api, model, lora):
    with lora_file(api, "e2e-style-lora", model.architecture, seed=7) as style:
        prompt = f"a cat <lora:{style}:0.8>"
        info = api.generate("txt2img", {"prompt": prompt, "alwayson_scripts": on("LCM-LoRA", weight=0.9)})
    assert info["prompt"] == f"{prompt} <lora:{lora.name}:0.9>"
    text = infotext(info)
    assert "LCM-LoRA weight: 0.9" in text and style in text.split("Lora hashes:")[1]


def test_an_unknown_preset_falls_back_to_lcm_lora_and_says_so(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "alwayson_scripts": on("Turbo")})
    assert info["sampler_name"] == "LCM" and "LCM-LoRA preset: LCM-LoRA" in infotext(info)
    assert "'preset' must be one of" in infotext(info)
