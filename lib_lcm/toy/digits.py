"""The toy world that reproduces LCM-LoRA offline: handwritten digits, a tiny autoencoder, a judge.

A Stable Diffusion in miniature. scikit-learn's bundled digits (1797 images, 8x8, 16 grey levels)
are upsampled to 32x32 "pixels"; an autoencoder trained here maps them to 4x8x8 latents (SD maps
512x512x3 to 4x64x64); a class-conditional ``UNet2DConditionModel`` is trained on those latents
with SD 1.5's scaled-linear schedule, its "text encoder" a table of one 64-d token per digit (and
one more for the empty prompt of classifier-free guidance). A small classifier, trained on the real
digits, judges samples: its accuracy against the requested digit, and the Fréchet distance between
its penultimate features of the samples and of the real digits (FID with a digit network).

Everything is torch + diffusers; scikit-learn only supplies the digits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lib_lcm.toy.files import AUTOENCODER_FILE, CLASSIFIER_FILE, TEACHER_FILE, WEIGHTS_DIR

IMAGE_SIZE = 32
LATENT_CHANNELS = 4
LATENT_SIZE = 8
TOKEN_DIM = 64
NULL_LABEL = 10  # the "empty prompt" token of classifier-free guidance

# The teacher UNet: SD's block types at a tenth of its width; cross-attention at 8x8 and 4x4.
TEACHER_CONFIG: dict[str, Any] = {
    "sample_size": LATENT_SIZE, "in_channels": LATENT_CHANNELS, "out_channels": LATENT_CHANNELS,
    "layers_per_block": 2, "block_out_channels": [32, 64, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": TOKEN_DIM, "attention_head_dim": 4, "norm_num_groups": 16,
}


def real_digits(size: int = IMAGE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as ``[N, 1, size, size]`` in [-1, 1] (bicubic upsampling) and their labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise RuntimeError("the toy model needs scikit-learn for its digits: pip install scikit-learn") from error
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return images * 2 - 1, torch.tensor(digits.target, dtype=torch.long)


def augment(images: torch.Tensor, generator: torch.Generator, shift: float = 1.5, degrees: float = 8.0,
            scale: float = 0.08) -> torch.Tensor:
    """Small random affine moves (pixels at 32x32, degrees, relative scale): more handwriting, same digits."""
    n = images.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(degrees)
    zoom = 1 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    offset = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 * shift / images.shape[-1])
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


class Autoencoder(nn.Module):
    """32x32x1 <-> 4x8x8, like SD's VAE (8x down, 4 channels) at toy scale; latents scaled to unit std."""

    scaling_factor: torch.Tensor  # a buffer, saved with the weights

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.SiLU(), nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(64, 64, 4, stride=2, padding=1), nn.SiLU(), nn.Conv2d(64, LATENT_CHANNELS, 1))
        self.decoder = nn.Sequential(
            nn.Conv2d(LATENT_CHANNELS, 64, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.SiLU(), nn.Conv2d(32, 1, 3, padding=1))
        # SD's vae.config.scaling_factor (0.18215 for SD 1.5): measured on the data after training
        self.register_buffer("scaling_factor", torch.ones(()))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents / self.scaling_factor).clamp(-1, 1)


class DigitClassifier(nn.Module):
    """The judge: a small CNN; ``features`` (64-d, before the last layer) is the Fréchet space."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * 16, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class LabelEncoder(nn.Module):
    """The toy's text encoder: digit d (or NULL_LABEL, the empty prompt) -> one 64-d token."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(NULL_LABEL + 1, TOKEN_DIM)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.tokens(labels).unsqueeze(1)


@dataclass
class Teacher:
    """The diffusion model: its UNet and its label encoder, trained together."""

    unet: Any  # diffusers.UNet2DConditionModel
    labels: LabelEncoder

    def parameters(self) -> list[nn.Parameter]:
        return [*self.unet.parameters(), *self.labels.parameters()]


def new_teacher(seed: int = 0) -> Teacher:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return Teacher(UNet2DConditionModel(**TEACHER_CONFIG), LabelEncoder())


def save_teacher(teacher: Teacher, path: Path, dtype: torch.dtype = torch.float16) -> None:
    """One safetensors file: ``unet.*`` (diffusers names) and ``labels.*``, the UNet config in the metadata."""
    tensors = {f"unet.{k}": v for k, v in teacher.unet.state_dict().items()}
    tensors |= {f"labels.{k}": v for k, v in teacher.labels.state_dict().items()}
    _save(tensors, path, dtype, {"unet_config": json.dumps(dict(teacher.unet.config))})


def load_teacher(path: Path | None = None) -> Teacher:
    """The teacher in float32 (the file holds float16, as the published SD weights)."""
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open

    path = path or WEIGHTS_DIR / TEACHER_FILE
    with safe_open(str(path), "pt") as handle:
        config = json.loads((handle.metadata() or {}).get("unet_config", "null") or "null")
        tensors = {k: handle.get_tensor(k).float() for k in handle.keys()}  # noqa: SIM118 (safe_open has no iter)
    unet = UNet2DConditionModel.from_config(config or TEACHER_CONFIG)
    unet.load_state_dict(_strip(tensors, "unet."))
    labels = LabelEncoder()
    labels.load_state_dict(_strip(tensors, "labels."))
    return Teacher(unet.eval().requires_grad_(False), labels.eval().requires_grad_(False))


def save_module(module: nn.Module, path: Path, dtype: torch.dtype = torch.float16) -> None:
    _save(dict(module.state_dict()), path, dtype, {})


def load_module(module: nn.Module, path: Path) -> nn.Module:
    from safetensors.torch import load_file

    module.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return module.eval().requires_grad_(False)


def load_autoencoder(folder: Path = WEIGHTS_DIR) -> Autoencoder:
    return load_module(Autoencoder(), folder / AUTOENCODER_FILE)  # type: ignore[return-value]


def load_classifier(folder: Path = WEIGHTS_DIR) -> DigitClassifier:
    return load_module(DigitClassifier(), folder / CLASSIFIER_FILE)  # type: ignore[return-value]


def _save(tensors: dict[str, torch.Tensor], path: Path, dtype: torch.dtype, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    converted = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    save_file(converted, str(path), metadata={"format": "pt", **metadata})


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
