"""The "LCM-LoRA" tab: every catalog entry with its status, a download button per entry, the one for
the loaded checkpoint, cancel, and live progress.

Only the gradio subset that works on A1111 (gradio 3.41.2) and through Forge's gradio 4 shim:
Blocks, Row, Column, HTML, Markdown, Textbox, Button, ``.click(fn, inputs, outputs)`` and
``show_progress=False``. No ``gr.Progress`` (A1111 fails to start with it under
``--no-gradio-queue``) and no ``every=`` polling (it needs the queue): transfers run in background
threads and ``javascript/lcm_lora_downloads.js`` clicks the hidden-in-plain-sight Refresh button
once a second while a row says it is running.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from lib_lcm.downloads.errors import DownloadError
from lib_lcm.downloads.service import AUTO, DownloadService
from lib_lcm.rules import catalog
from lib_lcm.rules.catalog import MB

PAGE_SCRIPT = "lcm_lora_downloads.js"
# The script lives once, in the extension's javascript/ folder, where the WebUI loads it from. A wheel
# carries the same file as package data beside this module (pyproject.toml maps javascript/ there).
_SCRIPT_FOLDERS = (Path(__file__).resolve().parent / "page_js", Path(__file__).resolve().parents[2] / "javascript")
REFRESH_ID = "lcm_lora_downloads_refresh"


def element_id(key: str) -> str:
    return key.replace("-", "_")


def build_tab(service: DownloadService) -> Any:
    import gradio as gr

    with gr.Blocks(analytics_enabled=False) as tab:
        gr.Markdown("### LCM-LoRA files\nThe official acceleration LoRAs from Hugging Face, saved into the Lora "
                    "folder under their own names, verified against the hub's sha256. Downloads resume after an "
                    "interruption; nothing already in the folder is ever replaced.")
        report = safe_report(service)
        header = gr.HTML(value=render_header(report), elem_id="lcm_lora_downloads_header")
        rows, buttons = [], []
        for entry in catalog.CATALOG:
            with gr.Row(equal_height=True):
                with gr.Column(scale=5):
                    rows.append(gr.HTML(value=render_row(report, entry.key),
                                        elem_id=f"lcm_lora_row_{element_id(entry.key)}"))
                with gr.Column(scale=1, min_width=140):
                    download = gr.Button("Download", variant="primary",
                                         elem_id=f"lcm_lora_download_{element_id(entry.key)}")
                    cancel = gr.Button("Cancel", elem_id=f"lcm_lora_cancel_{element_id(entry.key)}")
                buttons.append((entry.key, download, cancel))
        with gr.Row():
            with gr.Column(scale=5):
                name = gr.Textbox(label="Save as (optional; empty keeps the catalog name)",
                                  elem_id="lcm_lora_save_as", placeholder="lcm-lora-sdv1-5.safetensors")
            with gr.Column(scale=1, min_width=140):
                auto = gr.Button("Download the one for my checkpoint", variant="primary",
                                 elem_id="lcm_lora_download_auto")
                refresh = gr.Button("Refresh", elem_id=REFRESH_ID)
        message = gr.HTML(value="", elem_id="lcm_lora_downloads_message")

        outputs = [header, *rows, message]
        for key, download, cancel in buttons:
            download.click(fn=_starter(service, key), inputs=[name], outputs=outputs, show_progress=False)
            cancel.click(fn=_canceller(service, key), inputs=[], outputs=outputs, show_progress=False)
        auto.click(fn=_starter(service, AUTO), inputs=[name], outputs=outputs, show_progress=False)
        refresh.click(fn=lambda: _view(service, ""), inputs=[], outputs=outputs, show_progress=False)
    return tab


def standalone_page(service: DownloadService) -> Any:
    """The tab as its own page (``python -m lib_lcm ui``), with the polling script the WebUI would inject."""
    import gradio as gr

    page = build_tab(service)
    script = f"() => {{ {page_script()} }}"
    with page:
        # gradio 3 names it _js, gradio 4 js
        page.load(fn=None, inputs=None, outputs=None, **({"_js": script} if gr.__version__.startswith("3.") else
                                                          {"js": script}))
    return page


def page_script() -> str:
    """The polling script the WebUI injects into its page, read from an installed wheel or from the checkout."""
    for folder in _SCRIPT_FOLDERS:
        if (folder / PAGE_SCRIPT).is_file():
            return (folder / PAGE_SCRIPT).read_text(encoding="utf-8")
    raise FileNotFoundError(f"{PAGE_SCRIPT} is in neither {' nor '.join(map(str, _SCRIPT_FOLDERS))}")


def _starter(service: DownloadService, key: str) -> Any:
    def start(name: str) -> list[str]:
        try:
            job = service.start(key, (name or "").strip() or None)
        except DownloadError as error:
            return _view(service, _message(error.message, ok=False))
        return _view(service, _message(f"Downloading {job.target}…", ok=True))

    return start


def _canceller(service: DownloadService, key: str) -> Any:
    def cancel() -> list[str]:
        cancelled = service.cancel(key)
        return _view(service, _message("Cancelling…" if cancelled else "Nothing to cancel.", ok=cancelled))

    return cancel


def _view(service: DownloadService, message: str) -> list[str]:
    report = safe_report(service)
    return [render_header(report), *(render_row(report, e.key) for e in catalog.CATALOG), message]


def safe_report(service: DownloadService) -> dict[str, Any]:
    """The service's report, or one that says why there is none: the tab must always render."""
    try:
        return service.report()
    except Exception as error:
        return {"error": str(error), "lora_dir": "?", "loaded": {"title": "", "label": ""}, "entries": []}


def _message(text: str, ok: bool) -> str:
    return f"<p class='lcm-lora-message {'ok' if ok else 'error'}'>{html.escape(text)}</p>"


def render_header(report: dict[str, Any]) -> str:
    if "error" in report:
        return f"<p class='lcm-lora-message error'>Cannot read the Lora folder: {html.escape(report['error'])}</p>"
    loaded = report["loaded"]
    model = (f"Loaded checkpoint: {html.escape(loaded['title'])} ({html.escape(loaded['label'])})"
             if loaded["title"] else "No checkpoint loaded yet")
    return f"<p>{model}. Lora folder: <code>{html.escape(report['lora_dir'])}</code></p>"


def render_row(report: dict[str, Any], key: str) -> str:
    item = next((e for e in report["entries"] if e["key"] == key), None)
    if item is None:
        return f"<div class='lcm-lora-row'>{html.escape(key)}: status unavailable</div>"
    job = item["job"] or {}
    state = job.get("state") if job.get("state") == "running" else item["state"]
    size = (f"{item['size_bytes'] / MB:.0f} MB" if item["size_bytes"]
            else f"about {item['approx_size']}" if item.get("approx_size") else "size shown by the hub")
    mark = " <b>← for the loaded checkpoint</b>" if item["matches_loaded_checkpoint"] else ""
    used = (f"<br>The accordion uses <code>{html.escape(item['used_file'])}</code>."
            if item["used_file"] and item["used_file"] != item["local_file"] else "")
    return (f"<div class='lcm-lora-row' data-lcm-lora-key='{html.escape(key)}' data-lcm-lora-state='{state}'>"
            f"<b>{html.escape(item['family'])} for {html.escape(item['architecture'])}</b> — "
            f"<a href='{html.escape(item['url'])}' target='_blank'>"
            f"{html.escape(item['repo_id'])}</a> → <code>{html.escape(item['local_file'])}</code> ({size}){mark}"
            f"<br>{_status_text(item, job)}{used}</div>")


def _status_text(item: dict[str, Any], job: dict[str, Any]) -> str:
    if job.get("state") == "running":
        percent = job.get("percent") or 0.0
        speed = (job.get("bytes_per_second") or 0.0) / MB
        return (f"<progress max='100' value='{percent:.1f}'></progress> Downloading {percent:.0f}% "
                f"({(job.get('done') or 0) / MB:.1f} MB, {speed:.1f} MB/s)")
    text = html.escape(item["message"])
    finished = job.get("state") in ("failed", "cancelled", "done")
    if finished and not (job["state"] == "done" and job.get("target") == item["local_file"]):
        text = f"{html.escape(job['message'])}<br>{text}"  # the last job's result, unless the status says it
    return f"<span class='lcm-lora-state lcm-lora-{item['state']}'>{text}</span>"
