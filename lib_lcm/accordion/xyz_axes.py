"""The X/Y/Z plot's LCM-LoRA axes, as data: one click compares LCM against the usual sampler, or presets.

The WebUI's X/Y/Z plot (``scripts/xyz_grid.py``) runs one generation per cell on a shallow copy of
the processing object, after each axis' ``apply(p, value, values)``; extensions add axes to its
``axis_options`` list (the built-in Hypertile extension does so). Ours write the cell's value into
an attribute of ``p``, which ``process`` lays over the accordion's own arguments
(``script_args.with_overrides``). An axis other than "on/off" turns the accordion on for its cells:
comparing presets or steps with the accordion unticked would otherwise compare nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib_lcm.accordion.script_args import parse_script_args
from lib_lcm.rules.catalog import FAMILIES
from lib_lcm.rules.choice import Choice

OVERRIDES_ATTR = "lcm_lora_xyz"  # on the processing object: {argument name: the cell's value}
ON, OFF = "On", "Off"


@dataclass(frozen=True)
class Axis:
    label: str  # as the X/Y/Z plot lists it
    argument: str  # the script argument it sets (script_args.ARG_NAMES)
    value_type: Callable[[str], Any]  # how the plot converts the typed values
    choices: tuple[str, ...] = ()  # a dropdown of values, where the values are a fixed set


AXES: tuple[Axis, ...] = (
    Axis("LCM-LoRA (on/off)", "enabled", str, (ON, OFF)),
    Axis("LCM-LoRA preset", "preset", str, FAMILIES),
    Axis("LCM-LoRA weight", "weight", float),
    Axis("LCM-LoRA steps", "steps", int),
    Axis("LCM-LoRA CFG", "cfg", float),
)


def overrides_after(current: Mapping[str, Any] | None, axis: Axis, value: Any) -> dict[str, Any]:
    """The overrides of a cell once ``axis`` is applied, as a new dict: the plot's copies of ``p`` are
    shallow, so a dict already on ``p`` would be shared by every cell."""
    overrides = dict(current or {})
    overrides[axis.argument] = value
    if axis.argument != "enabled":
        overrides.setdefault("enabled", True)
    return overrides


def problems_with(axis: Axis, values: Sequence[Any], defaults: Choice) -> list[str]:
    """Why some of an axis' values cannot be used as typed, one sentence each (the plot refuses to start)."""
    found = []
    for value in values:
        problems = parse_script_args([{"enabled": True, axis.argument: value}], defaults).problems
        found += [f"{axis.label} {value!r}: {problem}" for problem in problems]
    return found
