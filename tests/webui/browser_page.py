"""A page with the WebUI's txt2img and img2img settings, for driving javascript/lcm_lora.js in a browser.

Built with the WebUI's gradio (3.41.2) from the same components, element ids and creation order as
modules/ui.py in A1111 1.10.1: prompt and negative prompt, the "sampler" section (sampler and schedule
dropdowns, Steps), the "accordions" section (Hires. fix as an InputAccordion with Hires steps, then
every always-on script's ui(), ours included), CFG Scale, and the output gallery that
modules/ui_common.py creates last. Each built-in component is announced to the tab's ScriptRunner
as modules/scripts.py does, so the extension's on_after_component wiring runs as in the WebUI.
``forge=True`` adds Forge's hires CFG slider (txt2img_hr_cfg) and CFG step 0.1.

The page scripts the WebUI provides (script.js gradioApp/onUiLoaded, javascript/ui.js updateInput,
javascript/inputAccordion.js) are replaced by ``PAGE_HELPERS``: small functions with the same
contract, written here. No WebUI code is copied.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
from modules import scripts
from modules.ui_components import InputAccordion

ROOT = Path(__file__).resolve().parents[2]
SAMPLERS = ["DPM++ 2M", "Euler a", "Euler", "LCM", "TCD"]
SCHEDULES = ["Automatic", "Uniform", "Karras", "Exponential", "SGM Uniform"]

# The contracts of the WebUI's page helpers: gradioApp() is the root to query; onUiLoaded(cb) runs cb
# once #txt2img_prompt exists; updateInput(el) sends a bubbling "input" event gradio listens to;
# inputAccordionChecked(id, on) ticks an InputAccordion the way its header checkbox does.
PAGE_HELPERS = """
window.gradioApp = function () {
    var app = document.querySelector('gradio-app');
    return app ? (app.shadowRoot || app) : document;
};
window.updateInput = function (target) {
    var event = new Event('input', {bubbles: true});
    Object.defineProperty(event, 'target', {value: target});
    target.dispatchEvent(event);
};
window.onUiLoaded = function (callback) {
    var timer = setInterval(function () {
        if (gradioApp().querySelector('#txt2img_prompt')) { clearInterval(timer); callback(); }
    }, 100);
};
window.inputAccordionChecked = function (id, on) {
    var box = gradioApp().querySelector('#' + id + '-checkbox input');
    var header = gradioApp().querySelector('#' + id + ' .label-wrap');
    if (header && header.classList.contains('open') !== on) { header.click(); }
    if (box.checked !== on) { box.checked = on; updateInput(box); box.dispatchEvent(new Event('change')); }
};
"""


def page_scripts() -> str:
    """What the browser runs before the page: the helpers, then the extension's scripts."""
    ours = [(ROOT / "javascript" / name).read_text(encoding="utf-8")
            for name in ("lcm_lora.js", "lcm_lora_downloads.js")]
    return "\n;\n".join([PAGE_HELPERS, *ours])


def build_page(script_classes: list, forge: bool = False) -> gr.Blocks:
    with gr.Blocks(analytics_enabled=False) as page, gr.Tabs(elem_id="tabs"):
        for tab in ("txt2img", "img2img"):
            with gr.TabItem(tab, id=tab, elem_id=f"tab_{tab}"):
                runner = scripts.ScriptRunner(script_classes, is_img2img=tab == "img2img")
                _settings_column(runner, tab, forge)
        with gr.TabItem("LCM-LoRA", id="lcm_lora", elem_id="tab_lcm_lora"):
            gr.HTML("<p id='lcm_lora_tab_content'>the downloads tab</p>")
    return page


def _settings_column(runner: scripts.ScriptRunner, tab: str, forge: bool) -> None:
    built: list = []

    def seen(component):
        built.append(component)
        return runner.after_component(component)

    seen(gr.Textbox(label="Prompt", elem_id=f"{tab}_prompt", lines=2))
    seen(gr.Textbox(label="Negative prompt", elem_id=f"{tab}_neg_prompt", lines=2))
    with gr.Row():  # the "sampler" section (modules/ui.py create_sampler_and_steps_selection)
        seen(gr.Dropdown(label="Sampling method", elem_id=f"{tab}_sampling", choices=SAMPLERS, value="DPM++ 2M"))
        seen(gr.Dropdown(label="Schedule type", elem_id=f"{tab}_scheduler", choices=SCHEDULES, value="Automatic"))
        seen(gr.Slider(minimum=1, maximum=150, step=1, label="Sampling steps", value=20, elem_id=f"{tab}_steps"))
    if tab == "txt2img":  # the "accordions" section: Hires. fix first, then the always-on scripts
        with InputAccordion(False, label="Hires. fix", elem_id="txt2img_hr") as enable_hr:
            seen(enable_hr)
            seen(gr.Slider(minimum=0, maximum=150, step=1, label="Hires steps", value=0,
                           elem_id="txt2img_hires_steps"))
            if forge:
                seen(gr.Slider(minimum=1, maximum=30, step=0.1, label="Hires CFG Scale", value=7.0,
                               elem_id="txt2img_hr_cfg"))
    runner.create_scripts_ui()
    seen(gr.Slider(minimum=1, maximum=30, step=0.1 if forge else 0.5, label="CFG Scale", value=7.0,
                   elem_id=f"{tab}_cfg_scale"))
    seen(gr.Gallery(label="Output", elem_id=f"{tab}_gallery"))  # modules/ui_common.py create_output_panel
    # Being an input of Generate is what makes gradio 3 render the settings editable (modules/ui.py
    # passes every setting and every script control to txt2img/img2img).
    gr.Button("Generate", elem_id=f"{tab}_generate").click(
        fn=lambda *values: None, inputs=[c for c in built if not isinstance(c, gr.Gallery)] + runner.inputs[1:],
        outputs=[])
    if runner.errors:
        raise RuntimeError("\n".join(runner.errors))
