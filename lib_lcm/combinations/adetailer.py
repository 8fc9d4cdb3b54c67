"""ADetailer's fix-up pass under an accelerated generation, as data.

ADetailer (Bing-su/adetailer, ``scripts/!adetailer.py``) inpaints each detection with a new img2img
processing object after the first pass. By default that pass inherits the generation's steps, CFG,
sampler and scheduler, which the accordion has already set, and the prompt with our tag in it; its
per-tab options "Use separate steps / CFG scale / sampler" replace them with values (28 steps,
CFG 7, DPM++ 2M Karras) that burn an accelerated image. :func:`fit_tabs` clamps those into the
preset's range before ADetailer reads them, and says what it changed for the infotext.

Its API and UI arguments are ``[enable, skip_img2img, {tab 1}, {tab 2}, ...]``; a tab whose model is
"None" does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib_lcm.rules.choice import Bounds, clamp_cfg, clamp_steps
from lib_lcm.rules.prompt_tags import format_weight

TITLE = "ADetailer"  # its script title, also its key in alwayson_scripts
SCRIPT_NAME = "lcm_lora"  # our script file's stem, as ADetailer's "Script names to apply" setting lists scripts
SAME_SAMPLER = "Use same sampler"
SAME_SCHEDULER = "Use same scheduler"
_ORDINALS = ("", " 2nd", " 3rd")  # ADetailer's infotext suffixes per tab (aaaaaa/ui.py)


@dataclass(frozen=True)
class FittedTabs:
    tabs: tuple[Any, ...]  # the arguments with each active tab's dict replaced by a fitted copy
    changes: tuple[str, ...]  # "ADetailer 2nd steps 28 to 8", in tab order


def is_enabled(arguments: Sequence[Any]) -> bool:
    """ADetailer's own rule: the first argument if it is a bool, else on; and one tab with a model."""
    switch = arguments[0] if arguments and isinstance(arguments[0], bool) else True
    return switch and any(_active(a) for a in arguments)


def fit_tabs(arguments: Sequence[Any], bounds: Bounds, samplers_kept: Sequence[str], sampler: str,
             steps: int = 0) -> FittedTabs:
    """Clamp each active tab's separate steps and CFG to ``bounds``; a separate sampler the preset
    cannot use becomes ``sampler`` with the generation's scheduler. Never mutates ``arguments``.

    ``steps`` (img2img with "skip img2img" only): ADetailer then saves the steps and sampler from
    before our ``process`` and gives them to its pass, so a tab without separate values gets ours.
    """
    fitted: list[Any] = []
    changes: list[str] = []
    tab = 0
    for argument in arguments:
        if not isinstance(argument, Mapping):
            fitted.append(argument)
            continue
        name = f"{TITLE}{_ORDINALS[tab] if tab < len(_ORDINALS) else f' {tab + 1}th'}"
        tab += 1
        if steps and _active(argument):
            argument = _with_own_values(argument, steps, sampler)
        new, changed = _fit_tab(argument, bounds, samplers_kept, sampler) if _active(argument) else (argument, [])
        fitted.append(new)
        changes.extend(f"{name} {change}" for change in changed)
    return FittedTabs(tuple(fitted), tuple(changes))


def skips_img2img(arguments: Sequence[Any], has_init_images: bool) -> bool:
    return has_init_images and len(arguments) > 1 and arguments[1] is True


def _with_own_values(tab: Mapping[str, Any], steps: int, sampler: str) -> dict[str, Any]:
    new = dict(tab)
    if not new.get("ad_use_steps"):
        new["ad_use_steps"], new["ad_steps"] = True, steps
    if not new.get("ad_use_sampler"):
        new["ad_use_sampler"], new["ad_sampler"], new["ad_scheduler"] = True, sampler, SAME_SCHEDULER
    return new


def _active(argument: Any) -> bool:
    return isinstance(argument, Mapping) and argument.get("ad_model", "None") not in (None, "None")


def _fit_tab(tab: Mapping[str, Any], bounds: Bounds, samplers_kept: Sequence[str],
             sampler: str) -> tuple[dict[str, Any], list[str]]:
    new, changed = dict(tab), []
    if new.get("ad_use_steps") and _number(new.get("ad_steps")) is not None:
        steps = int(_number(new["ad_steps"]) or 0)
        if clamp_steps(steps, bounds) != steps:
            new["ad_steps"] = clamp_steps(steps, bounds)
            changed.append(f"steps {steps} to {new['ad_steps']}")
    if new.get("ad_use_cfg_scale") and _number(new.get("ad_cfg_scale")) is not None:
        cfg = float(_number(new["ad_cfg_scale"]) or 0.0)
        if clamp_cfg(cfg, bounds) != cfg:
            new["ad_cfg_scale"] = clamp_cfg(cfg, bounds)
            changed.append(f"CFG {format_weight(cfg)} to {format_weight(new['ad_cfg_scale'])}")
    chosen = new.get("ad_sampler")
    if new.get("ad_use_sampler") and chosen not in (SAME_SAMPLER, *samplers_kept):
        new["ad_sampler"], new["ad_scheduler"] = sampler, SAME_SCHEDULER
        changed.append(f"sampler {chosen} to {sampler}")
    return new, changed


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def runs_our_script(script_names: str | None, only_selected: bool) -> bool:
    """Whether ADetailer's pass runs our hooks: it keeps only the always-on scripts whose file stem
    is in its "Script names to apply to ADetailer" setting, unless that filter is off."""
    if not only_selected:
        return True
    return SCRIPT_NAME in {name.strip() for name in (script_names or "").split(",")}


def exact_schedule_hint() -> str:
    return (f"ADetailer's pass runs the WebUI's own LCM schedule, not the exact one; add {SCRIPT_NAME} to "
            f"ADetailer's \"Script names to apply to ADetailer\" setting to run it there too.")
