"""What the user chose in the accordion, and the ranges every choice is clamped to.

Shared by the plan (``planning``), the settings that hold the defaults (``settings``) and the page's
preset table (``accordion.presets``), so that each clamps exactly as the generation will.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lib_lcm.rules.catalog import ACCELERATION_WEIGHT, LCM_CFG, LCM_LORA, LCM_STEPS, AccelerationLora

WEIGHT_RANGE = (0.0, 2.0)


@dataclass(frozen=True)
class Bounds:
    min_steps: int = LCM_STEPS.minimum
    max_steps: int = LCM_STEPS.maximum
    min_cfg: float = LCM_CFG.minimum
    max_cfg: float = LCM_CFG.maximum

    def normalised(self) -> Bounds:
        """Bounds a user typed in Settings, made usable: at least 1 step, CFG >= 1, min <= max."""
        lo_steps, hi_steps = sorted((max(1, int(self.min_steps)), max(1, int(self.max_steps))))
        lo_cfg, hi_cfg = sorted((max(1.0, float(self.min_cfg)), max(1.0, float(self.max_cfg))))
        return Bounds(lo_steps, hi_steps, lo_cfg, hi_cfg)


def bounds_for(entry: AccelerationLora, lcm_bounds: Bounds) -> Bounds:
    """LCM-LoRA's bounds are the user's (Settings); every other family keeps its published range."""
    if entry.family == LCM_LORA:
        return lcm_bounds
    return Bounds(entry.steps.minimum, entry.steps.maximum, entry.cfg.minimum, entry.cfg.maximum)


@dataclass(frozen=True)
class Choice:
    """The accordion's values after validation. 0 steps / 0 CFG: keep the generation's own value."""

    enabled: bool = False
    weight: float = ACCELERATION_WEIGHT
    steps: int = LCM_STEPS.default
    cfg: float = LCM_CFG.default
    preset: str = LCM_LORA  # a catalog family


def clamp_steps(value: int, bounds: Bounds) -> int:
    return min(max(int(value), bounds.min_steps), bounds.max_steps)


def clamp_cfg(value: float, bounds: Bounds) -> float:
    if math.isnan(value):
        return bounds.min_cfg
    return min(max(float(value), bounds.min_cfg), bounds.max_cfg)
