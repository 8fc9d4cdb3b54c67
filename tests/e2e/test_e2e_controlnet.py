"""With ControlNet (Mikubill/sd-webui-controlnet) installed next to ours, through the real API.

ControlNet wraps ``p.sample`` and marks the cond and uncond prompts with a token its UNet hook reads per
row (its ``scripts/hook.py``), so it does not assume both halves are in the batch: our CFG-1 skip of the
unconditional pass runs under it, and every control mode works at CFG 1 (where "My prompt is more
important" and "ControlNet is more important" give the same image, as without us). Units run with
preprocessor "none" on a drawn image, so no annotator is downloaded.

Tried with ControlNet v1.1.455 (commit 56cec5b) in the harness's A1111 1.10.1, controlnet_aux 0.0.10,
with a random-weight SD 1.5 ControlNet in the original ControlNet 1.1 layout
(``shared/webui-harness/make_random_controlnet.py``).
"""
from __future__ import annotations

import re

import pytest
from e2e_support import png_base64

MODES = ["Balanced", "My prompt is more important", "ControlNet is more important"]


def controlnet_model(api) -> str:
    names = [s["name"] for s in api.get("/sdapi/v1/script-info") if s["is_alwayson"]]
    if "controlnet" not in names:
        pytest.skip("ControlNet is not installed in this WebUI")
    models = [m for m in api.get("/controlnet/model_list")["model_list"] if m != "None"]
    if not models:
        pytest.skip("ControlNet has no model")
    return models[0]


def unit(api, mode: str = "Balanced") -> dict:
    return {"enabled": True, "module": "none", "model": controlnet_model(api), "image": png_base64((200, 40, 40)),
            "weight": 1.0, "resize_mode": "Crop and Resize", "control_mode": mode, "guidance_start": 0.0,
            "guidance_end": 1.0, "pixel_perfect": False, "processor_res": 64, "threshold_a": -1, "threshold_b": -1}


def tags(prompt: str, name: str) -> int:
    return len(re.findall(rf"<lora:{re.escape(name)}:[^>]*>", prompt))


def generate(api, kind: str, mode: str, cfg: float, **fields) -> dict:
    scripts = {"controlnet": {"args": [unit(api, mode)]}, "LCM-LoRA": {"args": [True, 1.0, 4, cfg]}}
    return api.generate(kind, {"prompt": "a cat", "negative_prompt": "ugly", "steps": 20, "cfg_scale": 7,
                               "alwayson_scripts": scripts, **fields})


@pytest.mark.parametrize("mode", MODES)
def test_txt2img_with_a_unit_at_cfg_1_skips_the_uncond_pass(api, lora, mode):
    info = generate(api, "txt2img", mode, 1.0)
    text = info["infotexts"][0]
    assert "ControlNet 0: " in text and tags(info["prompt"], lora.name) == 1, text
    assert "Steps: 4" in text and "Sampler: LCM" in text and 'LCM-LoRA timesteps: "999,759,499,259"' in text
    assert "LCM-LoRA uncond: skipped at CFG 1" in text


def test_the_unit_changes_the_image(api, lora):
    with_unit = generate(api, "txt2img", "Balanced", 1.0)["images"][0]
    without = api.generate("txt2img", {"prompt": "a cat", "steps": 20,
                                       "alwayson_scripts": {"LCM-LoRA": {"args": [True, 1.0, 4, 1.0]}}})["images"][0]
    assert with_unit != without


def test_img2img_with_a_unit_at_cfg_above_1(api, lora):
    info = generate(api, "img2img", "ControlNet is more important", 2.0, init_images=[png_base64((40, 200, 40))],
                    denoising_strength=0.5)
    text = info["infotexts"][0]
    assert "ControlNet 0: " in text and "CFG scale: 2.0" in text and tags(info["prompt"], lora.name) == 1
    assert 'LCM-LoRA timesteps: "499,379,259,139"' in text, text
