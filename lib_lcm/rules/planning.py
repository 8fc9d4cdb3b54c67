"""From a generation request and the accordion's values, decide exactly what to change.

Pure: no WebUI import. The WebUI adapter copies a Request out of the processing object, calls
``make_plan`` and writes the Plan back; tests drive it directly. A plan is idempotent: planning
its own output again changes nothing (img2img batch and XYZ re-run the same processing object,
and a pasted infotext already carries the tag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lib_lcm.rules import infotext
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.catalog import AccelerationLora, all_names, names_for, normalise_name
from lib_lcm.rules.choice import Bounds, Choice, bounds_for, clamp_cfg, clamp_steps
from lib_lcm.rules.prompt_tags import add_tag, find_named, format_tag, format_weight, remove_tags


@dataclass(frozen=True)
class OtherCheckpoint:
    """A checkpoint the WebUI switches to within one generation: hires fix's own, or the refiner."""

    role: Literal["hires", "refiner"]
    title: str
    architecture: Architecture


@dataclass(frozen=True)
class HiresLora:
    """The acceleration LoRA of a hires checkpoint whose architecture differs from the first pass's."""

    entry: AccelerationLora
    name: str


@dataclass(frozen=True)
class Request:
    prompts: tuple[str, ...]
    main_prompt: str
    steps: int
    cfg_scale: float
    negative_prompts: tuple[str, ...] = ()
    sampler_name: str | None = None
    scheduler: str | None = None
    enable_hr: bool = False
    hr_prompts: tuple[str, ...] = ()
    hr_second_pass_steps: int = 0
    hr_sampler_name: str | None = None
    hr_scheduler: str | None = None
    hr_cfg: float | None = None  # Forge only
    is_img2img: bool = False
    denoising_strength: float | None = None
    img2img_fix_steps: bool = False
    hires_checkpoint: OtherCheckpoint | None = None  # None: hires fix runs on the same checkpoint
    refiner: OtherCheckpoint | None = None


@dataclass(frozen=True)
class Note:
    """Something the user should know about a plan: shown under the image and in the console."""

    kind: Literal["tag_kept", "negative_unused", "hires_lora"]
    text: str


@dataclass(frozen=True)
class Plan:
    lora_name: str
    weight: float
    tag_added: bool
    prompts: tuple[str, ...]
    main_prompt: str
    hr_prompts: tuple[str, ...]
    steps: int
    cfg_scale: float
    sampler_name: str | None
    scheduler: str | None
    hr_second_pass_steps: int
    hr_sampler_name: str | None
    hr_scheduler: str | None
    hr_cfg: float | None
    infotext: dict[str, str] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()
    exact_schedule: bool = True  # the sampler visits the reference timesteps (lib_lcm.sampling)
    timesteps: tuple[int, ...] = ()  # explicit timesteps of the preset (DMD2), for the exact sampler
    bounds: Bounds = Bounds()  # the preset's range, for passes other extensions add (ADetailer)
    samplers_kept: tuple[str, ...] = ()  # samplers the preset runs with



def img2img_steps_run(steps: int, denoising_strength: float) -> int:
    """Sampler steps A1111 really runs for plain img2img (``sd_samplers_common.setup_img2img_steps``)."""
    return int(min(denoising_strength, 0.999) * steps) + 1


def make_plan(request: Request, choice: Choice, entry: AccelerationLora, lora_name: str,
              bounds: Bounds = Bounds(), set_sampler: bool = True, exact_schedule: bool = True,
              hires_lora: HiresLora | None = None) -> Plan:
    """Everything the accordion changes, for a LoRA file ``lora_name`` already known to exist.

    ``bounds`` are the LCM-LoRA bounds from Settings; other families use their own (bounds_for).
    ``hires_lora``: the hires checkpoint's own LoRA, when its architecture is not the first pass's.
    """
    bounds = bounds_for(entry, bounds.normalised())
    names = all_names() | {normalise_name(lora_name)}
    tag = format_tag(lora_name, choice.weight)
    prompts, added = _with_tag(request.prompts, tag, names)
    hr_prompts, hr_added = _hires_prompts(request.hr_prompts, choice.weight, entry, lora_name, hires_lora)
    main_prompt, _ = _with_tag((request.main_prompt,), tag, names)
    clamped: list[str] = []
    steps = _clamped_int("steps", choice.steps or request.steps, bounds, clamped)
    cfg = _clamped_float("CFG", choice.cfg or request.cfg_scale, bounds, clamped)
    hr_steps = request.hr_second_pass_steps
    hr_cfg = request.hr_cfg
    if request.enable_hr:
        hr_steps = _clamped_int("hires steps", hr_steps, bounds, clamped) if hr_steps else 0
        hr_cfg = _clamped_float("hires CFG", hr_cfg, bounds, clamped) if hr_cfg is not None else None
    tag_added = added or hr_added
    weight = choice.weight if tag_added else _typed_weight(request.main_prompt, names)
    sampler = _sampler_fields(request, entry) if set_sampler else _kept_sampler_fields(request)
    if set_sampler and hires_lora is not None and hires_lora.entry.sampler != entry.sampler:
        sampler["hr_sampler_name"] = hires_lora.entry.sampler  # "same as the first pass" would not fit it
    entries = _infotext(request, entry, lora_name, weight, tag_added, clamped, steps, exact_schedule)
    if hires_lora is not None:
        entries[infotext.KEY_HIRES_LORA] = hires_lora.name
    return Plan(
        lora_name=lora_name, weight=weight, tag_added=tag_added,
        prompts=prompts, main_prompt=main_prompt[0], hr_prompts=hr_prompts,
        steps=steps, cfg_scale=cfg, hr_second_pass_steps=hr_steps, hr_cfg=hr_cfg, **sampler,
        infotext=entries, notes=_notes(request, cfg, tag_added, lora_name, hires_lora),
        exact_schedule=exact_schedule or bool(entry.timesteps), timesteps=entry.timesteps,
        bounds=bounds, samplers_kept=entry.samplers_kept,
    )


def _hires_prompts(prompts: tuple[str, ...], weight: float, entry: AccelerationLora, lora_name: str,
                   hires_lora: HiresLora | None) -> tuple[tuple[str, ...], bool]:
    """The hires prompts with the hires pass's LoRA: the first pass's, or the hires checkpoint's own.

    The WebUI activates the hires prompts' tags after loading the hires checkpoint
    (``modules/processing.py`` ``sample_hr_pass``), so a hires checkpoint of another architecture
    gets its own LoRA there, and the first pass's tag (added, or typed and copied from the prompt)
    leaves the hires prompts: it names a LoRA that cannot load on that model.
    """
    if hires_lora is None:
        return _with_tag(prompts, format_tag(lora_name, weight), all_names() | {normalise_name(lora_name)})
    first_pass = names_for(entry.architecture) | {normalise_name(lora_name)}
    cleaned = tuple(remove_tags(p, first_pass) for p in prompts)
    names = all_names() - first_pass | {normalise_name(hires_lora.name)}
    return _with_tag(cleaned, format_tag(hires_lora.name, weight), names)


def _with_tag(prompts: tuple[str, ...], tag: str, names: frozenset[str] | set[str]) -> tuple[tuple[str, ...], bool]:
    changed = tuple(p if find_named(p, names) else add_tag(p, tag) for p in prompts)
    return changed, changed != prompts


def _typed_weight(prompt: str, names: frozenset[str] | set[str]) -> float:
    tags = find_named(prompt, names)
    weight = tags[0].weight if tags else None
    return 1.0 if weight is None else weight


def _clamped_int(what: str, value: int, bounds: Bounds, clamped: list[str]) -> int:
    result = clamp_steps(value, bounds)
    if result != value:
        clamped.append(f"{what} {value} to {result}")
    return result


def _clamped_float(what: str, value: float, bounds: Bounds, clamped: list[str]) -> float:
    result = clamp_cfg(value, bounds)
    if result != value:
        clamped.append(f"{what} {format_weight(value)} to {format_weight(result)}")
    return result


def _sampler_fields(request: Request, entry: AccelerationLora) -> dict[str, str | None]:
    # None for the hires fields means "same as the first pass" in the WebUI; keep that, so the
    # infotext does not grow a redundant "Hires sampler" entry.
    kept = entry.samplers_kept
    sampler = request.sampler_name if request.sampler_name in kept else entry.sampler
    hr_sampler = request.hr_sampler_name if request.hr_sampler_name in kept else sampler
    return {
        "sampler_name": sampler,
        "scheduler": entry.scheduler,
        "hr_sampler_name": hr_sampler if request.hr_sampler_name is not None else None,
        "hr_scheduler": entry.scheduler if request.hr_scheduler is not None else None,
    }


def _kept_sampler_fields(request: Request) -> dict[str, str | None]:
    return {"sampler_name": request.sampler_name, "scheduler": request.scheduler,
            "hr_sampler_name": request.hr_sampler_name, "hr_scheduler": request.hr_scheduler}


def _infotext(request: Request, entry: AccelerationLora, lora_name: str, weight: float, added: bool,
              clamped: list[str], steps: int, exact_schedule: bool) -> dict[str, str]:
    entries = {
        infotext.KEY_PRESET: entry.family,
        infotext.KEY_LORA: lora_name,
        infotext.KEY_WEIGHT: format_weight(weight),
        infotext.KEY_TAG: infotext.TAG_ADDED if added else infotext.TAG_FROM_PROMPT,
    }
    if clamped:
        entries[infotext.KEY_CLAMPED] = "; ".join(clamped)
    # With the exact schedule every img2img step runs (the sampler records it if strength forbids).
    if (request.is_img2img and not exact_schedule and not entry.timesteps and not request.img2img_fix_steps
            and request.denoising_strength is not None):
        run = img2img_steps_run(steps, request.denoising_strength)
        if run != steps:
            entries[infotext.KEY_STEPS_RUN] = str(run)
    return entries


def _notes(request: Request, cfg: float, added: bool, lora_name: str,
           hires_lora: HiresLora | None) -> tuple[Note, ...]:
    notes = []
    if hires_lora is not None and request.hires_checkpoint is not None:
        hires = request.hires_checkpoint
        notes.append(Note("hires_lora", f"the hires pass runs on {hires.title} ({hires.architecture.label}), so it "
                                        f"uses <lora:{hires_lora.name}:…> instead of <lora:{lora_name}:…>."))
    if not added:
        notes.append(Note("tag_kept", f"the prompt already has an acceleration LoRA tag; kept it as typed "
                                      f"instead of adding <lora:{lora_name}:…>."))
    if cfg == 1.0 and any(n.strip() for n in request.negative_prompts):
        notes.append(Note("negative_unused", "at CFG 1 the negative prompt has no effect; raise CFG to 1.5-2 to "
                                             "use it."))
    return tuple(notes)
