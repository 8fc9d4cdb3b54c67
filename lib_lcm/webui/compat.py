"""Everything that differs between A1111 1.10 and Forge, or between WebUI versions, read defensively.

Every ``modules`` import of the extension lives under ``lib_lcm/webui``; this file holds the ones
that need a fallback. Each function says which WebUI file it reads.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

from lib_lcm.lora_files.header import SafetensorsHeaderError, detect_file
from lib_lcm.rules import infotext
from lib_lcm.rules.architecture import Architecture, ModelFlags, architecture_from_flags
from lib_lcm.rules.settings import Settings, read_settings

_FLAG_NAMES = ("is_sd1", "is_sd2", "is_sdxl", "is_ssd", "is_sd3")


def is_forge() -> bool:
    # Forge ships the package modules_forge next to modules (guide section 10).
    return importlib.util.find_spec("modules_forge") is not None


def current_settings() -> Settings:
    from modules import shared

    # getattr, not opts.<key>: Options.__getattr__ raises for keys whose on_ui_settings has not
    # run yet (modules/options.py), and the API can process before the UI is built.
    return read_settings(lambda key, default: getattr(shared.opts, key, default))


def model_flags(model: Any) -> ModelFlags:
    """The is_* flags set by A1111's sd_models.set_model_type or Forge's diffusion engines.

    Forge has no ``is_ssd`` and its ``FakeInitialModel`` has no flags at all; a missing flag is
    None, never False.
    """
    values = {name: getattr(model, name, None) for name in _FLAG_NAMES}
    return ModelFlags(**{k: v if isinstance(v, bool) else None for k, v in values.items()})


def checkpoint_filename(model: Any) -> str | None:
    info = getattr(model, "sd_checkpoint_info", None)
    filename = getattr(info, "filename", None)
    return filename if isinstance(filename, str) else None


def file_architecture(filename: str | None) -> Architecture:
    if not filename or not filename.lower().endswith(".safetensors"):
        return Architecture.UNKNOWN
    try:
        return detect_file(filename).architecture
    except SafetensorsHeaderError:
        return Architecture.UNKNOWN


def model_architecture(model: Any) -> Architecture:
    flags = model_flags(model)
    needs_file = flags.is_sdxl or not flags.has_any  # SSD-1B on Forge, the refiner, flagless models
    from_file = file_architecture(checkpoint_filename(model)) if needs_file else Architecture.UNKNOWN
    return architecture_from_flags(flags, from_file)


def hires_checkpoint_info(p: Any) -> Any:
    """The CheckpointInfo hires fix will load, or None for "Use same checkpoint".

    ``p.init`` resolves ``hr_checkpoint_name`` only after the scripts' ``process``
    (``modules/processing.py`` ``process_images_inner``), so look the name up the same way it will.
    """
    info = getattr(p, "hr_checkpoint_info", None)
    name = getattr(p, "hr_checkpoint_name", None)
    if info is not None or not isinstance(name, str) or name in ("", "Use same checkpoint"):
        return info
    from modules import sd_models

    return sd_models.get_closet_checkpoint_match(name)  # None: the WebUI raises its own error in p.init


def alwayson_script(p: Any, title: str) -> Any:
    """Another extension's always-on script in p's runner (``modules/scripts.py`` ScriptRunner), or None.

    Its arguments are ``p.script_args[script.args_from:script.args_to]``.
    """
    for script in getattr(getattr(p, "scripts", None), "alwayson_scripts", ()):
        try:
            if script.title() == title:
                return script
        except Exception:  # another extension's title() failing is not ours to report
            continue
    return None


def model_for_ui() -> tuple[Any, str, str | None]:
    """(model or None, title, checkpoint file) without loading anything.

    ``shared.sd_model`` would load the checkpoint on A1111 (``SdModelData.get_sd_model``), so read
    ``sd_models.model_data.sd_model`` and fall back to the checkpoint selected in the settings.
    """
    from modules import sd_models

    model = getattr(getattr(sd_models, "model_data", None), "sd_model", None)
    if model is not None and model_flags(model).has_any:
        info = getattr(model, "sd_checkpoint_info", None)
        return model, str(getattr(info, "title", "") or ""), checkpoint_filename(model)
    try:
        info = sd_models.select_checkpoint()
    except Exception:  # FileNotFoundError when there is no checkpoint at all
        return None, "", None
    return None, str(getattr(info, "title", "") or ""), getattr(info, "filename", None)


def ui_architecture() -> tuple[Architecture, str]:
    model, title, filename = model_for_ui()
    if model is not None:
        return model_architecture(model), title
    return file_architecture(filename), title


def lora_dirs() -> list[str]:
    """The folders the built-in Lora extension scans (``extensions-builtin/Lora/preload.py``).

    ``--lora-dir`` exists only while the builtin is enabled; ``--lyco-dir-backcompat`` only on A1111.
    """
    from modules import paths, shared

    options = getattr(shared, "cmd_opts", None)
    dirs = [getattr(options, "lora_dir", None), getattr(options, "lyco_dir_backcompat", None)]
    found = [d for d in dirs if isinstance(d, str) and d]
    return found or [os.path.join(paths.models_path, "Lora")]


def sampler_exists(name: str) -> bool:
    # all_samplers_map is built at import (modules/sd_samplers.py); A1111 < 1.8 has no "LCM".
    from modules import sd_samplers

    return name in getattr(sd_samplers, "all_samplers_map", {})


def scheduler_exists(label: str) -> bool:
    # modules/sd_schedulers.py arrived in A1111 1.9; before it, p.scheduler did not exist.
    module = sys.modules.get("modules.sd_schedulers")
    if module is None:
        try:
            from modules import sd_schedulers as module  # type: ignore[no-redef]
        except ImportError:
            return False
    return label in getattr(module, "schedulers_map", {})


def schedule_label(p: Any) -> str:
    """The pass's "Schedule type", chosen as KDiffusionSampler.get_sigmas does (modules/sd_samplers_kdiffusion.py)."""
    name = (getattr(p, "hr_scheduler", None) if getattr(p, "is_hr_pass", False) else getattr(p, "scheduler", None))
    name = name or "Automatic"
    return "Automatic" if name.lower() == "automatic" else name


def pass_steps_and_strength(p: Any) -> tuple[int, float]:
    """The steps the current sampling pass was asked for, and the share of the noise schedule it covers.

    The hires pass (``modules/processing.py`` ``sample_hr_pass``, ``is_hr_pass`` set) runs
    ``hr_second_pass_steps`` (0: the first pass's steps) at the denoising strength; img2img
    (``StableDiffusionProcessingImg2Img``, the processing object that has ``init_images``) runs its
    steps at its denoising strength; a first pass from noise covers the whole schedule.
    """
    steps = int(getattr(p, "steps", 0) or 0)
    if getattr(p, "is_hr_pass", False):
        return int(getattr(p, "hr_second_pass_steps", 0) or steps), _float(getattr(p, "denoising_strength", 0))
    if hasattr(p, "init_images"):
        return steps, _float(getattr(p, "denoising_strength", 0))
    return steps, 1.0


def _float(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def img2img_fix_steps() -> bool:
    from modules import shared

    return bool(getattr(shared.opts, "img2img_fix_steps", False))


# A1111's CFGDenoiser.forward (modules/sd_samplers_cfg_denoiser.py) computes the unconditional
# batch even at CFG 1; its only switch is the "skip_early_cond" option. Forge skips it itself
# (backend/sampling/sampling_function.py, math.isclose(cond_scale, 1.0)).
_SKIP_OPTION = "skip_early_cond"
_SKIP_INFOTEXT = "Skip Early CFG"


@contextlib.contextmanager
def unconditional_pass_skipped(sampler: Any, extra_args: dict[str, Any], enabled: bool) -> Iterator[bool]:
    """While sampling at CFG 1 on A1111, take the WebUI's own skip-uncond path for every step.

    With the uncond output replaced by the cond output, ``combine_denoised`` returns the cond
    output exactly: what CFG 1 computes, without the second half of the batch. The option is
    shadowed on the Options *object* (``Options.__getattr__`` only sees ``data`` when normal lookup
    fails), so config.json and the Settings tab never see the value, and removed afterwards.
    """
    if not enabled or is_forge() or not _cfg1_is_exact_without_uncond(extra_args):
        yield False
        return
    from modules import shared

    opts, p = shared.opts, sampler.p
    object.__setattr__(opts, _SKIP_OPTION, 1.0)  # step / total_steps <= 1.0: every step
    try:
        yield True
    finally:
        object.__delattr__(opts, _SKIP_OPTION)
        _restore_skip_infotext(p, getattr(opts, _SKIP_OPTION, 0.0))
        p.extra_generation_params[infotext.KEY_UNCOND] = infotext.UNCOND_SKIPPED


def _cfg1_is_exact_without_uncond(extra_args: dict[str, Any]) -> bool:
    """CFG exactly 1, not an instruct-pix2pix model, and every image's AND-prompt weights sum to 1.

    With weights w_i, CFG 1 gives u + sum(w_i * (c_i - u)): independent of u only when sum(w_i) = 1.
    """
    from modules import shared

    try:
        if float(extra_args.get("cond_scale", 0.0)) != 1.0:
            return False
    except (TypeError, ValueError):
        return False
    if getattr(shared.sd_model, "cond_stage_key", None) == "edit":
        return False
    batch = getattr(extra_args.get("cond"), "batch", None)
    if not batch:
        return False
    return all(math.isclose(sum(float(c.weight) for c in conds), 1.0, abs_tol=1e-9) for conds in batch)


def _restore_skip_infotext(p: Any, user_value: float) -> None:
    # CFGDenoiser.forward wrote "Skip Early CFG: 1.0"; pasting that back would set the option.
    if user_value:
        p.extra_generation_params[_SKIP_INFOTEXT] = user_value
    else:
        p.extra_generation_params.pop(_SKIP_INFOTEXT, None)
