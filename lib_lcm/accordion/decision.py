"""One generation's decision: apply a plan, or skip with a reason the user can act on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from lib_lcm.lora_files.finding import LoraLookup, find_acceleration_lora
from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture, unsupported_reason
from lib_lcm.rules.choice import Choice
from lib_lcm.rules.planning import HiresLora, OtherCheckpoint, Plan, Request, make_plan
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
    refiner = _refiner_problem(request, architecture)
    if refiner is not None:
        return refiner
    hires = _hires_lora(request.hires_checkpoint if request.enable_hr else None, architecture, lora_dirs, settings,
                        choice.preset)
    if isinstance(hires, Skip):
        return hires
    return make_plan(request, choice, lookup.entry, lookup.name, settings.bounds, settings.set_sampler,
                     settings.exact_schedule, hires)


def _hires_lora(hires: OtherCheckpoint | None, architecture: Architecture,
                lora_dirs: Sequence[str | os.PathLike[str]], settings: Settings,
                preset: str) -> HiresLora | Skip | None:
    """The hires checkpoint's own LoRA when its architecture differs; None when the first pass's fits.

    An architecture the file cannot tell (a .ckpt, whose header is a pickle) counts as the first pass's.
    """
    if hires is None or hires.architecture in (architecture, Architecture.UNKNOWN):
        return None
    lookup = lookup_for(hires.architecture, lora_dirs, settings, preset)
    what = f"The hires checkpoint {hires.title} is {hires.architecture.label}, not {architecture.label}: "
    if isinstance(lookup, Skip):
        return Skip(what + lookup.reason + _OTHER_CHECKPOINT_HINT, "No acceleration LoRA for the hires checkpoint.")
    if lookup.name is None:
        return Skip(what + lookup.describe() + " The generation runs unchanged.",
                    f"Missing {lookup.entry.local_filename} for the hires checkpoint.")
    return HiresLora(lookup.entry, lookup.name)


def _refiner_problem(request: Request, architecture: Architecture) -> Skip | None:
    """A refiner of another architecture cannot keep the LoRA: the WebUI swaps the model mid-pass
    without activating extra networks again (``modules/sd_samplers_common.py`` ``apply_refiner``)."""
    refiner, wanted = request.refiner, {architecture}
    if request.enable_hr and request.hires_checkpoint is not None:
        wanted.add(request.hires_checkpoint.architecture)
    if refiner is None or refiner.architecture is Architecture.UNKNOWN or wanted == {refiner.architecture}:
        return None
    passes = " and ".join(sorted(a.label for a in wanted))
    return Skip(f"The refiner {refiner.title} is {refiner.architecture.label}, but the LoRA is chosen for "
                f"{passes}, and the WebUI loads no other LoRA when it switches to the refiner mid-pass. "
                f"Turn the refiner off, or pick one of the same architecture. The generation runs unchanged.",
                "The refiner's architecture differs.")


_OTHER_CHECKPOINT_HINT = " Choose \"Use same checkpoint\" for hires fix, or a checkpoint with an acceleration LoRA."


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
