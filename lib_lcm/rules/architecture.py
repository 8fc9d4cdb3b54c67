"""Which Stable Diffusion architecture a model or a LoRA file belongs to.

Two sources of truth, both read defensively:

* the flags the WebUI puts on its loaded model (``is_sd1``, ``is_sdxl``, ...). A1111 1.10
  sets all of them in ``modules/sd_models.py`` ``set_model_type``; Forge has no ``is_ssd`` and,
  before the first generation, a flagless ``FakeInitialModel``;
* the tensor names and shapes in a ``.safetensors`` header (LoRA files, single-file checkpoints
  in the ldm/sgm layout, and diffusers UNets), see ``../shared/lora-layouts/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal


class Architecture(str, Enum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SSD1B = "ssd-1b"
    SDXL_REFINER = "sdxl-refiner"
    SD3 = "sd3"
    FLUX = "flux"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def is_supported(self) -> bool:
        """Whether an official LCM-LoRA exists for this architecture."""
        return self in SUPPORTED


_LABELS = {
    Architecture.SD1: "SD 1.5",
    Architecture.SD2: "SD 2.x",
    Architecture.SDXL: "SDXL",
    Architecture.SSD1B: "SSD-1B",
    Architecture.SDXL_REFINER: "SDXL refiner",
    Architecture.SD3: "SD3",
    Architecture.FLUX: "Flux",
    Architecture.UNKNOWN: "an unknown architecture",
}

SUPPORTED = frozenset({Architecture.SD1, Architecture.SDXL, Architecture.SSD1B})

# Width of the text embedding that cross-attention reads (the input width of attn2.to_k).
_CONTEXT_WIDTHS = {768: Architecture.SD1, 1024: Architecture.SD2, 2048: Architecture.SDXL,
                   1280: Architecture.SDXL_REFINER}
# Width of a text-encoder layer, for LoRA files that only touch the text encoder.
_TEXT_ENCODER_WIDTHS = {768: Architecture.SD1, 1024: Architecture.SD2}


def unsupported_reason(architecture: Architecture) -> str:
    """One sentence for the user when no LCM-LoRA exists for ``architecture``."""
    return (f"LCM-LoRA exists for SD 1.5, SDXL and SSD-1B, not for {architecture.label}; "
            "the generation runs unchanged.")


@dataclass(frozen=True)
class ModelFlags:
    """The WebUI's architecture flags on ``shared.sd_model``; None where the attribute is absent."""

    is_sd1: bool | None = None
    is_sd2: bool | None = None
    is_sdxl: bool | None = None
    is_ssd: bool | None = None
    is_sd3: bool | None = None

    @property
    def has_any(self) -> bool:
        return any(v is not None for v in (self.is_sd1, self.is_sd2, self.is_sdxl, self.is_ssd, self.is_sd3))


def architecture_from_flags(flags: ModelFlags, from_file: Architecture = Architecture.UNKNOWN) -> Architecture:
    """Combine the WebUI flags with what the checkpoint file's header says.

    The header refines what flags cannot express: SSD-1B on Forge (no ``is_ssd``), and the
    SDXL refiner, which A1111 also marks ``is_sdxl``. Without flags (Forge's placeholder
    model, Flux engines) the header is all there is.
    """
    if flags.is_sd3:
        return Architecture.SD3
    if flags.is_ssd:
        return Architecture.SSD1B
    if flags.is_sdxl:
        refined = {Architecture.SSD1B, Architecture.SDXL_REFINER}
        return from_file if from_file in refined else Architecture.SDXL
    if flags.is_sd2:
        return Architecture.SD2
    if flags.is_sd1:
        return Architecture.SD1
    return from_file


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: str


FileKind = Literal["lora", "checkpoint", "unet", "unknown"]


@dataclass(frozen=True)
class Detection:
    architecture: Architecture
    kind: FileKind
    evidence: str


def detect_architecture(tensors: Mapping[str, TensorInfo]) -> Detection:
    """Classify a safetensors file from its tensor names and shapes alone."""
    kind = _file_kind(tensors)
    names = [_normalise(k) for k in tensors]
    if any("joint_blocks_" in n for n in names):
        return Detection(Architecture.SD3, kind, "has MMDiT joint_blocks")
    if any("double_blocks_" in n for n in names):
        return Detection(Architecture.FLUX, kind, "has Flux double_blocks")
    width = _cross_attention_width(tensors, kind)
    if width is None:
        return _detect_from_text_encoder(tensors, kind)
    architecture = _CONTEXT_WIDTHS.get(width, Architecture.UNKNOWN)
    evidence = f"cross-attention reads {width}-wide text embeddings"
    if architecture is Architecture.UNKNOWN:
        architecture, evidence = _from_block_structure(names, evidence)
    if architecture is Architecture.SDXL and _looks_like_ssd1b(names):
        return Detection(Architecture.SSD1B, kind, evidence + ", SDXL blocks removed as in SSD-1B")
    return Detection(architecture, kind, evidence)


def _file_kind(tensors: Mapping[str, TensorInfo]) -> FileKind:
    keys = list(tensors)
    if any(_is_lora_key(k) for k in keys):
        return "lora"
    if any(k.startswith(("model.diffusion_model.", "conditioner.", "cond_stage_model.")) for k in keys):
        return "checkpoint"
    if any(k.startswith(("down_blocks.", "mid_block.", "up_blocks.")) for k in keys):
        return "unet"
    return "unknown"


_LORA_MARKERS = ("lora_down", "lora_up", "lora_A", "lora_B", "lora.down", "lora.up", "lora_linear_layer")


def _is_lora_key(key: str) -> bool:
    return key.startswith(("lora_unet_", "lora_te")) or any(m in key for m in _LORA_MARKERS)


def _normalise(key: str) -> str:
    return key.replace(".", "_")


def _cross_attention_width(tensors: Mapping[str, TensorInfo], kind: FileKind) -> int | None:
    for key, info in tensors.items():
        name = _normalise(key)
        if "attn2_to_k" not in name or len(info.shape) < 2:
            continue
        if kind == "lora":
            if any(m in name for m in ("lora_down", "lora_A", "lora_linear_layer_down")):
                return info.shape[1]  # down/A is [rank, in_features]
        elif name.endswith("attn2_to_k_weight"):
            return info.shape[1]  # Linear weight is [out_features, in_features]
    return None


def _detect_from_text_encoder(tensors: Mapping[str, TensorInfo], kind: FileKind) -> Detection:
    names = [_normalise(k) for k in tensors]
    if any(n.startswith(("lora_te1_", "lora_te2_")) for n in names) or any(
            n.startswith("conditioner_embedders_1_") for n in names):
        return Detection(Architecture.SDXL, kind, "has the two SDXL text encoders")
    for key, info in tensors.items():
        name = _normalise(key)
        if "self_attn_q_proj" in name and len(info.shape) >= 2:
            is_down = kind != "lora" or any(m in name for m in ("lora_down", "lora_A"))
            if is_down:
                width = info.shape[1]
                architecture = _TEXT_ENCODER_WIDTHS.get(width, Architecture.UNKNOWN)
                return Detection(architecture, kind, f"text encoder is {width} wide")
    return Detection(Architecture.UNKNOWN, kind, "no cross-attention or text-encoder tensors found")


# The deepest down block: 10 transformer blocks in SDXL, 4 in SSD-1B. (Its up-block mirror keeps
# 10 in one attention of SSD-1B, so only the down side tells them apart.)
_DEEP_BLOCK = re.compile(r"(?:down_blocks_2_attentions_\d+|input_blocks_[78]_1)_transformer_blocks_(\d+)_")
_MID_ATTENTION = ("mid_block_attentions_", "middle_block_1_")


def _looks_like_ssd1b(names: Sequence[str]) -> bool:
    """SSD-1B is SDXL without the middle transformer and with shallower deep blocks.

    Both features must be visible: a file that never touches the deep blocks (a small style
    LoRA) stays SDXL, since SDXL is the safe reading of an ambiguous SDXL-width file.
    """
    if any(marker in n for n in names for marker in _MID_ATTENTION):
        return False
    depths = [int(m.group(1)) for n in names if (m := _DEEP_BLOCK.search(n))]
    return bool(depths) and max(depths) <= 3


# Block structure, for models whose widths are no released model's (scaled-down test models,
# research checkpoints): SD 1.x/2.x have cross-attention at the first resolution, SDXL does not.
_FIRST_LEVEL_ATTENTION = re.compile(r"(?:^|_)(?:down_blocks_0_attentions_|input_blocks_[12]_1_)")
_SECOND_LEVEL_ATTENTION = re.compile(r"(?:^|_)(?:down_blocks_1_attentions_|input_blocks_[45]_1_)")
_SDXL_TEXT = ("lora_te2_", "conditioner_embedders_1_", "add_embedding_", "model_diffusion_model_label_emb_")


def _from_block_structure(names: Sequence[str], evidence: str) -> tuple[Architecture, str]:
    if any(_FIRST_LEVEL_ATTENTION.search(n) for n in names):
        if any(n.startswith("cond_stage_model_model_") for n in names):
            return Architecture.SD2, evidence + "; SD 2.x blocks and OpenCLIP text encoder"
        return Architecture.SD1, evidence + "; SD 1.x block structure"
    if any(_SECOND_LEVEL_ATTENTION.search(n) for n in names) or any(n.startswith(_SDXL_TEXT) for n in names):
        if _looks_like_ssd1b(names):
            return Architecture.SSD1B, evidence + "; SSD-1B block structure"
        return Architecture.SDXL, evidence + "; SDXL block structure"
    return Architecture.UNKNOWN, evidence
