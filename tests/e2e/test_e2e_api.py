"""The extension in a real WebUI, through the HTTP API (see conftest.py for how to run)."""
from __future__ import annotations

import re

import pytest
from e2e_support import FORGE_INFOTEXT_API, hires_fields, is_forge, png_base64, setting_ids

TITLE = "LCM-LoRA"
ON = {TITLE: {"args": [True, 1.0, 4, 1.0]}}


def tag(name: str, weight: str = "1") -> str:
    return f"<lora:{name}:{weight}>"


def count_accel_tags(prompt: str, name: str) -> int:
    return len(re.findall(rf"<lora:{re.escape(name)}:[^>]*>", prompt))


# --- discovery ---------------------------------------------------------------------------------

def test_listed_as_an_always_on_script_in_both_tabs(api):
    listed = api.get("/sdapi/v1/scripts")
    assert "lcm-lora" in listed["txt2img"] and "lcm-lora" in listed["img2img"]


def test_script_info_gives_the_api_argument_order_and_defaults(api):
    infos = [s for s in api.get("/sdapi/v1/script-info") if s["name"] == "lcm-lora"]
    assert {s["is_img2img"] for s in infos} == {False, True}
    for info in infos:
        assert info["is_alwayson"]
        args = info["args"]
        assert [a["value"] for a in args] == [False, 1.0, 4, 1.0, "LCM-LoRA"]
        assert "weight" in args[1]["label"].lower() and "steps" in args[2]["label"].lower()
        assert "cfg" in args[3]["label"].lower() and args[4]["label"] == "Preset"
        assert args[4]["choices"] == ["LCM-LoRA", "TCD-LoRA", "Hyper-SD", "SDXL-Lightning", "DMD2"]
        assert (args[2]["minimum"], args[2]["maximum"]) == (0, 8)


def test_settings_are_registered(api):
    options = api.get("/sdapi/v1/options")
    # Forge's GET options returns only the values set (modules/sysinfo.py get_config). A1111's answer holds
    # the settings known when modules/api/models.py was first imported: an extension that imports it while
    # the scripts load (ControlNet: internal_controlnet/external_code.py) leaves every extension setting out.
    if is_forge(api) or "lcm_lora_min_steps" not in options:
        assert {"setting_lcm_lora_min_steps", "setting_lcm_lora_max_cfg"} <= setting_ids(api)
        return
    assert options["lcm_lora_min_steps"] == 2 and options["lcm_lora_max_steps"] == 8
    assert options["lcm_lora_max_cfg"] == 2.5 and options["lcm_lora_set_sampler"] is True


def test_the_webui_has_the_lcm_sampler_and_the_sgm_uniform_schedule(api):
    assert "LCM" in {s["name"] for s in api.get("/sdapi/v1/samplers")}
    assert "SGM Uniform" in {s["label"] for s in api.get("/sdapi/v1/schedulers")}


def test_the_lora_file_is_in_the_webui_list(api, lora):
    assert lora.name in {item["name"] for item in api.get("/sdapi/v1/loras")}


# --- generation with the extension on -----------------------------------------------------------

def test_txt2img_runs_the_lcm_recipe_with_the_lora(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "steps": 50, "cfg_scale": 7, "sampler_name": "Euler",
                                    "alwayson_scripts": ON})
    assert (info["sampler_name"], info["steps"], info["cfg_scale"]) == ("LCM", 4, 1.0)
    assert info["all_prompts"] == [f"a cat {tag(lora.name)}"]
    text = info["infotexts"][0]
    assert "Schedule type: SGM Uniform" in text
    assert f"Lora hashes: \"{lora.name}:" in text or f"Lora hashes: {lora.name}:" in text  # the builtin applied it
    assert f"LCM-LoRA: {lora.name}, LCM-LoRA weight: 1, LCM-LoRA tag: added" in text
    assert "LCM-LoRA skipped" not in text and "LCM-LoRA arguments" not in text


def test_every_image_of_every_batch_gets_the_lora(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "batch_size": 2, "n_iter": 2, "alwayson_scripts": ON})
    assert len(info["infotexts"]) == 4 and len(info["images"]) == 4
    assert all(count_accel_tags(p, lora.name) == 1 for p in info["all_prompts"])
    assert all("Lora hashes" in t and "Sampler: LCM" in t for t in info["infotexts"])


def test_hires_fix_pass_gets_the_lora_lcm_and_clamped_steps(api, lora):
    forge = is_forge(api)
    # Forge's hires pass needs hr_additional_modules (processing.py sample() iterates it) and has its own CFG.
    extra = {**hires_fields(api), "hr_cfg": 7.0} if forge else {}
    info = api.generate("txt2img", {
        "prompt": "a cat", "enable_hr": True, "hr_scale": 1.5, "hr_upscaler": "Latent", "denoising_strength": 0.5,
        "hr_second_pass_steps": 20, "hr_sampler_name": "Euler", "hr_prompt": "a cat, detailed",
        "alwayson_scripts": ON, **extra})
    text = info["infotexts"][0]
    if forge:
        assert "Hires CFG Scale: 2.5" in text and "hires CFG 7 to 2.5" in text
    assert "Hires steps: 8" in text and "LCM-LoRA clamped: hires steps 20 to 8" in text
    assert f'Hires prompt: "a cat, detailed {tag(lora.name)}"' in text
    assert "Hires sampler" not in text or "Hires sampler: LCM" in text
    assert "Hires schedule type: SGM Uniform" in text or "Hires schedule type" not in text


def test_img2img_gets_the_lora_and_runs_every_step(api, lora):
    info = api.generate("img2img", {"prompt": "a cat", "init_images": [png_base64((200, 80, 40))],
                                    "denoising_strength": 0.5, "alwayson_scripts": ON})
    text = info["infotexts"][0]
    assert info["sampler_name"] == "LCM" and "Lora hashes" in text
    assert 'LCM-LoRA timesteps: "499,379,259,139"' in text and "LCM-LoRA steps run" not in text
    assert count_accel_tags(info["all_prompts"][0], lora.name) == 1


def test_inpaint(api, lora):
    info = api.generate("img2img", {"prompt": "a cat", "init_images": [png_base64((200, 80, 40))],
                                    "mask": png_base64((0, 0, 0), mask=True), "denoising_strength": 0.75,
                                    "inpainting_fill": 1, "alwayson_scripts": ON})
    assert info["sampler_name"] == "LCM" and "Lora hashes" in info["infotexts"][0]


def test_arguments_by_name(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "alwayson_scripts": {
        TITLE: {"args": [{"enabled": True, "steps": 2, "cfg": 1.5, "weight": 0.5}]}}})
    assert (info["steps"], info["cfg_scale"]) == (2, 1.5)
    assert info["all_prompts"] == [f"a cat {tag(lora.name, '0.5')}"]


def test_zero_takes_the_request_values_clamped(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "steps": 20, "cfg_scale": 7,
                                    "alwayson_scripts": {TITLE: {"args": [True, 1.0, 0, 0]}}})
    assert (info["steps"], info["cfg_scale"]) == (8, 2.5)
    assert "LCM-LoRA clamped: \"steps 20 to 8; CFG 7 to 2.5\"" in info["infotexts"][0] or \
        "LCM-LoRA clamped: steps 20 to 8; CFG 7 to 2.5" in info["infotexts"][0]


def test_a_tag_the_user_typed_is_not_doubled(api, lora):
    prompt = f"a cat {tag(lora.name, '0.5')}"
    info = api.generate("txt2img", {"prompt": prompt, "alwayson_scripts": ON})
    assert info["all_prompts"] == [prompt]
    assert "LCM-LoRA weight: 0.5, LCM-LoRA tag: from prompt" in info["infotexts"][0]


def test_regenerating_from_the_infotext_gives_one_tag(api, lora):
    if is_forge(api):
        pytest.skip(FORGE_INFOTEXT_API)
    first = api.generate("txt2img", {"prompt": "a cat", "alwayson_scripts": ON})
    again = api.generate("txt2img", {"infotext": first["infotexts"][0]})
    assert again["sampler_name"] == "LCM"
    assert count_accel_tags(again["all_prompts"][0], lora.name) == 1


def test_settings_bounds_apply_and_override_settings_do_not_leak(api, lora):
    capped = api.generate("txt2img", {"prompt": "a cat", "override_settings": {"lcm_lora_max_steps": 3},
                                      "alwayson_scripts": {TITLE: {"args": [True, 1.0, 8, 1.0]}}})
    assert capped["steps"] == 3
    after = api.generate("txt2img", {"prompt": "a cat", "alwayson_scripts": {TITLE: {"args": [True, 1.0, 5, 1.0]}}})
    assert after["steps"] == 5
    assert api.get("/sdapi/v1/options").get("lcm_lora_max_steps", 8) == 8  # Forge lists only values set


# --- off, missing, wrong -----------------------------------------------------------------------

def test_disabled_leaves_the_generation_untouched(api, lora):
    body = {"prompt": "a cat", "steps": 3, "cfg_scale": 5, "sampler_name": "Euler"}
    for extra in ({}, {"alwayson_scripts": {TITLE: {"args": [False, 1.0, 4, 1.0]}}}):
        info = api.generate("txt2img", {**body, **extra})
        assert (info["sampler_name"], info["steps"], info["cfg_scale"]) == ("Euler", 3, 5.0)
        assert info["all_prompts"] == ["a cat"] and "LCM-LoRA" not in info["infotexts"][0]


def test_missing_lora_file_skips_and_says_so(api, lora, moved_away):
    info = api.generate("txt2img", {"prompt": "a cat", "steps": 3, "sampler_name": "Euler", "alwayson_scripts": ON})
    assert (info["sampler_name"], info["steps"], info["all_prompts"]) == ("Euler", 3, ["a cat"])
    assert "LCM-LoRA skipped" in info["infotexts"][0] and "latent-consistency/" in info["infotexts"][0]


@pytest.mark.parametrize(("args", "message"), [
    ([True, "heavy", 4, 1.0], "'weight' must be a number"),
    ([True, 1.0, -4, 1.0], "'steps' -4 is not a step count"),
    ([True, 1.0, "four", 1.0], "'steps' must be a number"),
    ([True, 1.0, 4, -1], "'cfg' -1 is negative"),
    (["perhaps"], "'enabled' must be true or false"),
    ([{"enabled": True, "sampler": "LCM"}], "unknown argument 'sampler'"),
    ([[1, 2]], "'enabled' must be true or false"),
])
def test_bad_arguments_are_reported_and_never_break_the_request(api, lora, args, message):
    info = api.generate("txt2img", {"prompt": "a cat", "steps": 3, "alwayson_scripts": {TITLE: {"args": args}}})
    assert message in info["extra_generation_params"]["LCM-LoRA arguments"]
    assert 2 <= info["steps"] <= 8 or info["sampler_name"] != "LCM"


def test_nan_in_the_request_json(api, lora):
    response = api.client.post("/sdapi/v1/txt2img", headers={"Content-Type": "application/json"},
                               content='{"prompt": "a cat", "steps": 3, "width": 64, "height": 64, '
                                       '"alwayson_scripts": {"LCM-LoRA": {"args": [true, NaN, 4, 1.0]}}}')
    assert response.status_code in (200, 422), response.text[:500]  # JSON with NaN may be refused upstream
    if response.status_code == 200:
        assert "'weight' must be a finite number" in response.text


def test_unknown_script_title_is_a_clear_422(api):
    response = api.client.post("/sdapi/v1/txt2img", headers={"Content-Type": "application/json"},
                               content='{"prompt": "x", "steps": 1, "alwayson_scripts": {"LCM LoRA v2": {"args": []}}}')
    assert response.status_code == 422 and "not found" in response.text


def test_server_is_healthy_afterwards(api):
    assert "progress" in api.get("/sdapi/v1/progress")
