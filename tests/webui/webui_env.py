"""Support for tests/webui: put the stand-ins on sys.path and drive the real scripts/lcm_lora.py through them."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

STAND_INS = Path(__file__).resolve().parents[1] / "stand_ins"
ROOT = Path(__file__).resolve().parents[2]
if str(STAND_INS) not in sys.path:
    sys.path.insert(0, str(STAND_INS))

from helpers import write_layout  # noqa: E402
from modules import processing, scripts, sd_models, shared  # noqa: E402

SCRIPT_FILE = ROOT / "scripts" / "lcm_lora.py"
TITLE = "LCM-LoRA"


@dataclass
class WebUI:
    tmp: Path
    lora_dir: Path
    classes: list
    monkeypatch: pytest.MonkeyPatch

    def runner(self, is_img2img=False):
        runner = scripts.ScriptRunner(self.classes, is_img2img)
        runner.create_ui()
        return runner

    def load_model(self, layout="checkpoint-sd15", forge=False, **flags):
        """A loaded checkpoint: its file in the real layout and the flags the WebUI sets on it."""
        path = write_layout(self.tmp / "models" / "Stable-diffusion" / f"{layout}.safetensors", layout)
        model = sd_models.FakeModel(str(path), **flags)
        if forge:  # Forge has no is_ssd
            del model.is_ssd
        self.monkeypatch.setattr(shared, "sd_model", model)
        self.monkeypatch.setattr(sd_models.model_data, "sd_model", model)
        return model

    def add_lora(self, layout="lcm-lora-sdv1-5", name=None):
        return write_layout(self.lora_dir / f"{name or layout}.safetensors", layout)

    def run(self, p_class, args, *, ui=True, runner=None, **fields):
        """Build p the way the UI (txt2img_create_processing / img2img) or the API does, then process it."""
        runner = runner or self.runner(p_class is processing.StableDiffusionProcessingImg2Img)
        p = p_class(**fields)
        p.scripts = runner
        if ui:
            p.script_args = runner.default_args()
        else:
            p.is_api = True
            p.script_args = runner.api_default_args()
        ours = runner.by_title(TITLE)
        for i, value in enumerate(args[: ours.args_to - ours.args_from]):
            p.script_args[ours.args_from + i] = value
        runner.setup_scrips(p, is_ui=ui)
        processed = processing.process_images(p)
        assert runner.errors == [], runner.errors
        return p, processed

    def txt2img(self, args, **fields):
        fields.setdefault("prompt", "a cat")
        return self.run(processing.StableDiffusionProcessingTxt2Img, args, **fields)

    def img2img(self, args, **fields):
        fields.setdefault("prompt", "a cat")
        fields.setdefault("init_images", ["image"])
        return self.run(processing.StableDiffusionProcessingImg2Img, args, **fields)
