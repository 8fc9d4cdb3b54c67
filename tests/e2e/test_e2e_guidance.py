"""CFG-changing features beside ours, through the real API: Dynamic Thresholding
(mcmonkeyprojects/sd-dynamic-thresholding) and the WebUI's own "Ignore negative prompt during early
sampling". Tried with sd-dynamic-thresholding commit 73e4e04 (its A1111 script as of ec5d85c) in the
harness's A1111 1.10.1.
"""
from __future__ import annotations

import pytest

DT = "Dynamic Thresholding (CFG Scale Fix)"
# its ui() order: enabled, mimic scale, threshold percentile, mimic mode, mimic scale min, CFG mode,
# CFG scale min, scheduler value, separate feature channels, scaling startpoint, variability measure, phi
DT_ON = [True, 7.0, 100.0, "Constant", 0.0, "Constant", 0.0, 4.0, True, "MEAN", "AD", 1.0]


def require_dynamic_thresholding(api) -> None:
    names = [s["name"] for s in api.get("/sdapi/v1/script-info") if s["is_alwayson"]]
    if DT.lower() not in names:
        pytest.skip("Dynamic Thresholding is not installed in this WebUI")


def run(api, cfg: float, **fields) -> str:
    scripts = {DT: {"args": DT_ON}, "LCM-LoRA": {"args": [True, 1.0, 4, cfg]}}
    return api.generate("txt2img", {"prompt": "a cat", "negative_prompt": "ugly", "steps": 20,
                                    "alwayson_scripts": scripts, **fields})["infotexts"][0]


def test_at_cfg_1_dynamic_thresholding_is_turned_off_and_the_exact_sampler_runs(api, lora):
    require_dynamic_thresholding(api)
    text = run(api, 1.0)
    assert "Dynamic thresholding enabled" not in text
    assert "Dynamic Thresholding (CFG Scale Fix) was turned off for this image" in text, text
    assert 'LCM-LoRA timesteps: "999,759,499,259"' in text and "LCM-LoRA uncond: skipped at CFG 1" in text


def test_above_cfg_1_dynamic_thresholding_runs_and_the_infotext_says_what_it_costs(api, lora):
    require_dynamic_thresholding(api)
    text = run(api, 2.0)
    assert "Dynamic thresholding enabled: True" in text and "Mimic scale: 7.0" in text, text
    assert "CFG scale: 2.0" in text and "Sampler: LCM" in text
    assert "without the exact LCM timesteps" in text and "LCM-LoRA timesteps" not in text


def test_the_webuis_early_negative_skip_is_said_to_do_nothing_at_cfg_1(api, lora):
    # Set and put back by hand: the WebUI restores an override only for keys already in config.json
    # (modules/processing.py process_images), and a left-over 0.5 breaks AnimateDiff's tests.
    before = api.get("/sdapi/v1/options")["skip_early_cond"]
    api.post("/sdapi/v1/options", {"skip_early_cond": 0.5})
    try:
        scripts = {"LCM-LoRA": {"args": [True, 1.0, 4, 1.0]}}
        text = api.generate("txt2img", {"prompt": "a cat", "steps": 20, "alwayson_scripts": scripts})["infotexts"][0]
    finally:
        api.post("/sdapi/v1/options", {"skip_early_cond": before})
    assert "Ignore negative prompt during early sampling (0.5) does nothing at CFG 1." in text, text
    assert "Skip Early CFG: 0.5" in text  # the user's value, as the WebUI writes it
