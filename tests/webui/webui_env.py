"""Support for tests/webui: put the stand-ins on sys.path and drive the real scripts/lcm_lora.py through them."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

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

    def load_model(self, layout="checkpoint-sd15", forge=False, sampling=False, **flags):
        """A loaded checkpoint: its file in the real layout and the flags the WebUI sets on it.

        ``sampling=True``: a model the sampler stand-ins can really sample (SamplingModel)."""
        path = write_layout(self.tmp / "models" / "Stable-diffusion" / f"{layout}.safetensors", layout)
        model = (SamplingModel if sampling else sd_models.FakeModel)(str(path), **flags)
        if forge:  # Forge has no is_ssd
            del model.is_ssd
        self.monkeypatch.setattr(shared, "sd_model", model)
        self.monkeypatch.setattr(sd_models.model_data, "sd_model", model)
        return model

    def add_lora(self, layout="lcm-lora-sdv1-5", name=None):
        return write_layout(self.lora_dir / f"{name or layout}.safetensors", layout)

    def run(self, p_class, args, *, ui=True, runner=None, others=None, **fields):
        """Build p the way the UI (txt2img_create_processing / img2img) or the API does, then process it.

        ``others``: {script title: its leading arguments} for stand-ins of other extensions in the runner."""
        runner = runner or self.runner(p_class is processing.StableDiffusionProcessingImg2Img)
        p = p_class(**fields)
        p.scripts = runner
        if ui:
            p.script_args = runner.default_args()
        else:
            p.is_api = True
            p.script_args = runner.api_default_args()
        for title, values in {TITLE: args, **(others or {})}.items():
            script = runner.by_title(title)
            for i, value in enumerate(values[: script.args_to - script.args_from]):
                p.script_args[script.args_from + i] = value
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


class SamplingModel(sd_models.FakeModel):
    """A loaded checkpoint as samplers see it (ldm's LatentDiffusion): alphas_cumprod, apply_model(x, t,
    cond) giving epsilon, get_learned_conditioning, encode_first_stage. The epsilon model is the tiny
    random UNet of tests/sampling_support.py; every call is recorded as (batch size, timesteps)."""

    def __init__(self, filename, **flags):
        super().__init__(filename, **flags)
        from sampling_support import ALPHAS_CUMPROD, CountingUnet, tiny_unet

        self.alphas_cumprod = ALPHAS_CUMPROD.clone()
        self.unet = CountingUnet(tiny_unet())
        self.calls = []
        self.cond_stage_key = "txt"  # "edit" would be an instruct-pix2pix model

    def apply_model(self, x, t, cond):
        self.calls.append((x.shape[0], [float(v) for v in t]))
        context = cond["c_crossattn"][0]
        timestep = round(float(t[0]))
        assert all(round(float(v)) == timestep for v in t), "one timestep per call"
        return self.unet.eps(x, float(t[0]) if float(t[0]) != timestep else timestep, context)

    def get_learned_conditioning(self, prompts):
        out = []
        for prompt in prompts:
            seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(prompt)) % (2**31)
            out.append(torch.randn(5, 16, generator=torch.Generator().manual_seed(seed)))
        return torch.stack(out)

    def encode_first_stage(self, images, batch_size, height, width):
        return torch.linspace(-1, 1, batch_size * 4 * height * width).reshape(batch_size, 4, height, width)

    def timesteps_called(self):
        return [round(ts[0]) for _, ts in self.calls]
