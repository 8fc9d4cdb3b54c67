"""Our axes in the WebUI's X/Y/Z plot (``scripts/xyz_grid.py``), added the way extensions add theirs.

The plot is a script file, not an importable module: its loaded module is found among
``modules.scripts.scripts_data`` by the module name the WebUI gives script files ("xyz_grid.py"),
as the built-in Hypertile extension does (``extensions-builtin/hypertile/scripts/hypertile_script.py``).
Called from ``on_before_ui``: every script is loaded by then, and the plot reads ``axis_options``
when it builds its dropdowns. Reload UI re-runs it, so an axis already there is not added twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib_lcm.accordion.xyz_axes import AXES, OVERRIDES_ATTR, Axis, overrides_after, problems_with
from lib_lcm.webui import compat, console

_PLOT_MODULE = "xyz_grid.py"


def register_axes() -> None:
    plot = _plot_module()
    if plot is None:
        console.say("the X/Y/Z plot script was not found; the LCM-LoRA axes are not added.")
        return
    known = {getattr(option, "label", None) for option in plot.axis_options}
    for axis in AXES:
        if axis.label not in known:
            plot.axis_options.append(plot.AxisOption(axis.label, axis.value_type, _apply(axis), confirm=_confirm(axis),
                                                     choices=_choices(axis)))


def _plot_module() -> Any:
    from modules import scripts

    for data in getattr(scripts, "scripts_data", ()):
        if data.script_class.__module__ == _PLOT_MODULE:
            return data.module
    return None


def _apply(axis: Axis) -> Callable[[Any, Any, Any], None]:
    def apply(p: Any, value: Any, values: Any) -> None:
        setattr(p, OVERRIDES_ATTR, overrides_after(getattr(p, OVERRIDES_ATTR, None), axis, value))

    return apply


def _choices(axis: Axis) -> Callable[[], list[str]] | None:
    """The plot calls ``choices()`` for a dropdown of values; None: values are typed."""
    return (lambda: list(axis.choices)) if axis.choices else None


def _confirm(axis: Axis) -> Callable[[Any, Any], None]:
    def confirm(p: Any, values: Any) -> None:
        problems = problems_with(axis, list(values), compat.current_settings().defaults)
        if problems:  # the plot shows this before it generates anything
            raise RuntimeError("; ".join(problems))

    return confirm
