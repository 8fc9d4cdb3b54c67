"""ADetailer beside the accordion: its separate steps/CFG/sampler fitted to the preset before its pass.

ADetailer's script (Bing-su/adetailer ``scripts/!adetailer.py``) reads its arguments from
``p.script_args`` again in ``postprocess_image``, where it builds its inpainting pass, so fitted
copies written there in our ``process`` are what that pass uses; the rules are in
:mod:`lib_lcm.combinations.adetailer`.
"""

from __future__ import annotations

from typing import Any

from lib_lcm.combinations import adetailer
from lib_lcm.rules import infotext
from lib_lcm.rules.planning import Plan
from lib_lcm.webui import compat, console


def fit_adetailer(p: Any, plan: Plan) -> list[str]:
    """Fit ADetailer's tabs for this generation; returns what changed, for the user."""
    script = compat.alwayson_script(p, adetailer.TITLE)
    if script is None:
        return []
    arguments = list(p.script_args[script.args_from:script.args_to])
    if not adetailer.is_enabled(arguments):
        return []
    if not _runs_our_script():
        console.say(adetailer.exact_schedule_hint())
    skip = adetailer.skips_img2img(arguments, bool(getattr(p, "init_images", None)))
    fitted = adetailer.fit_tabs(arguments, plan.bounds, plan.samplers_kept, plan.sampler_name or "",
                                plan.steps if skip else 0)
    if fitted.tabs == tuple(arguments):
        return []
    all_args = list(p.script_args)
    all_args[script.args_from:script.args_to] = fitted.tabs
    p.script_args = type(p.script_args)(all_args) if isinstance(p.script_args, tuple) else all_args
    if fitted.changes:
        p.extra_generation_params[infotext.KEY_ADETAILER] = "; ".join(fitted.changes)
    return [f"{change} (fitted to the preset)" for change in fitted.changes]


def inside_adetailer(p: Any) -> bool:
    """ADetailer marks its own pass's processing object (``scripts/!adetailer.py`` ``get_i2i_p``)."""
    return bool(getattr(p, "_ad_inner", False))


def _runs_our_script() -> bool:
    from modules import shared

    opts = shared.opts
    return adetailer.runs_our_script(getattr(opts, "ad_script_names", None),
                                     bool(getattr(opts, "ad_only_selected_scripts", True)))
