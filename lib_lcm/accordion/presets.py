"""The accordion as the page shows it: its labels, their tooltips, the style-LoRA hint, and one JSON
object that javascript/lcm_lora.js reads (the presets and the tooltips).

Pure data from the catalog. LCM-LoRA's bounds are the user's (Settings); every other family keeps
its published range (planning.bounds_for), so the page clamps exactly as the generation will.
Labels stay short enough for the accordion at a third of the WebUI's accordion row; what they
leave out is in their tooltips.
"""

from __future__ import annotations

import json
from typing import Any

from lib_lcm.rules import catalog
from lib_lcm.rules.catalog import ACCELERATION_WEIGHT, STYLE_WEIGHT
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


# The accordion's controls, by the item of their elem_id (script_<tab>_lcmlora_<item>).
LABELS = {"preset": "Preset", "weight": "Weight", "steps": "Steps", "cfg": "CFG"}


def tooltips() -> dict[str, str]:
    """What each short label leaves out; the page script puts it in the control's title."""
    return {
        "preset": ("Which acceleration LoRA, with its published recipe: sampler, schedule, steps and CFG range. "
                   "Only the presets published for the loaded checkpoint's architecture apply."),
        "weight": (f"The acceleration LoRA's weight in its <lora:…> tag: λ2 in the LCM-LoRA paper, "
                   f"{ACCELERATION_WEIGHT:g} as published. Style LoRAs keep the weight typed in the prompt."),
        "steps": ("Sampling steps while LCM-LoRA is on, kept inside the preset's range. "
                  "0: use the Sampling steps slider."),
        "cfg": ("CFG while LCM-LoRA is on, kept inside the preset's range. 0: use the CFG Scale slider. "
                "At 1 the negative prompt has no effect."),
    }


def page_json(lcm_bounds: Bounds, set_sampler: bool = True) -> str:
    """What the page script needs: the presets, whether it may move the sampler dropdown, the tooltips."""
    data = {"presets": preset_table(lcm_bounds), "setSampler": set_sampler, "tooltips": tooltips()}
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def slider_maxima(lcm_bounds: Bounds) -> tuple[int, float]:
    """The accordion sliders' maxima: every preset's range fits."""
    table = preset_table(lcm_bounds)
    return (max(p["steps"][1] for p in table.values()), max(p["cfg"][1] for p in table.values()))


def style_hint_summary() -> str:
    """The style-LoRA hint folded to one short line; ``style_hint`` unfolds it."""
    return f"Style LoRAs: weight about {STYLE_WEIGHT:g}"


def style_hint() -> str:
    return (f"Add style LoRAs to the prompt as usual, at about {STYLE_WEIGHT:g} beside an acceleration weight "
            f"of {ACCELERATION_WEIGHT:g} (the LCM-LoRA paper's λ1 = {STYLE_WEIGHT:g}, λ2 = {ACCELERATION_WEIGHT:g}). "
            "Tags already in the prompt are kept as typed.")
