"""With ADetailer (Bing-su/adetailer) installed next to ours, through the real API.

Its fix-up pass needs a detection, and the random-weight model paints noise, so these run img2img with
"skip img2img": ADetailer then detects on the init image, a face drawn here (mediapipe's face models,
which ship inside the ``mediapipe`` package, find it), and inpaints it with its own img2img pass.

Tried with ADetailer v25.3.0 (commit 36189cb) and mediapipe 0.10.14 in the harness's A1111 1.10.1
(installed by hand: the harness starts with --skip-install; started with --ad-no-huggingface).
"""
from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import pytest

ON = [True, 1.0, 4, 1.0]
SEPARATE = {"ad_use_steps": True, "ad_steps": 28, "ad_use_cfg_scale": True, "ad_cfg_scale": 7.0,
            "ad_use_sampler": True, "ad_sampler": "DPM++ 2M", "ad_scheduler": "Karras"}


def require_adetailer(api) -> None:
    names = [s["name"] for s in api.get("/sdapi/v1/script-info") if s["is_alwayson"]]
    if "adetailer" not in names:
        pytest.skip("ADetailer is not installed in this WebUI")


def drawn_face(size: int = 256) -> str:
    """A flat cartoon face (skin oval, eyes, brows, nose, mouth), blurred a little, as PNG base64."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("RGB", (size, size), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    s = size / 256
    box = lambda *xy: tuple(round(v * s) for v in xy)  # noqa: E731
    draw.ellipse(box(78, 48, 178, 178), fill=(224, 180, 150))
    for left in (100, 136):
        draw.ellipse(box(left, 90, left + 20, 104), fill=(255, 255, 255))
        draw.ellipse(box(left + 6, 92, left + 16, 102), fill=(40, 30, 20))
    draw.line(box(90, 82, 122, 80), fill=(80, 50, 30), width=round(4 * s))
    draw.line(box(134, 80, 166, 82), fill=(80, 50, 30), width=round(4 * s))
    draw.polygon([box(128, 105), box(120, 132), box(136, 132)], fill=(200, 150, 120))
    draw.chord(box(108, 138, 148, 160), 0, 180, fill=(150, 50, 60))
    buffer = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(1.5)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def run(api, tab: dict, **fields) -> dict:
    require_adetailer(api)
    scripts = {"ADetailer": {"args": [True, True, {"ad_model": "mediapipe_face_full", **tab}]},
               "LCM-LoRA": {"args": ON}}
    body = {"prompt": "a portrait", "steps": 20, "cfg_scale": 7, "sampler_name": "Euler a", "width": 256,
            "height": 256, "init_images": [drawn_face()], "denoising_strength": 0.5, "alwayson_scripts": scripts,
            **fields}
    return api.generate("img2img", body)


@pytest.fixture
def webui_log() -> Path:
    path = os.environ.get("WEBUI_LOG")
    if not path:
        pytest.skip("set WEBUI_LOG to the WebUI's log file to read what ran inside ADetailer's pass")
    return Path(path)


def log_since(log_path, start: int) -> str:
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        handle.seek(start)
        return handle.read()


def tags(prompt: str, name: str) -> int:
    return len(re.findall(rf"<lora:{re.escape(name)}:[^>]*>", prompt))


def test_its_pass_inherits_the_plan_with_the_lora_once(api, lora):
    info = run(api, {})
    text = info["infotexts"][0]
    assert tags(info["prompt"], lora.name) == 1
    assert "ADetailer model: mediapipe_face_full" in text
    # skip img2img: ADetailer would give its pass the 20 steps and Euler a from before our process
    assert "ADetailer steps: 4" in text and "ADetailer sampler: LCM" in text, text
    assert f"LCM-LoRA: {lora.name}" in text and "CFG scale: 1.0" in text


def test_its_separate_steps_cfg_and_sampler_are_fitted(api, lora):
    info = run(api, SEPARATE)
    text = info["infotexts"][0]
    assert "ADetailer steps: 8" in text and "ADetailer CFG scale: 2.5" in text and "ADetailer sampler: LCM" in text
    assert "LCM-LoRA ADetailer: ADetailer steps 28 to 8; ADetailer CFG 7 to 2.5; ADetailer sampler DPM++ 2M to LCM" \
        in text, text


def test_listed_in_its_scripts_our_script_runs_in_its_pass(api, lora, webui_log):
    """ADetailer runs only the always-on scripts named in its "Script names to apply" setting."""
    require_adetailer(api)
    start = webui_log.stat().st_size
    # A per-request override: the API cannot read an extension's setting back (its options model is built
    # before extensions add theirs), and the WebUI restores an override afterwards for keys in config.json
    # (modules/processing.py process_images); one never saved stays until the WebUI restarts.
    info = run(api, {}, override_settings={"ad_script_names": "dynamic_prompting,lcm_lora"})
    assert tags(info["prompt"], lora.name) == 1
    log = log_since(webui_log, start)
    # our process ran twice: the generation (tag added) and ADetailer's pass (tag already in its prompt)
    assert f"<lora:{lora.name}:…> added" in log and f"<lora:{lora.name}:…> kept" in log, log[-3000:]
