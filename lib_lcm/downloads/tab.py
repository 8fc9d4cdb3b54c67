"""The "LCM-LoRA" tab: first what the loaded checkpoint needs, its state and the one button that gets
it; then every catalog entry as one row of a table with only the action its state allows.

- The primary card follows the accordion: "recommended" is the file the accordion's current preset
  would use for the loaded checkpoint (the page script hands the preset over with every request;
  without an accordion, the default preset of the settings). Its button downloads, resumes,
  verifies or cancels that file; it is hidden when there is nothing to do.
- The table marks the other entries that fit the loaded checkpoint ("fits SD 1.5"). A row offers
  Download, Resume, Verify or, while its download runs, Cancel; "Save as…" sits beside the file name
  it replaces. The rows' buttons are HTML, as in the WebUI's own Extensions tab, and go through one
  hidden gradio button (``javascript/lcm_lora_downloads.js``).

Only the gradio subset that works on A1111 (gradio 3.41.2) and through Forge's gradio 4 shim:
Blocks, Row, Column, HTML, Textbox, Button, ``.click(fn, inputs, outputs)``, ``gr.update`` and
``show_progress=False``. No ``gr.Progress`` (A1111 fails to start with it under
``--no-gradio-queue``) and no ``every=`` polling (it needs the queue): transfers run in background
threads and the page script clicks the Refresh button once a second while a row says it is running.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib_lcm.downloads.errors import DownloadError
from lib_lcm.downloads.service import DownloadService
from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture, unsupported_reason
from lib_lcm.rules.catalog import MB

PAGE_SCRIPT = "lcm_lora_downloads.js"
STYLE_SHEET = "style.css"
# The script lives once, in the extension's javascript/ folder, where the WebUI loads it from. A wheel
# carries the same file as package data beside this module (pyproject.toml maps javascript/ there).
_SCRIPT_FOLDERS = (Path(__file__).resolve().parent / "page_js", Path(__file__).resolve().parents[2] / "javascript")
_CHECKOUT = Path(__file__).resolve().parents[2]
REFRESH_ID = "lcm_lora_downloads_refresh"
PRIMARY_ID = "lcm_lora_download_auto"
ACTION_ID = "lcm_lora_action"  # hidden: the row action the page script hands over
RUN_ID = "lcm_lora_action_run"  # hidden: clicked by the page script for a row's button
PRESET_ID = "lcm_lora_preset_in_use"  # hidden: the accordion's preset, filled in by the page script

# What a row offers in each state of its file (lora_files.status) or job.
ROW_ACTIONS = {"missing": "Download", "partial": "Resume", "present": "Verify", "running": "Cancel"}
SAVE_AS_STATES = ("missing", "different", "corrupt")  # a new file can be written under another name


def element_id(key: str) -> str:
    return key.replace("-", "_")


@dataclass(frozen=True)
class Primary:
    """The card on top: what the loaded checkpoint needs with the accordion's preset, and its button."""

    html: str
    key: str | None = None  # the catalog entry the button acts on
    button: str = ""  # its label; empty: no button
    cancel: bool = False  # the button cancels the running download


def build_tab(service: DownloadService) -> Any:
    import gradio as gr

    with gr.Blocks(analytics_enabled=False) as tab:
        report = safe_report(service)
        first = primary(report, default_preset(service))
        with gr.Row(elem_id="lcm_lora_primary", equal_height=True):
            with gr.Column(scale=4):
                header = gr.HTML(value=first.html, elem_id="lcm_lora_downloads_header")
            with gr.Column(scale=1, min_width=200):
                auto = gr.Button(first.button or "Download", variant="secondary" if first.cancel else "primary",
                                 visible=bool(first.button), elem_id=PRIMARY_ID)
        message = gr.HTML(value="", elem_id="lcm_lora_downloads_message")
        table = gr.HTML(value=render_catalog(report, first.key), elem_id="lcm_lora_catalog")
        with gr.Row(equal_height=True):
            with gr.Column(scale=6):
                folder = gr.HTML(value=render_folder(report), elem_id="lcm_lora_folder")
            with gr.Column(scale=1, min_width=120):
                refresh = gr.Button("Refresh", size="sm", elem_id=REFRESH_ID)
        action = gr.Textbox(value="", visible=False, elem_id=ACTION_ID)
        preset = gr.Textbox(value="", visible=False, elem_id=PRESET_ID)
        run = gr.Button(visible=False, elem_id=RUN_ID)

        outputs = [header, auto, message, table, folder]
        take_preset = _js("(preset) => [lcmLoraCurrentPreset(preset)]")
        auto.click(fn=_primary_click(service), inputs=[preset], outputs=outputs, show_progress=False, **take_preset)
        refresh.click(fn=lambda p: _view(service, "", p), inputs=[preset], outputs=outputs, show_progress=False,
                      **take_preset)
        run.click(fn=_row_action(service), inputs=[action, preset], outputs=outputs, show_progress=False,
                  **_js("(action, preset) => lcmLoraTakeAction(action, preset)"))
    return tab


def _js(source: str) -> dict[str, str]:
    """An event's frontend function: ``_js`` in gradio 3, ``js`` in gradio 4 (Forge's shim maps both)."""
    import gradio as gr

    return {"_js": source} if gr.__version__.startswith("3.") else {"js": source}


def standalone_page(service: DownloadService) -> Any:
    """The tab as its own page (``python -m lib_lcm ui``), with the script and the styles the WebUI would inject."""
    page = build_tab(service)
    script = f"() => {{ {page_script()} }}"
    css = style_sheet()
    with page:
        if css:  # the WebUI links style.css; here it goes into the page
            import gradio as gr

            gr.HTML(value=f"<style>{css}</style>", visible=True, elem_id="lcm_lora_style")
        page.load(fn=None, inputs=None, outputs=None, **_js(script))
    return page


def page_script() -> str:
    """The polling script the WebUI injects into its page, read from an installed wheel or from the checkout."""
    for folder in _SCRIPT_FOLDERS:
        if (folder / PAGE_SCRIPT).is_file():
            return (folder / PAGE_SCRIPT).read_text(encoding="utf-8")
    raise FileNotFoundError(f"{PAGE_SCRIPT} is in neither {' nor '.join(map(str, _SCRIPT_FOLDERS))}")


def style_sheet() -> str:
    """The extension's style.css, when this runs from a checkout (a wheel has no WebUI files; the page
    then shows gradio's plain styles)."""
    path = _CHECKOUT / STYLE_SHEET
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def default_preset(service: DownloadService) -> str:
    try:
        return service.settings().defaults.preset
    except Exception:
        return catalog.LCM_LORA


def _preset(service: DownloadService, given: str | None) -> str:
    return catalog.family_named(given or "") or default_preset(service)


def _primary_click(service: DownloadService) -> Any:
    def click(preset: str) -> list[Any]:
        chosen = primary(safe_report(service), _preset(service, preset))
        if chosen.key is None:
            return _view(service, "", preset)
        if chosen.cancel:
            return _cancel(service, chosen.key, preset)
        return _start(service, chosen.key, None, preset)

    return click


def _row_action(service: DownloadService) -> Any:
    def act(action: str, preset: str) -> list[Any]:
        try:
            request = json.loads(action or "{}")
            kind, key, name = request.get("action"), str(request.get("key") or ""), request.get("name")
        except (ValueError, AttributeError):
            return _view(service, _message("The page sent an action this tab does not know.", ok=False), preset)
        if kind == "cancel":
            return _cancel(service, key, preset)
        if kind == "download":
            return _start(service, key, name if isinstance(name, str) else None, preset)
        return _view(service, _message("The page sent an action this tab does not know.", ok=False), preset)

    return act


def _start(service: DownloadService, key: str, name: str | None, preset: str) -> list[Any]:
    try:
        job = service.start(key, (name or "").strip() or None)
    except DownloadError as error:
        return _view(service, _message(error.message, ok=False), preset)
    return _view(service, _message(f"Downloading {job.target}…", ok=True), preset)


def _cancel(service: DownloadService, key: str, preset: str) -> list[Any]:
    try:
        cancelled = service.cancel(key)
    except DownloadError as error:
        return _view(service, _message(error.message, ok=False), preset)
    return _view(service, _message("Cancelling…" if cancelled else "Nothing to cancel.", ok=cancelled), preset)


def _view(service: DownloadService, message: str, preset: str | None = None) -> list[Any]:
    """Every output of the tab: the card, its button, the message, the table, the folder line."""
    import gradio as gr

    report = safe_report(service)
    first = primary(report, _preset(service, preset))
    button = gr.update(value=first.button or "Download", visible=bool(first.button),
                       variant="secondary" if first.cancel else "primary")
    return [first.html, button, message, render_catalog(report, first.key), render_folder(report)]


def safe_report(service: DownloadService) -> dict[str, Any]:
    """The service's report, or one that says why there is none: the tab must always render."""
    try:
        return service.report()
    except Exception as error:
        return {"error": str(error), "lora_dir": "?",
                "loaded": {"architecture": Architecture.UNKNOWN.value, "title": "", "label": "", "key": None},
                "entries": []}


def _message(text: str, ok: bool) -> str:
    return f"<p class='lcm-lora-message {'ok' if ok else 'error'}'>{html.escape(text)}</p>"


# --- the card on top ----------------------------------------------------------------------------------

def primary(report: dict[str, Any], preset: str) -> Primary:
    """What the loaded checkpoint needs with ``preset``, its state, and the one action that gets it."""
    if "error" in report:
        return Primary(_card("", f"Cannot read the Lora folder: {html.escape(report['error'])}", "error"))
    loaded = report["loaded"]
    architecture = Architecture(loaded.get("architecture") or Architecture.UNKNOWN.value)
    kicker = (f"Loaded checkpoint: <b>{html.escape(loaded['title'])}</b> ({html.escape(loaded['label'])})"
              f" · accordion preset: {html.escape(preset)}" if loaded["title"] else "")
    if not loaded["title"] and architecture is Architecture.UNKNOWN:
        return Primary(_card(kicker, "No checkpoint is loaded yet: pick the file for your model in the list.",
                             "none"))
    if catalog.for_architecture(architecture) is None:
        return Primary(_card(kicker, html.escape(unsupported_reason(architecture)), "unsupported"))
    entry = catalog.for_architecture(architecture, preset)
    if entry is None:
        reason = catalog.preset_unavailable_reason(preset, architecture)
        return Primary(_card(kicker, html.escape(reason), "unavailable"))
    item = next((e for e in report["entries"] if e["key"] == entry.key), None)
    if item is None:
        return Primary(_card(kicker, f"{html.escape(entry.key)}: status unavailable", "error"))
    job = item["job"] or {}
    wanted = (f"<p class='lcm-lora-wanted'>It needs <b>{html.escape(item['family'])} for "
              f"{html.escape(item['architecture'])}</b>: <code>{html.escape(item['local_file'])}</code>, "
              f"{_size(item)}</p>")
    state = "running" if job.get("state") == "running" else item["state"]
    if state == "running":
        return Primary(_card(kicker, wanted + _progress(job), state, entry.key), entry.key, "Cancel download", True)
    used = item["used_file"]
    if used:
        ready = f"Ready: the accordion uses <code>{html.escape(used)}</code>. "
        detail = "" if used != item["local_file"] else _state_text(item, job)
        button = "Verify" if state == "present" and used == item["local_file"] else ""
        return Primary(_card(kicker, wanted + ready + detail, "ready", entry.key), entry.key, button)
    button = {"missing": "Download", "partial": "Resume download"}.get(state, "")
    note = "" if button else " Use “Save as…” in its row below to download it under another name."
    return Primary(_card(kicker, wanted + _state_text(item, job) + html.escape(note), state, entry.key), entry.key,
                   button)


def _card(kicker: str, body: str, state: str, key: str | None = None) -> str:
    top = f"<p class='lcm-lora-kicker'>{kicker}</p>" if kicker else ""
    return (f"<div class='lcm-lora-primary' data-lcm-lora-state='{state}' data-lcm-lora-key='{html.escape(key or '')}'>"
            f"{top}<div>{body}</div></div>")


# --- the table ----------------------------------------------------------------------------------------

def render_catalog(report: dict[str, Any], recommended: str | None = None) -> str:
    rows = "".join(render_row(report, entry.key, recommended) for entry in catalog.CATALOG)
    return ("<div class='lcm-lora-catalog-scroll'><table class='lcm-lora-catalog'><thead><tr><th>Preset</th>"
            "<th>Model</th><th>File</th><th>Size</th><th>Source</th><th>Status</th><th></th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def render_row(report: dict[str, Any], key: str, recommended: str | None = None) -> str:
    row_id = f"lcm_lora_row_{element_id(key)}"
    item = next((e for e in report["entries"] if e["key"] == key), None)
    if item is None:
        return (f"<tr id='{row_id}' class='lcm-lora-row'><td colspan='7'>{html.escape(key)}: status unavailable"
                "</td></tr>")
    job = item["job"] or {}
    state = "running" if job.get("state") == "running" else item["state"]
    loaded = report["loaded"]
    tag = ""
    if key == recommended:
        tag = ("<span class='lcm-lora-tag lcm-lora-recommended' title='What the accordion uses with its current "
               "preset for the loaded checkpoint'>recommended</span>")
    elif item["matches_loaded_checkpoint"]:
        label = html.escape(item["architecture"])
        tag = (f"<span class='lcm-lora-tag' title='Works with the loaded checkpoint, an {label} model'>"
               f"fits {label}</span>")
    fits = " lcm-lora-fits" if item["matches_loaded_checkpoint"] and loaded.get("title") else ""
    marks = " data-lcm-lora-recommended='1'" if key == recommended else ""
    used = (f"<br>The accordion uses <code>{html.escape(item['used_file'])}</code>."
            if item["used_file"] and item["used_file"] != item["local_file"] else "")
    source = html.escape(item["repo_id"]).replace("/", "/<wbr>", 1)
    return (f"<tr id='{row_id}' class='lcm-lora-row{fits}' data-lcm-lora-key='{html.escape(key)}' "
            f"data-lcm-lora-state='{state}'{marks}>"
            f"<td class='lcm-lora-keep'>{html.escape(item['family'])}{tag}</td>"
            f"<td class='lcm-lora-keep'>{html.escape(item['architecture'])}</td>"
            f"<td class='lcm-lora-keep'><code>{html.escape(item['local_file'])}</code>{_save_as(item, state)}</td>"
            f"<td class='lcm-lora-size'>{_size(item)}</td>"
            f"<td><a class='lcm-lora-source' href='{html.escape(item['url'])}' target='_blank' rel='noopener'>"
            f"{source}</a></td>"
            f"<td class='lcm-lora-status-cell'>{_progress(job) if state == 'running' else _state_text(item, job)}"
            f"{used}</td>"
            f"<td class='lcm-lora-actions lcm-lora-keep'>{_row_button(key, state)}</td></tr>")


def _row_button(key: str, state: str) -> str:
    label = ROW_ACTIONS.get(state)
    if label is None:
        return ""
    action, prefix = ("cancel", "lcm_lora_cancel_") if state == "running" else ("download", "lcm_lora_download_")
    return (f"<button type='button' class='lcm-lora-action' id='{prefix}{element_id(key)}' "
            f"data-lcm-lora-action='{action}' data-lcm-lora-key='{html.escape(key)}'>{label}</button>")


def _save_as(item: dict[str, Any], state: str) -> str:
    if state not in SAVE_AS_STATES:
        return ""
    key, ident = html.escape(item["key"]), element_id(item["key"])
    return (f"<details class='lcm-lora-save-as' data-lcm-lora-key='{key}'><summary>Save as…</summary>"
            f"<input type='text' id='lcm_lora_save_as_{ident}' data-lcm-lora-key='{key}' "
            f"placeholder='{html.escape(item['local_file'])}' aria-label='Save {html.escape(item['local_file'])} as'>"
            f"<button type='button' class='lcm-lora-action' id='lcm_lora_download_as_{ident}' "
            f"data-lcm-lora-action='download' data-lcm-lora-key='{key}' data-lcm-lora-named='1'>Download as</button>"
            "</details>")


def _size(item: dict[str, Any]) -> str:
    """The size as the hub shows it, its number and unit never apart."""
    if item["size_bytes"]:
        return f"{item['size_bytes'] / MB:.0f}\u00a0MB"
    if item.get("approx_size"):
        return f"about {html.escape(item['approx_size'].replace(' ', chr(0xA0)))}"
    return "size shown by the hub"


def _progress(job: dict[str, Any]) -> str:
    percent = job.get("percent") or 0.0
    speed = (job.get("bytes_per_second") or 0.0) / MB
    return (f"<progress max='100' value='{percent:.1f}'></progress> Downloading {percent:.0f}% "
            f"({(job.get('done') or 0) / MB:.1f} MB, {speed:.1f} MB/s)")


def _state_text(item: dict[str, Any], job: dict[str, Any]) -> str:
    text = html.escape(item["message"])
    finished = job.get("state") in ("failed", "cancelled", "done")
    if finished and not (job["state"] == "done" and job.get("target") == item["local_file"]):
        text = f"{html.escape(job['message'])}<br>{text}"  # the last job's result, unless the status says it
    return f"<span class='lcm-lora-state lcm-lora-{item['state']}'>{text}</span>"


def render_folder(report: dict[str, Any]) -> str:
    return (f"<p class='lcm-lora-folder'>Saved into <code>{html.escape(report['lora_dir'])}</code> under their own "
            "names and checked against the hub's sha256. An interrupted download resumes; a file already there "
            "is never replaced.</p>")
