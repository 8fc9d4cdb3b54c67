"""The always-visible "LCM-LoRA" script: its UI and its processing hook.

``scripts/lcm_lora.py`` defines the ``scripts.Script`` subclass (the WebUI registers every such
class found in a scripts/ file, ``modules/scripts.py`` ``load_scripts``) and forwards each hook here.
"""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any, Literal

from lib_lcm.accordion import presets
from lib_lcm.accordion.decision import Skip, decide, status
from lib_lcm.accordion.script_args import parse_script_args, with_overrides
from lib_lcm.accordion.xyz_axes import OVERRIDES_ATTR
from lib_lcm.rules import catalog, infotext, parameters_text
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.choice import WEIGHT_RANGE
from lib_lcm.rules.planning import OtherCheckpoint, Plan, Request
from lib_lcm.rules.settings import Settings
from lib_lcm.webui import compat, console, page_sync, samplers
from lib_lcm.webui.adetailer import fit_adetailer, inside_adetailer
from lib_lcm.webui.attributes import EXACT_ATTR, KEEP_UNCOND_ATTR, PLANNED_ATTR, TIMESTEPS_ATTR
from lib_lcm.webui.guidance import fit_guidance
from lib_lcm.webui.protocols import HiresCfgProcessing, HiresProcessing, Processing, ScheduledProcessing, Script

TITLE = "LCM-LoRA"  # also the API key in alwayson_scripts: never put a version in it


def build_ui(script: Script, is_img2img: bool) -> list[Any]:
    """Components in API argument order: enabled, weight, steps, cfg, preset.

    Called per tab on every UI build and twice more by the API to read defaults
    (``Api.init_default_script_args``), so it only reads settings and one cached file header.
    Short labels (``presets.LABELS``), their details as tooltips (``presets.tooltips``, set by the page
    script), the style-LoRA hint folded, the status one line: readable at a third of the accordion row.
    """
    import gradio as gr
    from modules.ui_components import InputAccordion, ToolButton

    settings = compat.current_settings()
    defaults, bounds = settings.defaults, settings.bounds
    max_steps, max_cfg = presets.slider_maxima(bounds)
    label = presets.LABELS
    shown, missing = status_view(preset=defaults.preset)
    with InputAccordion(False, label=TITLE, elem_id=script.elem_id("enabled")) as enabled:
        with gr.Row():
            preset = gr.Dropdown(choices=list(catalog.FAMILIES), value=defaults.preset, label=label["preset"],
                                 elem_id=script.elem_id("preset"))
            weight = gr.Slider(minimum=WEIGHT_RANGE[0], maximum=WEIGHT_RANGE[1], step=0.05, value=defaults.weight,
                               label=label["weight"], elem_id=script.elem_id("weight"))
        with gr.Row():
            steps = gr.Slider(minimum=0, maximum=max_steps, step=1, value=min(defaults.steps, max_steps),
                              label=label["steps"], elem_id=script.elem_id("steps"))
            cfg = gr.Slider(minimum=0.0, maximum=max_cfg, step=0.1, value=min(defaults.cfg, max_cfg),
                            label=label["cfg"], elem_id=script.elem_id("cfg"))
        gr.HTML(value=hint_html(settings), elem_id=script.elem_id("hint"))
        gr.HTML(value="<div class='lcm-lora-notice' role='status'></div>", elem_id=script.elem_id("notice"))
        with gr.Row(elem_classes=["lcm-lora-status-row"]):
            status = gr.HTML(value=shown, elem_id=script.elem_id("status"))
            refresh = ToolButton(value="\U0001f504", elem_id=script.elem_id("refresh"))
            fetch = gr.Button("Download it", visible=settings.offer_download and missing,
                              elem_id=script.elem_id("download"))
        apply = gr.Button(visible=False, elem_id=script.elem_id("apply"))  # clicked by javascript/lcm_lora.js
    for event in (refresh.click, enabled.change, preset.change):
        event(fn=_status_for, inputs=[preset], outputs=[status, fetch], show_progress=False)
    fetch.click(fn=_download_for, inputs=[preset], outputs=[status, fetch], show_progress=False)
    # Frontend only (no request, so gradio never drops it as "pending"): the page script fits the sliders.
    # It returns [] for the empty outputs (gradio 3 would assign any returned value to an output).
    preset.change(fn=None, _js=f"(p) => {{ lcmLoraPreset('{_tab(script)}', p); return []; }}", inputs=[preset],
                  outputs=[])
    page_sync.remember_inputs(script, enabled, preset, apply)
    script.infotext_fields = [
        (enabled, infotext.was_enabled),  # a callable, so pasting an infotext without our key turns it off
        (weight, infotext.KEY_WEIGHT),
        (steps, lambda params: params.get(parameters_text.STEPS) if infotext.was_enabled(params) else None),
        (cfg, lambda params: params.get(parameters_text.CFG_SCALE) if infotext.was_enabled(params) else None),
        (preset, infotext.preset_from),
    ]
    script.paste_field_names = [infotext.KEY_WEIGHT, infotext.KEY_PRESET]
    return [enabled, weight, steps, cfg, preset]


def _tab(script: Script) -> str:
    return "img2img" if getattr(script, "is_img2img", False) else "txt2img"


def hint_html(settings: Settings) -> str:
    """The style-LoRA hint, folded to one line, and the page data javascript/lcm_lora.js reads (hidden)."""
    data = html.escape(presets.page_json(settings.bounds, settings.set_sampler), quote=True)
    return (f"<details class='lcm-lora-hint'><summary>{html.escape(presets.style_hint_summary())}</summary>"
            f"{html.escape(presets.style_hint())}</details>"
            f"<div class='lcm-lora-presets' hidden data-presets=\"{data}\"></div>")


def _status_for(preset: str) -> list[Any]:
    """The status line, and the optional "Download it" button: shown only while the file is missing."""
    import gradio as gr

    shown, missing = status_view(preset=preset)
    return [shown, gr.update(visible=compat.current_settings().offer_download and missing)]


def _download_for(preset: str) -> list[Any]:
    import gradio as gr

    return [download_for_loaded_checkpoint(preset), gr.update()]


def status_html(note: str = "", preset: str | None = None) -> str:
    return status_view(note, preset)[0]


def status_view(note: str = "", preset: str | None = None) -> tuple[str, bool]:
    """The accordion's status line and whether the file is missing.

    One short sentence naming the file whole (its stem never breaks; a narrow accordion may only wrap
    before the extension), the full story with the checkpoint in its tooltip, and when the file is
    missing a link to the LCM-LoRA tab (or, with lcm_lora_offer_download, the "Download it" button).
    """
    preset = catalog.family_named(preset or "") or catalog.LCM_LORA
    missing, settings = False, None
    try:
        architecture, title = compat.ui_architecture()
        settings = compat.current_settings()
        shown = status(architecture, compat.lora_dirs(), settings, title, preset)
        text, short, file, missing = shown.text, shown.short, shown.file, shown.missing
    except Exception as error:  # the UI must build even if the model or a file is in a bad state
        text = f"Cannot tell which LoRA the loaded checkpoint needs: {error}"
        short, file = "Cannot tell which LoRA the loaded checkpoint needs.", None
    line = html.escape(short)
    if file:
        line = line.replace(html.escape(file), _file_html(file), 1)
    if missing and not (settings and settings.offer_download):
        line += (" <a href='#' class='lcm-lora-open-tab' onclick='return lcmLoraOpenTab(event)'>"
                 "Get it in the LCM-LoRA tab.</a>")
    extra = f"<br>{html.escape(note)}" if note else ""
    state = "missing" if missing else "ok"
    return (f"<p class='lcm-lora-status' data-lcm-lora-lora='{state}' title='{html.escape(text, quote=True)}'>"
            f"{line}{extra}</p>", missing)


def _file_html(name: str) -> str:
    """A file name that never breaks inside its stem (hyphens would let it): at most before its extension."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return f"<span class='lcm-lora-file'><span>{html.escape(name)}</span></span>"
    return (f"<span class='lcm-lora-file'><span>{html.escape(stem)}</span><wbr>"
            f"<span>.{html.escape(extension)}</span></span>")


def download_for_loaded_checkpoint(preset: str = catalog.LCM_LORA) -> str:
    """The accordion's optional "Download it" button: only ever runs on that click."""
    from lib_lcm.downloads.errors import DownloadError
    from lib_lcm.webui.downloads import service

    preset = catalog.family_named(preset or "") or catalog.LCM_LORA
    architecture, _ = compat.ui_architecture()
    entry = catalog.for_architecture(architecture, preset)
    try:
        job = service().start(entry.key if entry else "auto")
    except DownloadError as error:
        return status_html(error.message, preset)
    return status_html(f"Downloading {job.target} in the background; the LCM-LoRA tab shows its progress.", preset)


def process(script: Script, p: Processing, *args: Any) -> None:
    """Apply the plan after ``p.setup_prompts()`` and the checkpoint (re)load.

    Not in ``setup()``: in the UI the built-in ``ScriptSampler.setup``
    (``modules/processing_scripts/sampler.py``) runs after us and overwrites steps and sampler.
    """
    if _already_applied(p):
        return
    settings = compat.current_settings()
    parsed = parse_script_args(with_overrides(args, getattr(p, OVERRIDES_ATTR, None)), settings.defaults)
    _forget_previous_run(p)  # XYZ and img2img batch reuse p (modules/img2img.py process_batch)
    if parsed.problems:
        _report_input_problems(p, parsed.problems)
    if not parsed.choice.enabled:
        return
    architecture = compat.model_architecture(getattr(p, "sd_model", None))
    # ADetailer's pass already has its steps and CFG: the generation's, or its own fitted ones
    choice = replace(parsed.choice, steps=0, cfg=0.0) if inside_adetailer(p) else parsed.choice
    outcome = decide(_request_from(script, p), choice, architecture, compat.lora_dirs(),
                     _usable(settings, architecture, parsed.choice.preset))
    if isinstance(outcome, Skip):
        _skip(p, outcome.reason)
        return
    _apply(p, outcome)


def _already_applied(p: Processing) -> bool:
    """ADetailer calls every script's ``process`` again, on a shallow copy of an already processed p
    (its ``scripts/!adetailer.py`` ``postprocess_image``); planning again would read our own tag as typed.

    img2img batch reuses p too, but ``setup_prompts`` rebuilds ``all_prompts`` first, so they differ.
    """
    planned = getattr(p, PLANNED_ATTR, None)
    return planned is not None and planned == tuple(p.all_prompts or ())


def _usable(settings: Settings, architecture: Architecture, preset: str) -> Settings:
    """Do not switch to a sampler this WebUI lacks (A1111 < 1.8 has no LCM)."""
    entry = catalog.for_architecture(architecture, preset)
    if settings.set_sampler and entry is not None and not compat.sampler_exists(entry.sampler):
        console.say(f"this WebUI has no '{entry.sampler}' sampler; keeping the selected sampler.")
        return replace(settings, set_sampler=False)
    return settings


def _request_from(script: Script, p: Processing) -> Request:
    enable_hr = bool(getattr(p, "enable_hr", False)) and not script.is_img2img
    return Request(
        prompts=tuple(p.all_prompts), main_prompt=p.main_prompt,
        negative_prompts=tuple(getattr(p, "all_negative_prompts", None) or ()),
        steps=int(p.steps), cfg_scale=float(p.cfg_scale),
        sampler_name=p.sampler_name, scheduler=getattr(p, "scheduler", None),
        enable_hr=enable_hr,
        hr_prompts=tuple(getattr(p, "all_hr_prompts", None) or ()) if enable_hr else (),
        hr_second_pass_steps=int(getattr(p, "hr_second_pass_steps", 0) or 0),
        hr_sampler_name=getattr(p, "hr_sampler_name", None), hr_scheduler=getattr(p, "hr_scheduler", None),
        hr_cfg=_float_or_none(getattr(p, "hr_cfg", None)),
        is_img2img=bool(script.is_img2img), denoising_strength=_float_or_none(getattr(p, "denoising_strength", None)),
        img2img_fix_steps=compat.img2img_fix_steps(),
        hires_checkpoint=_other_checkpoint("hires", compat.hires_checkpoint_info(p), p) if enable_hr else None,
        refiner=_other_checkpoint("refiner", getattr(p, "refiner_checkpoint_info", None), p),
    )


def _other_checkpoint(role: Literal["hires", "refiner"], info: Any, p: Processing) -> OtherCheckpoint | None:
    """The checkpoint a pass switches to, its architecture read from its file's header.

    None when the pass keeps the loaded checkpoint (no info, or the info of the loaded file).
    """
    filename = getattr(info, "filename", None)
    if not isinstance(filename, str) or filename == compat.checkpoint_filename(getattr(p, "sd_model", None)):
        return None
    title = str(getattr(info, "short_title", "") or getattr(info, "title", "") or filename)
    return OtherCheckpoint(role, title, compat.file_architecture(filename))


def _apply(p: Processing, plan: Plan) -> None:
    p.all_prompts = list(plan.prompts)
    p.main_prompt = plan.main_prompt
    p.steps = plan.steps
    p.cfg_scale = plan.cfg_scale
    p.sampler_name = plan.sampler_name
    if isinstance(p, ScheduledProcessing) and plan.scheduler is not None and compat.scheduler_exists(plan.scheduler):
        p.scheduler = plan.scheduler
    if isinstance(p, HiresProcessing):
        if plan.hr_prompts:
            p.all_hr_prompts = list(plan.hr_prompts)
        p.hr_second_pass_steps = plan.hr_second_pass_steps
        p.hr_sampler_name = plan.hr_sampler_name
        if plan.hr_scheduler is None or compat.scheduler_exists(plan.hr_scheduler):
            p.hr_scheduler = plan.hr_scheduler
    if plan.hr_cfg is not None and isinstance(p, HiresCfgProcessing):
        p.hr_cfg = plan.hr_cfg
    setattr(p, EXACT_ATTR, plan.exact_schedule)
    setattr(p, TIMESTEPS_ATTR, plan.timesteps)
    setattr(p, PLANNED_ATTR, plan.prompts)
    p.extra_generation_params.update(plan.infotext)
    # ADetailer's pass: its prompt carries our tag from the first pass, so nothing to tell about it
    told = () if inside_adetailer(p) else (*(n.text for n in plan.notes), *fit_adetailer(p, plan),
                                           *fit_guidance(p, plan.cfg_scale))
    for text in told:
        _tell(p, f"LCM-LoRA: {text}")
    console.say(f"<lora:{plan.lora_name}:…> {'added' if plan.tag_added else 'kept'}; "
                f"{plan.steps} steps, CFG {plan.cfg_scale:g}, sampler {plan.sampler_name}")


def _skip(p: Processing, reason: str) -> None:
    p.extra_generation_params[infotext.KEY_SKIPPED] = reason
    _tell(p, f"LCM-LoRA skipped: {reason}")


def _report_input_problems(p: Processing, problems: tuple[str, ...]) -> None:
    text = "; ".join(problems)
    p.extra_generation_params[infotext.KEY_INPUT] = text
    _tell(p, f"LCM-LoRA arguments: {text}")


def _tell(p: Processing, message: str) -> None:
    console.say(message)
    comment = getattr(p, "comment", None)  # shown under the image in the UI (modules/processing.py)
    if callable(comment):
        comment(message)


def _forget_previous_run(p: Processing) -> None:
    setattr(p, PLANNED_ATTR, None)
    setattr(p, KEEP_UNCOND_ATTR, "")
    setattr(p, EXACT_ATTR, False)
    setattr(p, TIMESTEPS_ATTR, ())
    for key in infotext.ALL_KEYS:
        p.extra_generation_params.pop(key, None)


def before_sampling(p: Processing) -> None:
    """``process_before_every_sampling``: p.sampler exists now (txt2img, hires and img2img alike)."""
    samplers.use_exact_sampler(p)


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
