"""Distilling an LCM-LoRA for a real SD 1.5 / SDXL / SSD-1B checkpoint from captioned images.

The checkpoint loads as ``python -m lib_lcm generate`` loads it (single file, diffusers folder or repo
id). The training data is a folder, webdataset shards or a ``datasets`` dataset
(:mod:`lib_lcm.training.data`), each process reading its own share, encoded as the pipelines encode
it. :mod:`lib_lcm.training.loop` trains the LoRA on one process or many (``accelerate launch``). On
CUDA the teacher is held in float16 (or bfloat16) and runs under Accelerate's mixed precision, the
LoRA in float32; on the CPU everything is float32. SDXL keeps one teacher UNet, with the LoRA
switched off for the teacher's pass and on for the student's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from lib_lcm.training import distill, loop
from lib_lcm.training.data import EncodedFeed, Encoder, Keep, Share, open_samples

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Data:
    """Where the training images come from, and how their encodings are kept."""

    images: Path | None = None
    shards: Sequence[str] = ()
    dataset: str | None = None
    split: str = "train"
    image_column: str = "image"
    caption_column: str = "text"
    keep: Keep = "memory"
    cache: Path | None = None


@dataclass(frozen=True)
class Hardware:
    """Where and how the distillation runs."""

    device: str | None = None  # default: cuda when present
    half: Literal["float16", "bfloat16"] = "float16"  # the teacher's precision on CUDA
    accumulate: int = 1  # micro-batches per optimizer step, per process
    gradient_checkpointing: bool = False


def distill_checkpoint(checkpoint: str, data: Data, out: Path, config: distill.DistillConfig, size: int = 512,
                       hardware: Hardware = Hardware(), config_dir: Path | None = None, endpoint: str | None = None,
                       resume: bool = True, echo: Echo = print, progress: bool = True) -> Path | None:
    """Load, distill, save ``out/lcm-lora-<arch>-distilled.safetensors``: its path on the main process, which
    writes it, None on the others."""
    from lib_lcm.standalone.model_loading import default_cache_dir, device_and_dtype, hub_tokenizer_files, load_pipeline
    from lib_lcm.standalone.model_source import inspect_checkpoint, require_supported

    config.check()
    samples = open_samples(data.images, data.shards, data.dataset, data.split, data.image_column,
                           data.caption_column)
    source = require_supported(inspect_checkpoint(checkpoint, endpoint=endpoint))
    device, dtype_name = device_and_dtype(hardware.device, torch.cuda.is_available())
    half = dtype_name == "float16"
    accelerator = loop.accelerator_for(device, ("fp16" if hardware.half == "float16" else "bf16") if half else "no",
                                       hardware.accumulate)
    loop.my_shares(config, accelerator)  # a batch that does not split is refused before the slow part
    device = str(accelerator.device) if device.startswith("cuda") else device  # each process its own GPU
    dtype = getattr(torch, hardware.half) if half else torch.float32
    say = loop.main_only(echo, accelerator)
    say(f"{source.location}: {source.architecture.label}; {samples.describe()} at {size}x{size}; "
        f"{accelerator.num_processes} process(es) on {device}, teacher in {str(dtype).removeprefix('torch.')}")
    pipe = load_pipeline(source, dtype, config_dir, hub_tokenizer_files(endpoint), default_cache_dir()).to(device)
    if hardware.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    state = distill.start(pipe.unet, config)
    loop.resume_or_start(state, config, out, resume, say)
    share = Share(len(samples), accelerator.process_index, accelerator.num_processes, config.seed)
    per_process = config.batch // accelerator.num_processes
    feed = EncodedFeed(samples, Encoder(pipe, size, source.architecture), share, data.keep, data.cache,
                       position=state.step * per_process)
    loop.train(state, feed, pipe.scheduler.alphas_cumprod, config, accelerator, out, say, progress)
    return loop.finish(accelerator, state, config, out / f"lcm-lora-{source.architecture.value}-distilled.safetensors")
