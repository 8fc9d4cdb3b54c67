"""An LCM-LoRA distilled by ``python -m lib_lcm distill`` from the WebUI's own checkpoint, used by the WebUI.

The loop a user follows: make training images with the WebUI, distil a LoRA from the checkpoint the WebUI
has loaded (``distill --checkpoint``), put it in the Lora folder, pick it in the settings ("LoRA file to use
for SD 1.5") and generate with the accordion on. A few distillation steps at 64x64 with a large learning rate
only make the LoRA's effect visible; what is tested is that the WebUI reads the file we write and applies it.

Needs WEBUI_LORA_DIR and a WebUI on this machine (the test reads the loaded checkpoint's file). The tokenizer
comes from the Hugging Face cache (WEBUI_HF_HOME: the WebUI's HF_HOME, when it is not the default). SD 1.5
only unless WEBUI_E2E_DISTILL_ANY=1: an SDXL UNet in float32 on a CPU needs about 12 GB more memory than the
WebUI already holds. With WEBUI_LOG (the WebUI's log at DEBUG level), no "didn't match keys" line may name the
file and no layer may refuse its weights (extensions-builtin/Lora/networks.py logs both).
"""
from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from e2e_support import LAYOUTS, LORA_DIR, SIZE
from helpers import tensors_of
from PIL import Image
from safetensors.torch import load_file, save_file

from lib_lcm.lora_files.header import detect_file, read_header
from lib_lcm.rules.architecture import Architecture

pytest.importorskip("diffusers")
pytest.importorskip("peft")

ROOT = Path(__file__).resolve().parents[2]
NAME = "lcm-lora-e2e-distilled"
SETTING = {Architecture.SD1: "lcm_lora_file_sd1", Architecture.SDXL: "lcm_lora_file_sdxl",
           Architecture.SSD1B: "lcm_lora_file_ssd1b"}
CAPTIONS = ("a red apple on a table", "a blue car in the rain")
PROMPT, SEED = "a red apple on a table", 7
WEBUI_LOG = os.environ.get("WEBUI_LOG")


@dataclass(frozen=True)
class Distilled:
    path: Path
    log_start: int  # the WebUI log's size before the file appeared (0 without WEBUI_LOG)


def decode(image_b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(image_b64))).convert("RGB"), dtype=np.int16)


def write_training_images(api, folder: Path) -> None:
    """Images the WebUI itself makes from the loaded checkpoint (plain Euler, no LoRA), with captions."""
    folder.mkdir()
    for index, caption in enumerate(CAPTIONS):
        info = api.generate("txt2img", {"prompt": caption, "steps": 4, "seed": index, "sampler_name": "Euler"})
        (folder / f"{index}.png").write_bytes(base64.b64decode(info["images"][0]))
        (folder / f"{index}.txt").write_text(caption, encoding="utf-8")


def run_distill(checkpoint: str, images: Path, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if os.environ.get("WEBUI_HF_HOME"):
        env["HF_HOME"] = os.environ["WEBUI_HF_HOME"]
    command = [sys.executable, "-m", "lib_lcm", "distill", "--checkpoint", checkpoint, "--images", str(images),
               "--out", str(out), "--size", str(SIZE), "--device", "cpu", "--steps", "3", "--batch", "2",
               "--rank", "4", "--alpha", "4", "--lr", "0.05"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def distilled(api, model, tmp_path_factory):
    if not LORA_DIR:
        pytest.skip("set WEBUI_LORA_DIR to let the suite put the distilled LoRA where the WebUI finds it")
    if not Path(model.filename).is_file():
        pytest.skip(f"the loaded checkpoint {model.filename} is not readable here (the WebUI runs elsewhere)")
    if model.architecture not in SETTING:
        pytest.skip(f"distill needs SD 1.5, SDXL or SSD-1B; the WebUI has {model.architecture.label}")
    if model.architecture is not Architecture.SD1 and not os.environ.get("WEBUI_E2E_DISTILL_ANY"):
        pytest.skip("SDXL-size distillation on a CPU needs ~12 GB beside the WebUI; set WEBUI_E2E_DISTILL_ANY=1")
    target = Path(LORA_DIR) / f"{NAME}.safetensors"
    if target.exists():
        pytest.skip(f"{target} exists and is never overwritten; move it away to run this test")
    work = tmp_path_factory.mktemp("distill")
    write_training_images(api, work / "images")
    result = run_distill(model.filename, work / "images", work / "out")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [made] = (work / "out").glob("lcm-lora-*-distilled.safetensors")
    log_start = Path(WEBUI_LOG).stat().st_size if WEBUI_LOG else 0
    shutil.copyfile(made, target)
    api.post("/sdapi/v1/refresh-loras")
    yield Distilled(target, log_start)
    target.unlink(missing_ok=True)
    api.post("/sdapi/v1/refresh-loras")


def accordion_request(architecture: Architecture, prompt: str = PROMPT) -> dict:
    return {"prompt": prompt, "seed": SEED, "sampler_name": "Euler", "steps": 20, "cfg_scale": 7,
            "override_settings": {SETTING[architecture]: NAME},
            "alwayson_scripts": {"LCM-LoRA": {"args": [True, 1.0, 4, 1.0]}}}


def test_the_distilled_file_has_the_official_names_and_reads_as_a_lora_of_the_checkpoint(api, model, distilled):
    header = read_header(distilled.path)
    assert set(header.tensors) == set(tensors_of(LAYOUTS[model.architecture]))
    detection = detect_file(distilled.path)
    assert (detection.kind, detection.architecture) == ("lora", model.architecture)
    assert NAME in {item["name"] for item in api.get("/sdapi/v1/loras")}


def test_the_accordion_uses_the_file_picked_in_the_settings_and_the_webui_applies_it(api, model, distilled):
    info = api.generate("txt2img", accordion_request(model.architecture))
    text = info["infotexts"][0]
    assert "Sampler: LCM" in text and "Steps: 4" in text and "CFG scale: 1" in text, text
    assert f"LCM-LoRA: {NAME}" in text and f"<lora:{NAME}:1>" in info["all_prompts"][0], text
    assert f"{NAME}:" in text.partition("Lora hashes:")[2], text  # the WebUI's Lora extension loaded it
    # The same run with the tag typed at weight 0 (the accordion keeps a typed tag): the distilled
    # weights are what changes the image, and the image repeats exactly.
    zero = api.generate("txt2img", accordion_request(model.architecture, f"{PROMPT} <lora:{NAME}:0>"))
    assert "LCM-LoRA tag: from prompt" in zero["infotexts"][0]
    again = api.generate("txt2img", accordion_request(model.architecture))
    with_lora, without = decode(info["images"][0]), decode(zero["images"][0])
    assert np.array_equal(with_lora, decode(again["images"][0]))
    # Three steps on a random checkpoint make a small LoRA: measured, a mean change of 0.17 of an 8-bit level.
    assert (with_lora != without).mean() > 0.01


def unplaced(log: Path, start: int, name: str) -> list[str]:
    """networks.py: "Network <file> didn't match keys: ..." at load, "Network <name> layer <layer>: <error>"
    when a layer cannot take its weights."""
    logged = log.read_bytes()[start:].decode("utf-8", "replace")
    return [line for line in logged.splitlines()
            if name in line and ("didn't match keys" in line or f"Network {name} layer" in line)]


def test_the_webui_placed_every_key(api, model, distilled):
    """The WebUI logs unplaced keys when it first loads the file: everything logged since it appeared."""
    if not WEBUI_LOG:
        pytest.skip("set WEBUI_LOG to the WebUI's log file (written at DEBUG level) to check its key matching")
    log = Path(WEBUI_LOG)
    assert b" DEBUG " in log.read_bytes(), "the log has no DEBUG lines, so it cannot show unplaced keys; " \
        "start the WebUI with --loglevel DEBUG"
    api.generate("txt2img", accordion_request(model.architecture))  # loads it, unless a test above did
    assert NAME.encode() in log.read_bytes()[distilled.log_start:], "the log does not show the WebUI using the file"
    assert not unplaced(log, distilled.log_start, NAME)
    # The control: the same file plus one key no module has is reported, so the check above can fail.
    control = distilled.path.with_name(f"{NAME}-control.safetensors")
    tensors = load_file(distilled.path)
    module = next(k for k in tensors if k.endswith(".alpha")).removesuffix(".alpha")
    for part in ("alpha", "lora_down.weight", "lora_up.weight"):
        tensors[f"lora_unet_no_such_module.{part}"] = tensors[f"{module}.{part}"].clone()
    save_file(tensors, str(control), metadata={"format": "pt"})
    try:
        api.post("/sdapi/v1/refresh-loras")
        start = log.stat().st_size
        api.generate("txt2img", {"prompt": f"{PROMPT} <lora:{control.stem}:1>", "steps": 1})
        assert unplaced(log, start, control.stem)
    finally:
        control.unlink(missing_ok=True)
        api.post("/sdapi/v1/refresh-loras")
