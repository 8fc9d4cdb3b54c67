"""What ``--checkpoint`` names, and which architecture it is, before any weight is read.

Three kinds of source: a single-file checkpoint in the original ldm/sgm layout (``.safetensors``
only: a pickle can run code when loaded), a diffusers folder (``model_index.json``), or a Hugging
Face repo id. Pure apart from huggingface_hub for repo configs; no torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lib_lcm.downloads.errors import hub_errors, hub_offline
from lib_lcm.lora_files.header import SafetensorsHeaderError, read_header
from lib_lcm.rules.architecture import Architecture

SourceKind = Literal["single-file", "folder", "repo"]
SINGLE_FILE: SourceKind = "single-file"
FOLDER: SourceKind = "folder"
REPO: SourceKind = "repo"

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Pipelines diffusers names for architectures without an LCM-LoRA.
_PIPELINE_ARCHITECTURES = {"StableDiffusion3Pipeline": Architecture.SD3, "FluxPipeline": Architecture.FLUX}


class StandaloneError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole message, no traceback needed."""


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    location: str
    architecture: Architecture
    evidence: str

    @property
    def name(self) -> str:
        """The model's name as the WebUI's infotext ``Model:`` shows it (file stem, folder or repo name)."""
        if self.kind == SINGLE_FILE:
            return Path(self.location).stem
        return self.location.rstrip("/\\").replace("\\", "/").split("/")[-1]


def inspect_checkpoint(location: str, *, endpoint: str | None = None) -> ModelSource:
    """Classify ``location``; raises StandaloneError with what to do for anything unusable."""
    path = Path(location).expanduser()
    if path.is_file():
        return _single_file(path)
    if path.is_dir():
        return _folder(path)
    if _REPO_ID.match(location) and not location.endswith((*PICKLE_SUFFIXES, ".safetensors")):
        return _repo(location, endpoint)
    raise StandaloneError(f"{location}: no such file or folder. Pass a .safetensors checkpoint, a diffusers "
                          "folder (with model_index.json) or a Hugging Face repo id such as "
                          "stable-diffusion-v1-5/stable-diffusion-v1-5.")


def require_supported(source: ModelSource) -> ModelSource:
    if source.architecture.is_supported:
        return source
    if source.architecture is Architecture.UNKNOWN:
        raise StandaloneError(f"{source.location}: could not tell its architecture ({source.evidence}). "
                              "LCM-LoRA exists for SD 1.5, SDXL and SSD-1B checkpoints.")
    raise StandaloneError(f"{source.location} is {source.architecture.label} ({source.evidence}); LCM-LoRA exists "
                          "for SD 1.5, SDXL and SSD-1B only. Use one of those checkpoints.")


def _single_file(path: Path) -> ModelSource:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise StandaloneError(
            f"{path.name} is a pickle ({path.suffix}): loading one can run any code it contains, so it is "
            "refused. Use the .safetensors release of this model, or convert it once in a tool you trust "
            "(for example the WebUI's Checkpoint Merger with safetensors output).")
    if path.suffix.lower() != ".safetensors":
        raise StandaloneError(f"{path.name}: expected a .safetensors checkpoint or a diffusers folder.")
    try:
        detection = read_header(path).detect()
    except SafetensorsHeaderError as error:
        raise StandaloneError(f"{error}.") from None
    if detection.kind == "lora":
        raise StandaloneError(f"{path.name} is a LoRA, not a checkpoint; pass it with --lora {path}:0.8 "
                              "beside a --checkpoint.")
    if detection.kind != "checkpoint":
        raise StandaloneError(f"{path.name} is not a full checkpoint (it has no UNet, VAE and text encoder "
                              "in the original layout); pass the complete model file or a diffusers folder.")
    return ModelSource(SINGLE_FILE, str(path), detection.architecture, detection.evidence)


def _folder(path: Path) -> ModelSource:
    index = path / "model_index.json"
    if not index.is_file():
        raise StandaloneError(f"{path} is a folder without model_index.json; pass a diffusers pipeline folder "
                              "or a single .safetensors file.")
    unet_config = path / "unet" / "config.json"
    architecture, evidence = architecture_of_pipeline(_read_json(index),
                                                      _read_json(unet_config) if unet_config.is_file() else None)
    return ModelSource(FOLDER, str(path), architecture, evidence)


def _repo(repo_id: str, endpoint: str | None) -> ModelSource:
    index = _read_json(Path(_hub_file(repo_id, "model_index.json", endpoint)))
    unet = None
    if "unet" in index:
        unet = _read_json(Path(_hub_file(repo_id, "unet/config.json", endpoint)))
    architecture, evidence = architecture_of_pipeline(index, unet)
    return ModelSource(REPO, repo_id, architecture, evidence)


def _hub_file(repo_id: str, filename: str, endpoint: str | None) -> str:
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id, filename, endpoint=endpoint)
    except Exception as error:  # offline, not found, gated: all end the same way for the user
        raise StandaloneError(hub_problem(repo_id, filename, error)) from None


def hub_problem(repo_id: str, filename: str, error: BaseException) -> str:
    """One sentence for what ``hf_hub_download`` raised.

    LocalEntryNotFoundError (not cached, and the hub out of reach) subclasses EntryNotFoundError, and
    GatedRepoError subclasses RepositoryNotFoundError: the narrower classes are asked first.
    """
    hub = hub_errors()
    if isinstance(error, (hub.OfflineModeIsEnabled, hub.LocalEntryNotFoundError)) or hub_offline():
        return (f"{repo_id}/{filename} is not in the Hugging Face cache and the hub is offline or out of reach "
                "(HF_HUB_OFFLINE, or no connection); run once online, or pass a local file or folder instead.")
    if isinstance(error, hub.GatedRepoError):
        return f"{repo_id} is gated: accept its licence on the hub and log in (huggingface-cli login)."
    if isinstance(error, (hub.RepositoryNotFoundError, hub.EntryNotFoundError)):
        return f"{repo_id}: no {filename} on the hub; check the repo id (it must be a diffusers pipeline repo)."
    first_line = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{repo_id}/{filename} could not be fetched ({type(error).__name__}: {first_line})."


def architecture_of_pipeline(index: dict[str, Any], unet: dict[str, Any] | None) -> tuple[Architecture, str]:
    """From a diffusers ``model_index.json`` and its ``unet/config.json``."""
    pipeline = str(index.get("_class_name", ""))
    if pipeline in _PIPELINE_ARCHITECTURES or unet is None:
        return _PIPELINE_ARCHITECTURES.get(pipeline, Architecture.UNKNOWN), f"a {pipeline or 'pipeline'} folder"
    width = unet.get("cross_attention_dim")
    is_xl = unet.get("addition_embed_type") == "text_time" or "XL" in pipeline
    by_width = {768: Architecture.SD1, 1024: Architecture.SD2, 1280: Architecture.SDXL_REFINER, 2048: Architecture.SDXL}
    architecture = by_width.get(width) if isinstance(width, int) else None
    evidence = f"UNet cross-attention width {width}"
    if architecture is None:  # a scaled-down model: go by the pipeline's structure
        architecture = Architecture.SDXL if is_xl else Architecture.SD1
        evidence += f", {pipeline} structure"
    if architecture is Architecture.SDXL and _is_ssd1b(unet):
        return Architecture.SSD1B, evidence + ", SSD-1B's shallower blocks"
    return architecture, evidence


def _is_ssd1b(unet: dict[str, Any]) -> bool:
    depths = unet.get("transformer_layers_per_block")
    return isinstance(depths, list) and bool(depths) and max(depths) <= 4


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StandaloneError(f"{path}: not readable JSON ({error}).") from None
    if not isinstance(value, dict):
        raise StandaloneError(f"{path}: expected a JSON object.")
    return value
