"""With AnimateDiff (continue-revolution/sd-webui-animatediff) installed next to ours, through the real API.

Its ``before_process`` (it runs before ours: its folder sorts first) injects the motion module, makes
the batch the frames, swaps the model's noise schedule for the one its modules were trained on, and
writes its infotext entry; our ``process`` then adds the tag to every frame's prompt, and our exact
sampler runs on the schedule it swapped in. Its CFG hook splits the batch into cond and uncond frames,
so at CFG 1 the unconditional pass is kept while it is on (without it: IndexError in its
``animatediff_infv2v.py``). It registers no sampler of its own, so the LCM in the dropdown is A1111's
and ours replaces it per generation as usual.

Tried with AnimateDiff commit a88e889 (v2.0.1-a) in the harness's A1111 1.10.1, with a random-weight
v2 motion module in the real layout (``shared/webui-harness/make_random_motion_module.py``), PNG frames
only (no video encoder needed).
"""
from __future__ import annotations

import re

import pytest

FRAMES = 8


def motion_module(api) -> str:
    names = [s["name"] for s in api.get("/sdapi/v1/script-info") if s["is_alwayson"]]
    if "animatediff" not in names:
        pytest.skip("AnimateDiff is not installed in this WebUI")
    return "mm_sd15_v2_random.safetensors"


def run(api, cfg: float) -> dict:
    unit = {"model": motion_module(api), "enable": True, "video_length": FRAMES, "batch_size": FRAMES, "fps": 8,
            "closed_loop": "N", "format": ["PNG"]}
    scripts = {"AnimateDiff": {"args": [unit]}, "LCM-LoRA": {"args": [True, 1.0, 4, cfg]}}
    return api.generate("txt2img", {"prompt": "a cat walking", "steps": 20, "width": 64, "height": 64,
                                    "alwayson_scripts": scripts})


def tags(prompt: str, name: str) -> int:
    return len(re.findall(rf"<lora:{re.escape(name)}:[^>]*>", prompt))


@pytest.mark.parametrize("cfg", [1.0, 1.5])
def test_every_frame_runs_our_schedule_with_the_lora(api, lora, cfg):
    info = run(api, cfg)
    assert len(info["all_prompts"]) == FRAMES and all(tags(p, lora.name) == 1 for p in info["all_prompts"])
    text = info["infotexts"][0]
    assert "AnimateDiff: " in text, text
    assert "Steps: 4" in text and "Sampler: LCM" in text and 'LCM-LoRA timesteps: "999,759,499,259"' in text
    assert f"CFG scale: {cfg}" in text
    if cfg == 1.0:
        assert "LCM-LoRA uncond: kept for AnimateDiff" in text
