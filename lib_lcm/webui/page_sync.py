"""Move the WebUI's own sampler and schedule dropdowns when the accordion or its preset changes.

Sliders are moved by ``javascript/lcm_lora.js`` through the DOM, the way ``switchWidthHeight`` in
the WebUI's ``javascript/ui.js`` does, on the DOM events of the accordion's checkbox. A gradio 3
Dropdown cannot be set reliably from the DOM (guide section 12), so the page script clicks a hidden
"apply" button whose ``_js`` hook hands over the values it wants, and this module echoes them back
as ``gr.update``; the script clicks again until the dropdown shows them, because gradio 3 drops a
trigger that arrives while the same event is still running (``Blocks.svelte``: "pending").

The built-in dropdowns are created outside ``ui()``, so they are captured with
``on_after_component``, registered from ``Script.__init__`` (A1111 and Forge apply those in
``ScriptRunner.initialize_scripts``), and the events are wired once the tab's output gallery exists
(``modules/ui_common.py`` ``create_output_panel``), when every setting is built.
"""

from __future__ import annotations

from typing import Any

_STATE = "_lcm_lora_page_sync"
TABS = ("txt2img", "img2img")
DROPDOWNS = ("sampling", "scheduler")  # #txt2img_sampling, #txt2img_scheduler (modules/ui.py)


def attach(script: Any) -> None:
    """From ``Script.__init__``: is_img2img is not known yet, so ask for both tabs' ids."""
    if not hasattr(script, "on_after_component"):  # WebUI before 1.7
        return
    for tab in TABS:
        for kind in DROPDOWNS:
            script.on_after_component(_capturer(script, kind), elem_id=f"{tab}_{kind}")
        script.on_after_component(lambda _component, s=script: wire(s), elem_id=f"{tab}_gallery")


def remember_inputs(script: Any, enabled: Any, preset: Any, apply: Any) -> None:
    state = _state(script)
    state.update(enabled=enabled, preset=preset, apply=apply, wired=False)


def wire(script: Any) -> bool:
    """Bind the accordion and preset changes to the dropdowns; False when a piece is missing."""
    state = _state(script)
    enabled, preset, apply, sampler = (state.get(k) for k in ("enabled", "preset", "apply", "sampling"))
    if state.get("wired") or enabled is None or preset is None or apply is None or sampler is None:
        return False
    outputs = [sampler] + ([state["scheduler"]] if state.get("scheduler") is not None else [])
    tab = "img2img" if getattr(script, "is_img2img", False) else "txt2img"
    # gradio 3 calls an _js hook with the inputs' values, then the outputs'; it returns the inputs.
    apply.click(fn=dropdown_updates, _js=f"(...v) => lcmLoraWanted('{tab}', ...v)",
                inputs=[enabled, preset, *outputs], outputs=outputs, show_progress=False)
    state["wired"] = True
    return True


def dropdown_updates(_enabled: bool, _preset: str, sampler: str, scheduler: str | None = None) -> list[Any]:
    """The values the page script chose, or no change where the name is not a real choice."""
    import gradio as gr
    from modules import sd_samplers

    from lib_lcm.webui import compat

    updates = [gr.update(value=sampler) if sampler in sd_samplers.all_samplers_map else gr.update()]
    if scheduler is not None:
        updates.append(gr.update(value=scheduler) if compat.scheduler_exists(scheduler) else gr.update())
    return updates


def _capturer(script: Any, kind: str) -> Any:
    def capture(on_component: Any) -> None:
        _state(script)[kind] = on_component.component

    return capture


def _state(script: Any) -> dict[str, Any]:
    state: dict[str, Any] = script.__dict__.setdefault(_STATE, {})
    return state
