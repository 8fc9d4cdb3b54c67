"""Load a checkpoint into a diffusers pipeline, offline when the files are local.

A single file in the original layout needs the diffusers configs of its architecture. Asked with
``config=None``, diffusers fetches them from the hub on every load; we ship them instead
(``lib_lcm/model_configs``, checked against the real tensor layouts by the tests) and add the CLIP
tokenizer files, which come from the Hugging Face cache (the WebUI already put them there) or, once,
from the hub. ``config=`` a diffusers folder of the same architecture replaces all of that.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from lib_lcm.rules.architecture import Architecture
from lib_lcm.sampling.schedule import ORIGINAL_STEPS
from lib_lcm.standalone.model_source import FOLDER, SINGLE_FILE, ModelSource, StandaloneError, hub_problem

CONFIGS = Path(__file__).resolve().parent / "model_configs"
_CONFIG_KEYS = {Architecture.SD1: "sd15", Architecture.SDXL: "sdxl", Architecture.SSD1B: "ssd-1b"}
TOKENIZER_REPO = "openai/clip-vit-large-patch14"  # SD 1.5's and SDXL's first tokenizer
TOKENIZER_FILES = ("vocab.json", "merges.txt")
# SDXL's second tokenizer is the same BPE, padded with "!" (stabilityai/stable-diffusion-xl-base-1.0).
_PAD_TOKENS = {"tokenizer": "<|endoftext|>", "tokenizer_2": "!"}

TokenizerSource = Callable[[str], Path]  # file name -> local path of that tokenizer file


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lcm-lora"


def hub_tokenizer_files(endpoint: str | None = None) -> TokenizerSource:
    def fetch(filename: str) -> Path:
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(TOKENIZER_REPO, filename, endpoint=endpoint))
        except Exception as error:  # every hub failure ends in the same advice
            raise StandaloneError(hub_problem(TOKENIZER_REPO, filename, error) + " Or pass --config with a "
                                  "diffusers folder of the same architecture (it holds the tokenizer).") from None

    return fetch


def bundled_config_dir(architecture: Architecture, tokenizer_files: TokenizerSource, cache: Path) -> Path:
    """The shipped configs for ``architecture`` plus tokenizer folders, assembled under ``cache``."""
    key = _CONFIG_KEYS.get(architecture)
    if key is None:
        raise StandaloneError(f"No configs are shipped for {architecture.label}.")
    target = cache / "configs" / key
    shutil.copytree(CONFIGS / key, target, dirs_exist_ok=True)
    index = json.loads((target / "model_index.json").read_text(encoding="utf-8"))
    for folder in (f for f in _PAD_TOKENS if f in index):
        _write_tokenizer(target / folder, tokenizer_files, _PAD_TOKENS[folder])
    return target


def _write_tokenizer(folder: Path, tokenizer_files: TokenizerSource, pad_token: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_files(name), folder / name)
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
               "pad_token": pad_token}
    config = {**special, "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=1), encoding="utf-8")


def load_pipeline(source: ModelSource, dtype: Any, config_dir: Path | None,
                  tokenizer_files: TokenizerSource, cache: Path) -> Any:
    """The text-to-image pipeline for ``source`` (SD 1.5: StableDiffusionPipeline, else the XL one)."""
    extra: dict[str, Any] = {"torch_dtype": dtype}
    if source.architecture is Architecture.SD1:
        extra.update(safety_checker=None, requires_safety_checker=False)
    try:
        if source.kind == SINGLE_FILE:
            config = config_dir or bundled_config_dir(source.architecture, tokenizer_files, cache)
            return _pipeline_class(source.architecture).from_single_file(
                source.location, config=str(config), local_files_only=True, **extra)
        from diffusers import DiffusionPipeline

        return DiffusionPipeline.from_pretrained(source.location, local_files_only=source.kind == FOLDER, **extra)
    except StandaloneError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise StandaloneError(f"{source.location} could not be loaded as {source.architecture.label}: "
                              f"{type(error).__name__}: {str(error).splitlines()[0][:300]}") from None


def device_and_dtype(requested: str | None, cuda_available: bool) -> tuple[str, str]:
    """CUDA when present, in fp16 (half the memory, and what GPUs run fast); anything else in fp32."""
    device = requested or ("cuda" if cuda_available else "cpu")
    return device, "float16" if device.startswith("cuda") else "float32"


# The keys of a shipped scheduler_config.json that describe training, not one sampler's spacing.
_TRAINING_SCHEDULE_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type",
                           "steps_offset", "clip_sample", "set_alpha_to_one")


def training_schedule(architecture: Architecture = Architecture.SD1) -> dict[str, Any]:
    """The architecture's training noise schedule, from its shipped ``scheduler_config.json``."""
    key = _CONFIG_KEYS[architecture]
    config = json.loads((CONFIGS / key / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    return {k: config[k] for k in _TRAINING_SCHEDULE_KEYS}


def reference_scheduler(kind: Literal["ddim", "dpm", "lcm", "tcd"],
                        architecture: Architecture = Architecture.SD1) -> Any:
    """diffusers' scheduler of ``kind`` ("ddim", "dpm" for DPM-Solver++, "lcm" or "tcd") on that schedule."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, LCMScheduler, TCDScheduler

    schedule = training_schedule(architecture)
    if kind == "ddim":
        return DDIMScheduler.from_config(schedule)
    if kind == "dpm":
        return DPMSolverMultistepScheduler.from_config({**schedule, "algorithm_type": "dpmsolver++"})
    consistency = {"lcm": LCMScheduler, "tcd": TCDScheduler}[kind]
    return consistency.from_config({**schedule, "original_inference_steps": ORIGINAL_STEPS})


def _pipeline_class(architecture: Architecture) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionPipeline if architecture is Architecture.SD1 else StableDiffusionXLPipeline
