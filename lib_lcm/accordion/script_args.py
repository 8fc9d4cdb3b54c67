"""Turn the script's arguments into a validated Choice.

Arguments arrive from the browser (well-typed) or from the HTTP API's ``alwayson_scripts``,
where anything JSON can express shows up: ``{"LCM-LoRA": {"args": [true, 1.0, 4, 1.0, "TCD-LoRA"]}}``
positionally in ``ui()`` order, or ``{"args": [{"enabled": true, "steps": 4, "preset": "tcd"}]}`` by name.
Older clients send the first four only; the preset then is LCM-LoRA.
Hooks cannot answer with an HTTP error (``modules/scripts.py`` catches every exception a hook
raises and carries on), so bad values fall back to a default or are clamped, and each problem
becomes one sentence that the adapter shows in the console, the UI comments and the infotext.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib_lcm.rules.catalog import FAMILIES, family_named
from lib_lcm.rules.choice import WEIGHT_RANGE, Choice

ARG_NAMES = ("enabled", "weight", "steps", "cfg", "preset")
_ALIASES = {"enable": "enabled", "lora_weight": "weight", "cfg_scale": "cfg", "acceleration_weight": "weight",
            "family": "preset"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
MAX_STEPS_ACCEPTED = 1000  # anything above is not a step count but a typo


@dataclass(frozen=True)
class ParsedArgs:
    choice: Choice
    problems: tuple[str, ...] = ()


def parse_script_args(args: Sequence[Any], defaults: Choice) -> ParsedArgs:
    problems: list[str] = []
    values = _named_values(args, problems)
    enabled = _parse_enabled(values.get("enabled"), problems)
    weight = _parse_weight(values.get("weight"), defaults.weight, problems)
    steps = _parse_steps(values.get("steps"), defaults.steps, problems)
    cfg = _parse_cfg(values.get("cfg"), defaults.cfg, problems)
    preset = _parse_preset(values.get("preset"), defaults.preset, problems)
    if not enabled and not any("'enabled'" in p for p in problems):
        problems = []  # the values of a script that is off do not matter; off means untouched
    return ParsedArgs(Choice(enabled, weight, steps, cfg, preset), tuple(problems))


def with_overrides(args: Sequence[Any], overrides: Mapping[str, Any] | None) -> Sequence[Any]:
    """``args`` with some values replaced (an X/Y/Z plot cell's), as one mapping ``parse_script_args`` reads."""
    if not overrides:
        return args
    if args and isinstance(args[0], Mapping):
        base = dict(args[0])
    else:
        base = dict(zip(ARG_NAMES, args[: len(ARG_NAMES)], strict=False))
    return [{**base, **overrides}]


def _named_values(args: Sequence[Any], problems: list[str]) -> dict[str, Any]:
    if args and isinstance(args[0], Mapping):
        return _from_mapping(args[0], problems)
    return {name: value for name, value in zip(ARG_NAMES, args[: len(ARG_NAMES)], strict=False) if value is not None}


def _from_mapping(mapping: Mapping[Any, Any], problems: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in mapping.items():
        name = str(key).strip().lower()
        name = _ALIASES.get(name, name)
        if name in ARG_NAMES:
            values[name] = value
        else:
            problems.append(f"unknown argument {key!r} ignored (expected {', '.join(ARG_NAMES)})")
    return {k: v for k, v in values.items() if v is not None}


def _parse_enabled(value: Any, problems: list[str]) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    problems.append(f"'enabled' must be true or false, got {_show(value)}; left off")
    return False


def _number(name: str, value: Any, problems: list[str]) -> float | None:
    """The value as a finite float; None when absent or unusable (unusable is recorded in problems)."""
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"'{name}' must be a number, got {_show(value)}")
        return None
    if not math.isfinite(value):
        problems.append(f"'{name}' must be a finite number, got {_show(value)}")
        return None
    return float(value)


def _parse_weight(value: Any, default: float, problems: list[str]) -> float:
    number = _number("weight", value, problems)
    if number is None:
        return default
    lo, hi = WEIGHT_RANGE
    if not lo <= number <= hi:
        clamped = min(max(number, lo), hi)
        problems.append(f"'weight' {number:g} is outside {lo:g}-{hi:g}; used {clamped:g}")
        return clamped
    return number


def _parse_steps(value: Any, default: int, problems: list[str]) -> int:
    number = _number("steps", value, problems)
    if number is None:
        return default
    if number < 0 or number > MAX_STEPS_ACCEPTED:
        problems.append(f"'steps' {number:g} is not a step count; used {default}")
        return default
    if number != int(number):
        problems.append(f"'steps' {number:g} is not a whole number; used {round(number)}")
    return round(number)


def _parse_cfg(value: Any, default: float, problems: list[str]) -> float:
    number = _number("cfg", value, problems)
    if number is None:
        return default
    if number < 0:
        problems.append(f"'cfg' {number:g} is negative; used {default:g}")
        return default
    return number


def _parse_preset(value: Any, default: str, problems: list[str]) -> str:
    if value is None:
        return default
    family = family_named(value) if isinstance(value, str) else None
    if family is None:
        problems.append(f"'preset' must be one of {', '.join(FAMILIES)}, got {_show(value)}; used {default}")
        return default
    return family


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
