"""Distilling an LCM-LoRA for a real SD 1.5 / SDXL / SSD-1B checkpoint from a folder of captioned images.

The checkpoint loads as ``python -m lib_lcm generate`` loads it (single file, diffusers folder or
repo id). Every image is encoded once by the VAE (float32: SDXL's VAE overflows in float16) and every
caption once by the text encoders, with the empty prompt as the unconditional side, as the pipelines
do; then :mod:`lib_lcm.training.distill` trains the LoRA. On CUDA the teacher runs in float16 (or bfloat16)
under autocast and the LoRA in float32; on the CPU everything is float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lib_lcm.rules.architecture import Architecture
from lib_lcm.training import distill

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
Echo = Callable[[str], None]


def captioned_images(folder: Path) -> list[tuple[Path, str]]:
    """Images of ``folder`` with the text of a same-named ``.txt`` beside each (empty when there is none)."""
    if not folder.is_dir():
        raise distill.DistillError(f"{folder} is not a folder; give --images a folder of training images.")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise distill.DistillError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); put training images "
                                   "there, each with an optional caption in a .txt file of the same name.")
    return [(p, _caption(p)) for p in images]


def _caption(image: Path) -> str:
    text = image.with_suffix(".txt")
    return text.read_text(encoding="utf-8").strip() if text.is_file() else ""


@dataclass
class Prepared:
    """The encoded dataset, on the training device."""

    latents: torch.Tensor
    cond: torch.Tensor
    uncond: torch.Tensor
    cond_added: dict[str, torch.Tensor] | None
    uncond_added: dict[str, torch.Tensor] | None

    def batches(self) -> distill.BatchSource:
        def draw(batch: int, generator: torch.Generator) -> distill.LatentBatch:
            pick = torch.randint(0, len(self.latents), (batch,), generator=generator).to(self.latents.device)
            return distill.LatentBatch(self.latents[pick], self.cond[pick], self.uncond[pick],
                                       _take(self.cond_added, pick), _take(self.uncond_added, pick))

        return draw


def _take(added: dict[str, torch.Tensor] | None, pick: torch.Tensor) -> dict[str, torch.Tensor] | None:
    return None if added is None else {k: v[pick] for k, v in added.items()}


@torch.no_grad()
def prepare(pipe: Any, items: list[tuple[Path, str]], size: int, architecture: Architecture) -> Prepared:
    """Latents (VAE mean times its scaling factor) and prompt embeddings for every image."""
    device = pipe.unet.device
    dtype = pipe.vae.dtype
    pipe.vae.to(torch.float32)  # once for the whole dataset, not per image
    try:
        latents = torch.cat([_encode_image(pipe.vae, path, size, device) for path, _ in items])
    finally:
        pipe.vae.to(dtype)
    latents = latents.to(pipe.unet.dtype)
    captions = [caption for _, caption in items]
    if architecture is Architecture.SD1:
        cond, uncond = pipe.encode_prompt(captions, device, 1, True, negative_prompt=None)
        return Prepared(latents, cond, uncond, None, None)
    cond, uncond, pooled, uncond_pooled = pipe.encode_prompt(
        prompt=captions, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True)
    # SDXL's size conditioning: original size, crop offset, target size (all the training resolution)
    time_ids = torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=cond.dtype).repeat(len(items), 1)
    return Prepared(latents, cond, uncond, {"text_embeds": pooled, "time_ids": time_ids},
                    {"text_embeds": uncond_pooled, "time_ids": time_ids})


def _encode_image(vae: Any, path: Path, size: int, device: torch.device) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise distill.DistillError(f"{path.name} is not a readable image ({error}); remove it or replace it.") from None
    side = min(image.size)  # centre crop to a square, then resize: the training resolution
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(size, size, 3)
    pixels = (pixels.permute(2, 0, 1).float() / 127.5 - 1).unsqueeze(0).to(device)
    return vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor


def distill_checkpoint(checkpoint: str, images: Path, out: Path, config: distill.DistillConfig, size: int = 512,
                       device: str | None = None, half: str = "float16", config_dir: Path | None = None,
                       endpoint: str | None = None, resume: bool = True, echo: Echo = print,
                       progress: bool = True) -> Path:
    """Load, encode, distill, save ``out/lcm-lora-<arch>-distilled.safetensors``."""
    from lib_lcm.standalone.model_loading import default_cache_dir, device_and_dtype, hub_tokenizer_files, load_pipeline
    from lib_lcm.standalone.model_source import inspect_checkpoint, require_supported

    config.check()
    items = captioned_images(images)
    source = require_supported(inspect_checkpoint(checkpoint, endpoint=endpoint))
    device, dtype_name = device_and_dtype(device, torch.cuda.is_available())
    dtype = getattr(torch, half if dtype_name == "float16" else "float32")
    echo(f"{source.location}: {source.architecture.label}; {len(items)} images at {size}x{size}; {device}, "
         f"teacher in {str(dtype).removeprefix('torch.')}")
    pipe = load_pipeline(source, dtype, config_dir, hub_tokenizer_files(endpoint), default_cache_dir()).to(device)
    data = prepare(pipe, items, size, source.architecture)
    state = distill.start(pipe.unet, config)
    if resume and distill.resume(state, config, out):
        echo(f"resuming from step {state.step} ({out / distill.STATE_FILE})")
    distill.run(state, data.batches(), pipe.scheduler.alphas_cumprod, config, out, echo, progress)
    name = f"lcm-lora-{source.architecture.value}-distilled.safetensors"
    return distill.save_lora(pipe.unet, config, out / name, lora=state.final_lora(config))
