"""The accordion's presets as the page sees them: one JSON object that javascript/lcm_lora.js reads.

Pure data from the catalog. LCM-LoRA's bounds are the user's (Settings); every other family keeps
its published range (planning.bounds_for), so the page clamps exactly as the generation will.
"""

from __future__ import annotations

import json
from typing import Any

from lib_lcm.rules import catalog
from lib_lcm.rules.catalog import STYLE_WEIGHT
from lib_lcm.rules.choice import Bounds, bounds_for, clamp_cfg, clamp_steps


def preset_table(lcm_bounds: Bounds) -> dict[str, dict[str, Any]]:
    """{family: {sampler, scheduler, steps: [min, max, default], cfg: [...], architectures: [...]}}."""
    table: dict[str, dict[str, Any]] = {}
    for family in catalog.FAMILIES:
        entries = [e for e in catalog.CATALOG if e.family == family]
        first = entries[0]
        bounds = bounds_for(first, lcm_bounds.normalised())
        table[family] = {
            "sampler": first.sampler,
            "scheduler": first.scheduler,
            "steps": [bounds.min_steps, bounds.max_steps, clamp_steps(first.steps.default, bounds)],
            "cfg": [bounds.min_cfg, bounds.max_cfg, clamp_cfg(first.cfg.default, bounds)],
            "architectures": [e.architecture.label for e in entries],
            "timesteps": list(first.timesteps),
        }
    return table


def page_json(lcm_bounds: Bounds, set_sampler: bool = True) -> str:
    """What the page script needs: the presets, and whether it may move the sampler dropdown."""
    data = {"presets": preset_table(lcm_bounds), "setSampler": set_sampler}
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def slider_maxima(lcm_bounds: Bounds) -> tuple[int, float]:
    """The accordion sliders' maxima: every preset's range fits."""
    table = preset_table(lcm_bounds)
    return (max(p["steps"][1] for p in table.values()), max(p["cfg"][1] for p in table.values()))


def style_hint() -> str:
    return (f"Style LoRAs: add them to the prompt as usual, at about {STYLE_WEIGHT:g} beside an "
            f"acceleration weight of 1 (the LCM-LoRA paper's λ1 = {STYLE_WEIGHT:g}, λ2 = 1). "
            "Tags already in the prompt are kept as typed.")
