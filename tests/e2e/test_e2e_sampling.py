"""The exact samplers in a real WebUI: timesteps, img2img strength, TCD, explicit timesteps, CFG-1 skip.

The server-side infotext says which timesteps the sampler visited ("LCM-LoRA timesteps"); the CFG-1
skip must give the image the WebUI computes with both passes (max pixel difference <= 2 of 255).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from e2e_support import FORGE_INFOTEXT_API, hires_fields, is_forge, png_base64
from PIL import Image

from lib_lcm.sampling.schedule import lcm_timesteps

pytestmark = pytest.mark.e2e
TITLE = "LCM-LoRA"
ON = {TITLE: {"args": [True, 1.0, 4, 1.0]}}


def on(steps: int = 4, cfg: float = 1.0) -> dict:
    return {TITLE: {"args": [True, 1.0, steps, cfg]}}


def timesteps_text(timesteps) -> str:
    return f'"{",".join(map(str, timesteps))}"' if len(timesteps) > 1 else str(timesteps[0])


def pixels(image_b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(image_b64))).convert("RGB")).astype(np.int16)


def test_tcd_is_listed_next_to_the_webuis_lcm(api):
    samplers = {s["name"]: s for s in api.get("/sdapi/v1/samplers")}
    assert "TCD" in samplers and "k_tcd" in samplers["TCD"]["aliases"]
    assert [s["name"] for s in api.get("/sdapi/v1/samplers")].count("LCM") == 1


@pytest.mark.parametrize("steps", [2, 4, 5, 8])
def test_txt2img_visits_the_reference_timesteps(api, lora, steps):
    info = api.generate("txt2img", {"prompt": "a cat", "scheduler": "Karras", "alwayson_scripts": on(steps)})
    text = info["infotexts"][0]
    assert f"LCM-LoRA timesteps: {timesteps_text(lcm_timesteps(steps))}" in text
    assert info["sampler_name"] == "LCM" and f"Steps: {steps}," in text


def test_cfg_1_skips_the_unconditional_pass_and_gives_the_same_image(api, lora):
    body = {"prompt": "a cat", "negative_prompt": "blurry", "seed": 7, "batch_size": 2, "alwayson_scripts": ON}
    skipped = api.generate("txt2img", body)
    both = api.generate("txt2img", {**body, "override_settings": {"lcm_lora_skip_uncond": False}})
    if is_forge(api):  # Forge skips it itself in both runs (backend/sampling/sampling_function.py); we claim nothing
        assert "LCM-LoRA uncond" not in skipped["infotexts"][0]
    else:
        assert "LCM-LoRA uncond: skipped at CFG 1" in skipped["infotexts"][0]
    assert "LCM-LoRA uncond" not in both["infotexts"][0]
    for text in skipped["infotexts"] + both["infotexts"]:
        assert "Skip Early CFG" not in text
    for a, b in zip(skipped["images"], both["images"], strict=True):
        assert np.abs(pixels(a) - pixels(b)).max() <= 2
    # the shadow never reached the settings (Forge lists only values set)
    assert api.get("/sdapi/v1/options").get("skip_early_cond", 0.0) == 0.0


def test_cfg_above_1_computes_both_passes(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "alwayson_scripts": on(cfg=1.5)})
    assert "LCM-LoRA uncond" not in info["infotexts"][0] and "CFG scale: 1.5" in info["infotexts"][0]


@pytest.mark.parametrize("strength", [0.3, 0.5, 0.75, 1.0])
def test_img2img_runs_every_step_on_the_shortened_schedule(api, lora, strength):
    info = api.generate("img2img", {"prompt": "a cat", "init_images": [png_base64((200, 80, 40))],
                                    "denoising_strength": strength, "alwayson_scripts": ON})
    text = info["infotexts"][0]
    assert f"LCM-LoRA timesteps: {timesteps_text(lcm_timesteps(4, strength))}" in text
    assert "LCM-LoRA steps run" not in text


def test_inpaint_uses_the_shortened_schedule_too(api, lora):
    info = api.generate("img2img", {"prompt": "a cat", "init_images": [png_base64((200, 80, 40))],
                                    "mask": png_base64((0, 0, 0), mask=True), "denoising_strength": 0.5,
                                    "inpainting_fill": 1, "alwayson_scripts": ON})
    assert f"LCM-LoRA timesteps: {timesteps_text(lcm_timesteps(4, 0.5))}" in info["infotexts"][0]


def test_img2img_strength_too_low_for_the_steps_says_so(api, lora):
    info = api.generate("img2img", {"prompt": "a cat", "init_images": [png_base64((200, 80, 40))],
                                    "denoising_strength": 0.1, "alwayson_scripts": on(8)})
    text = info["infotexts"][0]
    assert f"LCM-LoRA timesteps: {timesteps_text(lcm_timesteps(5, 0.1))}" in text and "5 of 8 steps ran" in text


def test_the_webuis_own_schedule_when_exact_is_off(api, lora):
    info = api.generate("img2img", {"prompt": "a cat", "init_images": [png_base64((200, 80, 40))],
                                    "denoising_strength": 0.5, "alwayson_scripts": ON,
                                    "override_settings": {"lcm_lora_exact_schedule": False}})
    text = info["infotexts"][0]
    assert "LCM-LoRA steps run: 3" in text and "LCM-LoRA timesteps" not in text


def test_hires_pass_timesteps(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "enable_hr": True, "hr_scale": 1.5,
                                    "hr_upscaler": "Latent", "hr_second_pass_steps": 2, "denoising_strength": 0.5,
                                    "alwayson_scripts": ON, **hires_fields(api)})
    text = info["infotexts"][0]
    assert f"LCM-LoRA hires timesteps: {timesteps_text(lcm_timesteps(2, 0.5))}" in text
    assert f"LCM-LoRA timesteps: {timesteps_text(lcm_timesteps(4))}" in text


def test_tcd_with_its_gamma_and_not_the_webuis_eta(api, lora):
    # Not overridden here: A1111 never restores an override of a built-in setting missing from
    # config.json (processing.py process_images, stored_opts); eta_ancestral's default is 1.0 anyway.
    assert api.get("/sdapi/v1/options").get("eta_ancestral", 1.0) == 1.0
    info = api.generate("txt2img", {"prompt": "a cat", "sampler_name": "TCD", "alwayson_scripts": ON})
    text = info["infotexts"][0]
    assert info["sampler_name"] == "TCD" and "TCD gamma: 0.3" in text and "Eta:" not in text
    assert f"LCM-LoRA timesteps: {timesteps_text(lcm_timesteps(4))}" in text


def test_tcd_gamma_setting_travels_through_the_infotext(api, lora):
    first = api.generate("txt2img", {"prompt": "a cat", "sampler_name": "TCD", "alwayson_scripts": ON,
                                     "override_settings": {"lcm_lora_tcd_gamma": 0.5}})
    assert "TCD gamma: 0.5" in first["infotexts"][0]
    if is_forge(api):
        pytest.skip(FORGE_INFOTEXT_API)
    again = api.generate("txt2img", {"infotext": first["infotexts"][0]})
    assert again["sampler_name"] == "TCD" and "TCD gamma: 0.5" in again["infotexts"][0]
    assert api.get("/sdapi/v1/options").get("lcm_lora_tcd_gamma", 0.3) == 0.3


def test_tcd_is_deterministic_at_gamma_0(api, lora):
    body = {"prompt": "a cat", "sampler_name": "TCD", "alwayson_scripts": ON,
            "override_settings": {"lcm_lora_tcd_gamma": 0.0}}
    a, b = api.generate("txt2img", {**body, "seed": 3}), api.generate("txt2img", {**body, "seed": 3})
    assert np.array_equal(pixels(a["images"][0]), pixels(b["images"][0]))


def test_tcd_without_the_accordion(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "sampler_name": "TCD", "scheduler": "Automatic",
                                    "steps": 4, "cfg_scale": 1.0})
    text = info["infotexts"][0]
    assert "Sampler: TCD" in text and f"LCM-LoRA timesteps: {timesteps_text(lcm_timesteps(4))}" in text
    assert "LCM-LoRA weight" not in text  # the accordion was off: no LoRA added


def test_explicit_timesteps_for_dmd2(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "alwayson_scripts": ON,
                                    "override_settings": {"lcm_lora_timesteps": "999,749,499,249"}})
    text = info["infotexts"][0]
    assert 'LCM-LoRA timesteps: "999,749,499,249"' in text
    assert 'LCM-LoRA explicit timesteps: "999,749,499,249"' in text
    assert api.get("/sdapi/v1/options").get("lcm_lora_timesteps", "") == ""


def test_a_broken_explicit_timesteps_setting_is_reported(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "alwayson_scripts": ON,
                                    "override_settings": {"lcm_lora_timesteps": "999, 10, 500"}})
    text = info["infotexts"][0]
    assert "strictly descending" in text and f"LCM-LoRA timesteps: {timesteps_text(lcm_timesteps(4))}" in text


def test_builtin_lcm_without_the_accordion_is_untouched(api, lora):
    info = api.generate("txt2img", {"prompt": "a cat", "sampler_name": "LCM", "scheduler": "Automatic",
                                    "steps": 4, "cfg_scale": 1.0})
    assert "LCM-LoRA" not in info["infotexts"][0]
