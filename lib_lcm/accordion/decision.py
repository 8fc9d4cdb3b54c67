"""One generation's decision: apply a plan, or skip with a reason the user can act on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from lib_lcm.lora_files.finding import LoraLookup, find_acceleration_lora
from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture, unsupported_reason
from lib_lcm.rules.choice import Choice
from lib_lcm.rules.planning import Plan, Request, make_plan
from lib_lcm.rules.settings import Settings


@dataclass(frozen=True)
class Skip:
    reason: str


def lookup_for(architecture: Architecture, lora_dirs: Sequence[str | os.PathLike[str]],
               settings: Settings, preset: str = catalog.LCM_LORA) -> LoraLookup | Skip:
    if catalog.for_architecture(architecture) is None:
        return Skip(unsupported_reason(architecture))
    entry = catalog.for_architecture(architecture, preset)
    if entry is None:
        return Skip(preset_unavailable_reason(preset, architecture))
    return find_acceleration_lora(entry, lora_dirs, settings)


def preset_unavailable_reason(preset: str, architecture: Architecture) -> str:
    made_for = " and ".join(a.label for a in catalog.architectures_of(preset)) or "no architecture"
    others = ", ".join(catalog.families_for(architecture))
    return (f"{preset} exists only for {made_for}, not for {architecture.label}; "
            f"choose another preset ({others}).")


def decide(request: Request, choice: Choice, architecture: Architecture,
           lora_dirs: Sequence[str | os.PathLike[str]], settings: Settings) -> Plan | Skip:
    lookup = lookup_for(architecture, lora_dirs, settings, choice.preset)
    if isinstance(lookup, Skip):
        return lookup
    if lookup.name is None:
        return Skip(lookup.describe() + " The generation runs unchanged.")
    return make_plan(request, choice, lookup.entry, lookup.name, settings.bounds, settings.set_sampler,
                     settings.exact_schedule)


@dataclass(frozen=True)
class Status:
    text: str
    missing: bool  # the preset exists for the architecture, but no usable file is in the Lora folders


def status(architecture: Architecture, lora_dirs: Sequence[str | os.PathLike[str]], settings: Settings,
           model_title: str = "", preset: str = catalog.LCM_LORA) -> Status:
    """What the accordion shows: which file the loaded checkpoint will use, or what is missing."""
    lookup = lookup_for(architecture, lora_dirs, settings, preset)
    prefix = f"{model_title} ({architecture.label}): " if model_title else ""
    if isinstance(lookup, Skip):
        return Status(prefix + lookup.reason, missing=False)
    return Status(prefix + lookup.describe(), missing=lookup.path is None)
