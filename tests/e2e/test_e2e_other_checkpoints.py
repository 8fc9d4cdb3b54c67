"""Hires fix with its own checkpoint, and the refiner, through the real API.

The WebUI loads the hires checkpoint before the hires pass and activates the hires prompts' tags on it
(``modules/processing.py`` ``sample_hr_pass``); the refiner swaps the model mid-pass without activating
any tag again (``modules/sd_samplers_common.py`` ``apply_refiner``), and the Lora extension applies the
networks already loaded to the refiner's freshly loaded weights (``extensions-builtin/Lora/networks.py``
resets its cached weights in ``_load_from_state_dict``), which fit only a refiner of the same
architecture. Needs a second checkpoint of the loaded one's architecture in the WebUI's list (the
harness: a link ``random-sd15-hires.safetensors``).
A hires checkpoint of another architecture (an SDXL one after an SD 1.5 first pass: the harness's
``make_random_sd15.py`` writes one from ``checkpoint-sdxl.json`` too) is tried when the list has one;
on the CPU the WebUI holds its fp16 state dict and the fp32 model at once (an estimated 21 GB), so it is for
machines with more than 24 GiB; it sets ``lora_functional`` for its request (no LoRA weight backups).
"""
from __future__ import annotations

import re

import pytest
from e2e_support import hires_fields, lora_file

from lib_lcm.lora_files.header import SafetensorsHeaderError, detect_file
from lib_lcm.rules import catalog

ON = [True, 1.0, 4, 1.0]


def other_checkpoint(api, model) -> str:
    for entry in api.get("/sdapi/v1/sd-models"):
        same_kind = entry["filename"].endswith(".safetensors") and entry["title"] != model.title
        if same_kind and detect_file(entry["filename"]).architecture is model.architecture:
            return entry["title"]
    pytest.skip(f"no second {model.architecture.label} checkpoint in the WebUI's list")


def checkpoint_of_another_architecture(api, model):
    for entry in api.get("/sdapi/v1/sd-models"):
        try:
            architecture = detect_file(entry["filename"]).architecture
        except (SafetensorsHeaderError, OSError):
            continue
        if architecture is not model.architecture and catalog.for_architecture(architecture) is not None:
            return entry["title"], architecture
    pytest.skip("no checkpoint of another architecture with an LCM-LoRA in the WebUI's list")


def tags(prompt: str, name: str) -> int:
    return len(re.findall(rf"<lora:{re.escape(name)}:[^>]*>", prompt))


def test_hires_fix_on_another_checkpoint_of_the_same_architecture_keeps_the_lora(api, model, lora):
    other = other_checkpoint(api, model)
    info = api.generate("txt2img", {"prompt": "a cat", "steps": 20, "enable_hr": True, "hr_scale": 1.5,
                                    "denoising_strength": 0.5, "hr_checkpoint_name": other,
                                    "alwayson_scripts": {"LCM-LoRA": {"args": ON}}, **hires_fields(api)})
    text = info["infotexts"][0]
    assert "Hires checkpoint: " in text and "LCM-LoRA hires LoRA" not in text, text
    assert tags(info["prompt"], lora.name) == 1 and "Hires prompt" not in text
    assert "LCM-LoRA hires timesteps: " in text and "Steps: 4" in text


def test_a_refiner_of_the_same_architecture_runs_with_the_lora(api, model, lora):
    other = other_checkpoint(api, model)
    info = api.generate("txt2img", {"prompt": "a cat", "steps": 20, "refiner_checkpoint": other,
                                    "refiner_switch_at": 0.5, "alwayson_scripts": {"LCM-LoRA": {"args": ON}}})
    text = info["infotexts"][0]
    assert "Refiner: " in text and "Refiner switch at: 0.5" in text, text
    assert tags(info["prompt"], lora.name) == 1 and "LCM-LoRA skipped" not in text
    assert "Sampler: LCM" in text and "LCM-LoRA timesteps: \"999,759,499,259\"" in text


def test_hires_fix_on_a_checkpoint_of_another_architecture_uses_its_own_lora(api, model, lora):
    other, architecture = checkpoint_of_another_architecture(api, model)
    entry = catalog.for_architecture(architecture)
    with lora_file(api, entry.local_name, architecture) as hires_lora:
        info = api.generate("txt2img", {"prompt": "a cat", "steps": 20, "enable_hr": True, "hr_scale": 1.5,
                                        "denoising_strength": 0.5, "hr_checkpoint_name": other,
                                        "override_settings": {"lora_functional": True},
                                        "alwayson_scripts": {"LCM-LoRA": {"args": ON}}, **hires_fields(api)})
    text = info["infotexts"][0]
    assert f"LCM-LoRA hires LoRA: {hires_lora}" in text and f"LCM-LoRA: {lora.name}" in text, text
    assert tags(info["prompt"], lora.name) == 1
    assert f'Hires prompt: "a cat <lora:{hires_lora}:1>"' in text
    assert "LCM-LoRA hires timesteps: " in text and hires_lora in text.split("Lora hashes: ")[1]
