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
    short: str = ""  # the reason in a few words, for the accordion's one-line status


def lookup_for(architecture: Architecture, lora_dirs: Sequence[str | os.PathLike[str]],
               settings: Settings, preset: str = catalog.LCM_LORA) -> LoraLookup | Skip:
    if catalog.for_architecture(architecture) is None:
        return Skip(unsupported_reason(architecture), f"No acceleration LoRA for {architecture.label}.")
    entry = catalog.for_architecture(architecture, preset)
    if entry is None:
        return Skip(catalog.preset_unavailable_reason(preset, architecture), catalog.preset_made_for(preset))
    return find_acceleration_lora(entry, lora_dirs, settings)


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
    text: str  # the whole story, with the checkpoint's title: the status line's tooltip
    missing: bool  # the preset exists for the architecture, but no usable file is in the Lora folders
    short: str = ""  # the status line itself: one short sentence
    file: str | None = None  # the file name ``short`` names: the one used, or the one missing


def status(architecture: Architecture, lora_dirs: Sequence[str | os.PathLike[str]], settings: Settings,
           model_title: str = "", preset: str = catalog.LCM_LORA) -> Status:
    """What the accordion shows: which file the loaded checkpoint will use, or what is missing."""
    lookup = lookup_for(architecture, lora_dirs, settings, preset)
    prefix = f"{model_title} ({architecture.label}): " if model_title else ""
    if isinstance(lookup, Skip):
        return Status(prefix + lookup.reason, missing=False, short=lookup.short or lookup.reason)
    label = lookup.entry.architecture.label
    if lookup.path is None:
        wanted = lookup.entry.local_filename
        return Status(prefix + lookup.describe(), True, f"Missing {wanted} for {label}.", wanted)
    return Status(prefix + lookup.describe(), False, f"Uses {lookup.path.name} for {label}.", lookup.path.name)
