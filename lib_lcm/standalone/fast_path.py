"""The fast path of the standalone pipeline: what stands between today's generate and the GPU's limit.

On one H200 (issue 16's measurements) a 4-step SD 1.5 image took 150-240 ms where the parts cost
about 50: eager PyTorch launches every small kernel from Python (a compiled UNet with CUDA graphs
runs in a fifth of the time), the full VAE decoder costs as much as four UNet calls (the tiny
autoencoder a seventh of it), and the prompt was encoded again for every image. So, each optional:

1. ``PromptCache``: the text encoders run once per distinct prompt (always on; exact).
2. ``tiny_decoder``: TAESD / TAESDXL instead of the checkpoint's VAE, downloaded and verified into the
   decoder folder like the LoRA files (``Options.decoder == "tiny"``).
3. ``Decoder``: our own latent -> image step, so the decoder can be compiled and SDXL's VAE, which
   overflows in float16 (its config says ``force_upcast``), keeps a float32 copy instead of being
   converted to float32 and back for every image as diffusers' pipelines do.
4. ``compile_for_speed``: channels-last weights, and ``torch.compile`` of the UNet and the decoder
   with static shapes (a new prompt or seed reuses the compiled graphs; a new size or batch compiles
   once more), CUDA graphs on CUDA ("reduce-overhead"); on the CPU inductor's default mode.
5. ``place``: the pipeline on its device, or CPU offload for small GPUs (model: one model at a time
   on the GPU; sequential: one layer at a time, slowest and smallest).
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lib_lcm.downloads.transfer import ProgressCallback
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.tiny_decoders import TinyDecoder, tiny_decoder_for
from lib_lcm.standalone.model_source import StandaloneError

# torch-free at import: the command line's parser reads these choices.
DecoderChoice = Literal["full", "tiny"]  # the checkpoint's VAE, or the tiny autoencoder (TAESD / TAESDXL)
OffloadChoice = Literal["none", "model", "sequential"]
Echo = Callable[[str], None]


# --- 1. prompt embeddings ----------------------------------------------------------------------------

# What encode_prompt returns, in order, as the pipelines' keyword arguments (SD 1.5: the first two).
_EMBEDDING_ARGUMENTS = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
                        "negative_pooled_prompt_embeds")


class PromptCache:
    """The pipelines' own ``encode_prompt`` results for the last few prompts, passed back as embeddings.

    The key is everything the encoding depends on; ``clear`` after a text encoder's weights changed
    (a style LoRA's weight on the live page)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str, bool], dict[str, Any]] = OrderedDict()
        self.encodings = 0  # how many times the text encoders really ran

    def arguments(self, pipe: Any, prompt: str, negative: str, guided: bool) -> dict[str, Any]:
        key = (prompt, negative, guided)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        encoded = pipe.encode_prompt(prompt=prompt, device=pipe._execution_device, num_images_per_prompt=1,
                                     do_classifier_free_guidance=guided, negative_prompt=negative or None)
        self.encodings += 1
        arguments = {name: value for name, value in zip(_EMBEDDING_ARGUMENTS, encoded, strict=False)
                     if value is not None}
        self._entries[key] = arguments
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return arguments

    def clear(self) -> None:
        self._entries.clear()


# --- 2. the tiny decoder ---------------------------------------------------------------------------

def tiny_decoder_file(architecture: Architecture, folder: Path, endpoint: str | None, echo: Echo,
                      progress: ProgressCallback | None = None) -> Path:
    """The TAESD weights for ``architecture`` in ``folder``, downloaded the first time."""
    entry = tiny_decoder_for(architecture)
    if entry is None:
        raise StandaloneError(f"No tiny decoder is published for {architecture.label}; use --vae full.")
    path = folder / entry.local_filename
    return path if path.is_file() else _download_decoder(entry, folder, endpoint, echo, progress)


def _download_decoder(entry: TinyDecoder, folder: Path, endpoint: str | None, echo: Echo,
                      progress: ProgressCallback | None) -> Path:
    from lib_lcm.downloads.errors import DownloadError
    from lib_lcm.downloads.transfer import download

    echo(f"{entry.local_filename} is not in {folder}; downloading it from {entry.repo_id} ({entry.approx_size})")
    try:
        return download(entry, folder, endpoint=endpoint, on_progress=progress, on_retry=echo).path
    except DownloadError as error:
        raise StandaloneError(f"The tiny decoder could not be downloaded: {error.message} Put {entry.repo_file} from "
                              f"{entry.url} into {folder} as {entry.local_filename}, or use --vae full.") from None


def load_tiny_decoder(path: Path) -> Any:
    """An AutoencoderTiny from a file in TAESD's diffusers layout, with the shipped config."""
    from diffusers import AutoencoderTiny
    from safetensors.torch import load_file

    from lib_lcm.standalone.model_loading import CONFIGS

    config = CONFIGS / "tiny-autoencoder" / "config.json"
    model = AutoencoderTiny.from_config(json.loads(config.read_text(encoding="utf-8")))
    try:
        state_dict = load_file(str(path))
        model.load_state_dict(state_dict, strict=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise StandaloneError(f"{path} is not a usable tiny autoencoder ({str(error).splitlines()[0][:200]}); "
                              "delete it to download it again, or use --vae full.") from None
    return model.eval()


# --- 3. decoding -----------------------------------------------------------------------------------

def _decode(vae: Any, latents: Any) -> Any:
    return vae.decode(latents, return_dict=False)[0]


@dataclass
class Decoder:
    """Latents as the pipelines return them (``output_type="latent"``) -> PIL images."""

    vae: Any
    image_processor: Any
    decode: Callable[[Any, Any], Any] = _decode

    @property
    def dtype(self) -> Any:
        return next(self.vae.parameters()).dtype

    def __call__(self, latents: Any) -> list[Any]:
        import torch

        scaled = latents.to(self.dtype) / float(self.vae.config.scaling_factor)
        with torch.no_grad():
            images = self.decode(self.vae, scaled)
        return list(self.image_processor.postprocess(images.float(), output_type="pil"))


def decoder_for(pipe: Any, tiny: Any | None, architecture: Architecture) -> Decoder:
    """The tiny decoder, or the pipeline's VAE (for SDXL and SSD-1B in float16, a float32 copy)."""
    import torch

    vae = tiny if tiny is not None else pipe.vae
    # SD 1.5's VAE is fine in float16 (its pipeline never upcasts); SDXL's overflows into NaN images,
    # which its pipelines avoid when the VAE config says force_upcast, as the SDXL configs do.
    xl = architecture in (Architecture.SDXL, Architecture.SSD1B)
    if tiny is None and xl and vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        vae = copy.deepcopy(vae).to(torch.float32)
    return Decoder(vae, pipe.image_processor)


# --- 4. compiling ----------------------------------------------------------------------------------

def compile_for_speed(pipe: Any, decoder: Decoder, device: str) -> None:
    """Channels-last weights; the UNet and the decoder compiled for fixed shapes."""
    import torch

    mode = "reduce-overhead" if device.startswith("cuda") else None  # CUDA graphs exist only on CUDA
    pipe.unet.to(memory_format=torch.channels_last)
    decoder.vae.to(memory_format=torch.channels_last)
    pipe.unet = torch.compile(pipe.unet, mode=mode, dynamic=False)
    decoder.decode = torch.compile(_decode, mode=mode, dynamic=False)


# --- 5. placing ------------------------------------------------------------------------------------

def check_placement(device: str, offload: OffloadChoice, compiled: bool) -> None:
    """Refuse, before anything loads, an offload that cannot work."""
    if offload == "none":
        return
    if not device.startswith("cuda"):
        raise StandaloneError(f"--offload {offload} needs a CUDA GPU: it keeps the weights in CPU memory and moves "
                              "them to the GPU as they run. On the CPU, leave --offload out.")
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise StandaloneError(f"--offload {offload} needs the accelerate package (diffusers moves the weights with "
                              "it): pip install accelerate.")
    if compiled:
        raise StandaloneError("--offload and --compile don't combine: offload moves the weights between CPU and GPU "
                              "for every call, which compiled CUDA graphs cannot follow. Choose one.")


def place(pipe: Any, device: str, offload: OffloadChoice) -> Any:
    if offload == "none":
        return pipe.to(device)
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    return pipe
