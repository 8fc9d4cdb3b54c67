"""Fixtures for running the real scripts/lcm_lora.py and lib_lcm.webui against tests/stand_ins."""
from __future__ import annotations

import pytest
from webui_env import SCRIPT_FILE, WebUI  # importing webui_env puts the stand-ins on sys.path


@pytest.fixture
def webui(tmp_path, monkeypatch):
    from modules import script_callbacks, scripts, sd_models, shared

    lora_dir = tmp_path / "models" / "Lora"
    lora_dir.mkdir(parents=True)
    monkeypatch.setattr(shared.cmd_opts, "lora_dir", str(lora_dir))
    monkeypatch.setattr(shared.cmd_opts, "lyco_dir_backcompat", str(tmp_path / "models" / "LyCORIS"))
    monkeypatch.setattr(shared, "opts", shared.builtin_options())
    monkeypatch.setattr(sd_models, "checkpoints_list", {})
    classes = scripts.load_script_classes(str(SCRIPT_FILE))
    script_callbacks.ui_settings_callback()  # what the Settings UI build does
    env = WebUI(tmp_path, lora_dir, classes, monkeypatch)
    env.load_model(is_sd1=True)
    return env


@pytest.fixture
def official_layouts(webui):
    for layout in ("lcm-lora-sdv1-5", "lcm-lora-sdxl", "lcm-lora-ssd-1b"):
        webui.add_lora(layout)
    return webui
