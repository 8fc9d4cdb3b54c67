"""Combine the acceleration LoRA and style LoRAs on a diffusers pipeline: adapters, then fused.

θ = θ_pre + λ1·τ_style + λ2·τ_LCM (LCM-LoRA paper): each file is loaded as a peft adapter, the
weights are set with ``set_adapters``, and ``fuse_lora`` bakes the sum into the base weights so
sampling pays nothing per step; ``unload_lora_weights`` then drops the adapter wrappers.

Before diffusers sees a file, it is checked here, so a wrong file gets a sentence instead of a
state-dict traceback: pickles are refused, the header's architecture must match the model's, and
every kohya-named layer must exist in the model with the same sizes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lib_lcm.lora_files.header import SafetensorsHeaderError, read_header
from lib_lcm.rules.architecture import Architecture
from lib_lcm.standalone.model_source import PICKLE_SUFFIXES, StandaloneError

# kohya's prefix for each pipeline component (sd-scripts' networks/lora.py naming, which the
# official LCM-LoRA files use: module path with "." -> "_").
_KOHYA_PREFIXES = {"unet": ("lora_unet_",), "text_encoder": ("lora_te_", "lora_te1_"), "text_encoder_2": ("lora_te2_",)}
_SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")
# An SDXL style LoRA on SSD-1B (SDXL with blocks removed) applies to the layers that remain.
_COMPATIBLE = {Architecture.SSD1B: {Architecture.SDXL}, Architecture.SDXL: {Architecture.SSD1B}}


@dataclass(frozen=True)
class LoraFile:
    path: Path
    weight: float
    role: Literal["acceleration", "style"] = "style"

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class Fit:
    matched: int = 0
    mismatched: tuple[str, ...] = ()  # "layer: LoRA in->out, model in->out"
    missing: int = 0  # kohya layers the model does not have
    other_names: int = 0  # keys in another naming (sgm, diffusers, peft): left to diffusers to map


def check_lora_file(lora: LoraFile, architecture: Architecture) -> None:
    """Refuse what cannot be a usable LoRA for ``architecture``, before reading any tensor."""
    path = lora.path
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise StandaloneError(f"{path.name} is a pickle ({path.suffix}): refused, since loading one can run any "
                              "code it contains. Use the .safetensors version of this LoRA.")
    if not path.is_file():
        raise StandaloneError(f"{path}: no such LoRA file.")
    try:
        detection = read_header(path).detect()
    except SafetensorsHeaderError as error:
        raise StandaloneError(f"{error}.") from None
    if detection.kind != "lora":
        raise StandaloneError(f"{path.name} is not a LoRA file (no lora_down/lora_up or lora_A/lora_B tensors).")
    found = detection.architecture
    if found in (Architecture.UNKNOWN, architecture) or found in _COMPATIBLE.get(architecture, set()):
        return
    raise StandaloneError(f"{path.name} is a LoRA for {found.label} ({detection.evidence}), but the checkpoint is "
                          f"{architecture.label}; use a {architecture.label} LoRA.")


def layer_sizes(pipe: Any) -> dict[str, tuple[int, int]]:
    """kohya layer name -> (in, out) for every Linear and Conv2d of the pipeline's UNet and text encoders."""
    import torch

    sizes: dict[str, tuple[int, int]] = {}
    for component, prefixes in _KOHYA_PREFIXES.items():
        model = getattr(pipe, component, None)
        if model is None:
            continue
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear):
                size = (module.in_features, module.out_features)
            elif isinstance(module, torch.nn.Conv2d):
                size = (module.in_channels, module.out_channels)
            else:
                continue
            for prefix in prefixes:
                sizes[prefix + name.replace(".", "_")] = size
    return sizes


def fit(state_dict: Mapping[str, Any], sizes: Mapping[str, tuple[int, int]]) -> Fit:
    layers = {k[: -len(s)] for k in state_dict for s in _SUFFIXES if k.endswith(s)}
    matched = missing = 0
    mismatched: list[str] = []
    for layer in sorted(layers):
        down, up = state_dict.get(layer + ".lora_down.weight"), state_dict.get(layer + ".lora_up.weight")
        if down is None or up is None:
            continue
        if layer not in sizes:
            missing += 1
            continue
        theirs = (int(down.shape[1]), int(up.shape[0]))
        if theirs != sizes[layer]:
            mismatched.append(f"{layer}: LoRA {theirs[0]}->{theirs[1]}, model {sizes[layer][0]}->{sizes[layer][1]}")
        else:
            matched += 1
    other = sum(1 for k in state_dict if not k.endswith(_SUFFIXES))
    return Fit(matched, tuple(mismatched), missing, other)


def judge(lora: LoraFile, result: Fit, architecture: Architecture) -> list[str]:
    """Raise for a LoRA that cannot apply; return warnings for one that applies in part."""
    if result.mismatched:
        raise StandaloneError(
            f"{lora.path.name} does not fit this {architecture.label} model: {len(result.mismatched)} of its layers "
            f"have other sizes (first: {result.mismatched[0]}). It was made for another architecture.")
    if result.matched == 0 and result.other_names == 0:
        raise StandaloneError(f"{lora.path.name}: none of its {result.missing} layers exist in this "
                              f"{architecture.label} model; it was made for another architecture.")
    if result.missing:
        return [f"{lora.path.name}: {result.missing} of its {result.missing + result.matched} layers are not in "
                f"this {architecture.label} model and are skipped."]
    return []


def apply_loras(pipe: Any, loras: Sequence[LoraFile], architecture: Architecture, fuse: bool = True,
                adjustable_styles: bool = False) -> list[str]:
    """Load every LoRA as an adapter at its weight, then fuse them into the base weights.

    ``adjustable_styles``: fuse only the acceleration LoRA and keep the style LoRAs as adapters, whose
    weights ``set_style_weights`` changes exactly (a fused weight could only be changed by adding the
    difference, which drifts in half precision).
    """
    if adjustable_styles and fuse:
        fixed = [lora for lora in loras if lora.role == "acceleration"]
        notes = apply_loras(pipe, fixed, architecture, fuse=True)
        return notes + apply_loras(pipe, [lora for lora in loras if lora.role != "acceleration"], architecture,
                                   fuse=False)
    notes, names = _load_adapters(pipe, loras, architecture)
    if not names:
        return notes
    pipe.set_adapters(names, adapter_weights=[lora.weight for lora in loras])
    if fuse:
        pipe.fuse_lora(adapter_names=names)
        pipe.unload_lora_weights()
    return notes


def _load_adapters(pipe: Any, loras: Sequence[LoraFile], architecture: Architecture) -> tuple[list[str], list[str]]:
    from safetensors.torch import load_file

    notes: list[str] = []
    sizes = layer_sizes(pipe)
    names: list[str] = []
    for lora in loras:
        check_lora_file(lora, architecture)
        state_dict = load_file(str(lora.path))
        notes += judge(lora, fit(state_dict, sizes), architecture)
        name = adapter_name(lora, len(names))
        try:
            with warnings.catch_warnings():  # peft's "multiple adapters" warning: several is the point here
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                pipe.load_lora_weights(state_dict, adapter_name=name)
        except (ValueError, RuntimeError, KeyError) as error:
            raise StandaloneError(f"{lora.path.name} could not be applied to this {architecture.label} model: "
                                  f"{str(error).splitlines()[0][:300]}") from None
        names.append(name)
    return notes, names


def adapter_name(lora: LoraFile, index: int) -> str:
    """The peft adapter name of the ``index``-th LoRA of its role."""
    return f"{lora.role}_{index}"


def set_style_weights(pipe: Any, styles: Sequence[LoraFile], acceleration: LoraFile | None = None) -> None:
    """New weights for style LoRAs kept as adapters: after ``apply_loras(..., adjustable_styles=True)``,
    or, with ``acceleration`` (an adapter too), after ``apply_loras(..., fuse=False)``."""
    loras = [*([acceleration] if acceleration else []), *styles]
    names = [adapter_name(lora, index) for index, lora in enumerate(loras)]
    if names:
        pipe.set_adapters(names, adapter_weights=[lora.weight for lora in loras])
