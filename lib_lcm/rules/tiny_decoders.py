"""The tiny autoencoders the standalone fast path can decode with, as data.

madebyollin's TAESD (SD 1.5's latent space) and TAESDXL (SDXL's, which SSD-1B shares) are distilled
stand-ins for the checkpoint's VAE: about 2.4M parameters instead of 84M, decoding a 512² image in a
few milliseconds on a GPU at a small cost in fine detail. Both share one layout (diffusers'
``AutoencoderTiny``: ``encoder.layers.*``, ``decoder.layers.*``) and one config, so a file is
recognised by its layout and trusted for its latent space by the repository it came from (and the
hub's sha256).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lib_lcm.rules.architecture import Architecture, TensorInfo

# The first convolutions of each half: RGB -> 64 channels in, 4 latent channels -> 64 out.
_ENCODER_IN = ("encoder.layers.0.weight", (64, 3, 3, 3))
_DECODER_IN = ("decoder.layers.0.weight", (64, 4, 3, 3))


@dataclass(frozen=True)
class TinyDecoder:
    key: str
    architectures: tuple[Architecture, ...]
    repo_id: str
    repo_file: str
    local_name: str
    approx_size: str

    @property
    def local_filename(self) -> str:
        return f"{self.local_name}.safetensors"

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"

    def content_problem(self, tensors: Mapping[str, TensorInfo]) -> str | None:
        """Why a downloaded file is not this decoder, or None when its layout is AutoencoderTiny's."""
        for key, shape in (_ENCODER_IN, _DECODER_IN):
            if key not in tensors or tensors[key].shape != shape:
                return f"it is not a tiny autoencoder ({key} {shape} is missing)"
        return None


TINY_DECODERS: tuple[TinyDecoder, ...] = (
    TinyDecoder(key="taesd", architectures=(Architecture.SD1,), repo_id="madebyollin/taesd",
                repo_file="diffusion_pytorch_model.safetensors", local_name="taesd", approx_size="9.8 MB"),
    TinyDecoder(key="taesdxl", architectures=(Architecture.SDXL, Architecture.SSD1B), repo_id="madebyollin/taesdxl",
                repo_file="diffusion_pytorch_model.safetensors", local_name="taesdxl", approx_size="9.8 MB"),
)


def tiny_decoder_for(architecture: Architecture) -> TinyDecoder | None:
    return next((d for d in TINY_DECODERS if architecture in d.architectures), None)
