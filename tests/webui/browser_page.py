"""A page with the WebUI's txt2img and img2img settings, for driving javascript/lcm_lora.js in a browser.

Built with the WebUI's gradio (3.41.2) from the same components, element ids and creation order as
modules/ui.py in A1111 1.10.1, laid out the same way: a settings column (txt2img_settings) beside the
results column, holding prompt and negative prompt, the "sampler" section (sampler and schedule
dropdowns, Steps), the "accordions" section (a row with Hires. fix as an InputAccordion with Hires
steps, then the always-on scripts of that section, ours included, in a gr.Group when they ask for one,
then the built-in Refiner's InputAccordion), CFG Scale, and the output gallery that
modules/ui_common.py creates last. Each built-in component is announced to the tab's ScriptRunner
as modules/scripts.py does, so the extension's on_after_component wiring runs as in the WebUI.
``forge=True`` adds Forge's hires CFG slider (txt2img_hr_cfg) and CFG step 0.1. The LCM-LoRA tab
is the real one (lib_lcm.webui.downloads), rendered inside the page as the WebUI renders extension tabs.

The page scripts the WebUI provides (script.js gradioApp/onUiLoaded, javascript/ui.js updateInput,
javascript/inputAccordion.js) are replaced by ``PAGE_HELPERS``: small functions with the same
contract, written here. The WebUI's layout rules the accordion row depends on (style.css) are
imitated by ``LAYOUT_CSS``, in our own words; the extension's style.css is added as the WebUI adds
it. No WebUI code is copied.
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
// An open InputAccordion carries the class input-accordion-open (what the WebUI's layout rules key on).
document.addEventListener('click', function () {
    setTimeout(function () {
        gradioApp().querySelectorAll('.input-accordion').forEach(function (accordion) {
            var header = accordion.querySelector('.label-wrap');
            accordion.classList.toggle('input-accordion-open', Boolean(header && header.classList.contains('open')));
        });
    }, 0);
});
"""

# The WebUI's layout rules for the accordions row and tool buttons (A1111 1.10.1 style.css), imitated:
# in the row, a closed InputAccordion is never narrower than its header and shares the row with the
# others; an open one grows from the width of its content and stacks its content; the header text
# does not wrap; a tool button keeps its small width beside the component it serves.
LAYOUT_CSS = """
.accordions { gap: 0.5em; }
.accordions > .input-accordion { min-width: fit-content !important; }
.accordions > .input-accordion.input-accordion-open { flex: 1 1 auto; flex-direction: column; }
.accordions .label-wrap span { white-space: nowrap; }
button.tool { flex: 0 0 auto !important; min-width: 2.2em !important; max-width: 2.6em; }
"""


def page_scripts() -> str:
    """What the browser runs before the page: the helpers, then the extension's scripts."""
    ours = [(ROOT / "javascript" / name).read_text(encoding="utf-8")
            for name in ("lcm_lora.js", "lcm_lora_downloads.js")]
    return "\n;\n".join([PAGE_HELPERS, *ours])


def page_css() -> str:
    return LAYOUT_CSS + (ROOT / "style.css").read_text(encoding="utf-8")


def build_page(script_classes: list, forge: bool = False) -> gr.Blocks:
    from lib_lcm.webui.downloads import on_ui_tabs

    [(downloads_tab, title, tab_id)] = on_ui_tabs()  # built first, rendered in its tab (modules/ui.py)
    with gr.Blocks(analytics_enabled=False, css=page_css()) as page, gr.Tabs(elem_id="tabs"):
        for tab in ("txt2img", "img2img"):
            with gr.TabItem(tab, id=tab, elem_id=f"tab_{tab}"), gr.Row(equal_height=False):
                runner = scripts.ScriptRunner(script_classes, is_img2img=tab == "img2img")
                with gr.Column(variant="compact", elem_id=f"{tab}_settings"):
                    built = _settings_column(runner, tab, forge)
                with gr.Column(elem_id=f"{tab}_results"):
                    # modules/ui_common.py create_output_panel: the gallery comes after every setting
                    built.append(runner.after_component(gr.Gallery(label="Output", elem_id=f"{tab}_gallery")))
                    _generate_button(runner, tab, built)
        with gr.TabItem(title, id=tab_id, elem_id=f"tab_{tab_id}"):
            downloads_tab.render()
    return page


def _settings_column(runner: scripts.ScriptRunner, tab: str, forge: bool) -> list:
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
    # The "accordions" section: Hires. fix first (txt2img only), the always-on scripts of the section,
    # then the built-in Refiner (modules/processing_scripts/refiner.py, loaded after every extension).
    with gr.Row(elem_id=f"{tab}_accordions", elem_classes=["accordions"]):
        if tab == "txt2img":
            with InputAccordion(False, label="Hires. fix", elem_id="txt2img_hr") as enable_hr:
                seen(enable_hr)
                seen(gr.Slider(minimum=0, maximum=150, step=1, label="Hires steps", value=0,
                               elem_id="txt2img_hires_steps"))
                if forge:
                    seen(gr.Slider(minimum=1, maximum=30, step=0.1, label="Hires CFG Scale", value=7.0,
                                   elem_id="txt2img_hr_cfg"))
        runner.create_scripts_ui(section="accordions")
        with InputAccordion(False, label="Refiner", elem_id=f"{tab}_enable") as refiner, gr.Row():
            seen(refiner)
            seen(gr.Dropdown(label="Checkpoint", choices=["None"], value="None", elem_id=f"{tab}_checkpoint"))
            seen(gr.Slider(minimum=0.01, maximum=1.0, step=0.01, label="Switch at", value=0.8,
                           elem_id=f"{tab}_switch_at"))
    seen(gr.Slider(minimum=1, maximum=30, step=0.1 if forge else 0.5, label="CFG Scale", value=7.0,
                   elem_id=f"{tab}_cfg_scale"))
    return built


def _generate_button(runner: scripts.ScriptRunner, tab: str, built: list) -> None:
    # Being an input of Generate is what makes gradio 3 render the settings editable (modules/ui.py
    # passes every setting and every script control to txt2img/img2img).
    gr.Button("Generate", elem_id=f"{tab}_generate").click(
        fn=lambda *values: None, inputs=[c for c in built if not isinstance(c, gr.Gallery)] + runner.inputs[1:],
        outputs=[])
    if runner.errors:
        raise RuntimeError("\n".join(runner.errors))
