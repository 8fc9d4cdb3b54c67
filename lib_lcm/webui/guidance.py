"""The WebUI's CFG-changing settings and Dynamic Thresholding beside the accordion (rules:
:mod:`lib_lcm.combinations.guidance`).

Read in ``process``: ``p.s_min_uncond`` is filled from the settings before it
(``modules/processing.py`` ``fill_fields_from_opts``), ``skip_early_cond`` is read from the options at
every step, and Dynamic Thresholding reads ``p.dynthres_enabled`` over its checkbox in its
``process_batch``, which runs after our ``process`` (its ``scripts/dynamic_thresholding.py``).
"""

from __future__ import annotations

from typing import Any

from lib_lcm.combinations.guidance import ANIMATEDIFF, DYNAMIC_THRESHOLDING, GuidanceFeatures, advise
from lib_lcm.rules import infotext
from lib_lcm.webui import compat
from lib_lcm.webui.attributes import KEEP_UNCOND_ATTR

_SWITCH = "dynthres_enabled"


def fit_guidance(p: Any, cfg_scale: float) -> list[str]:
    """Apply the advice for this generation; returns the notes for the user."""
    advice = advise(_features(p), cfg_scale)
    if advice.dynamic_thresholding_off:
        setattr(p, _SWITCH, False)
    setattr(p, KEEP_UNCOND_ATTR, advice.keep_unconditional)
    if advice.keep_unconditional:
        p.extra_generation_params[infotext.KEY_UNCOND] = advice.keep_unconditional
    if advice.notes:
        p.extra_generation_params[infotext.KEY_GUIDANCE] = " ".join(advice.notes)
    return list(advice.notes)


def _features(p: Any) -> GuidanceFeatures:
    from modules import shared

    return GuidanceFeatures(skip_early_cond=_number(getattr(shared.opts, "skip_early_cond", 0.0)),
                            s_min_uncond=_number(getattr(p, "s_min_uncond", 0.0)),
                            dynamic_thresholding=_dynamic_thresholding_on(p),
                            need_unconditional_rows=_needing_unconditional_rows(p))


def _needing_unconditional_rows(p: Any) -> tuple[str, ...]:
    # AnimateDiff's before_process, which runs before our process, writes its infotext entry when it is on
    # (its scripts/animatediff.py and animatediff_infotext.py).
    return (ANIMATEDIFF,) if ANIMATEDIFF in p.extra_generation_params else ()


def _dynamic_thresholding_on(p: Any) -> bool:
    script = compat.alwayson_script(p, DYNAMIC_THRESHOLDING)
    if script is None:
        return False
    arguments = p.script_args[script.args_from:script.args_to]
    return bool(getattr(p, _SWITCH, arguments[0] if arguments else False))


def _number(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
