"""The LCM-LoRA axes in the real WebUI's X/Y/Z plot, through the API (``script_name: "x/y/z plot"``).

The axis types are indices into the plot's txt2img list, which the API's script-info gives as the
"X type" dropdown's choices: the test looks ours up there, as a client would.
"""
from __future__ import annotations

import pytest

from lib_lcm.accordion.xyz_axes import AXES, OFF, ON
from lib_lcm.rules import catalog

PLOT = "x/y/z plot"
AXIS_LABELS = [axis.label for axis in AXES]


def axis_choices(api) -> list[str]:
    info = next(s for s in api.get("/sdapi/v1/script-info") if s["name"] == PLOT and not s["is_img2img"])
    return next(a["choices"] for a in info["args"] if a["label"] == "X type")


CHOICE_AXES = {axis.label for axis in AXES if axis.choices}


def axis(choices: list[str], label: str, values: str) -> list:
    """One axis' three arguments: its type index, its values as text, and as the dropdown's list, which
    the plot reads instead of the text for an axis with a fixed set of values."""
    return [choices.index(label), values, values.split(",") if label in CHOICE_AXES and values else []]


def plot_args(choices: list[str], x_label: str, x_values: str, y_label: str = "Nothing", y_values: str = "") -> list:
    """The plot's run() arguments in ui() order (scripts/xyz_grid.py): X, Y, Z (type index, text, dropdown),
    then legend, lone images, sub-grids, no fixed seeds, vary seeds x/y/z, margin, CSV mode."""
    return [*axis(choices, x_label, x_values), *axis(choices, y_label, y_values), *axis(choices, "Nothing", ""),
            True, True, False, False, False, False, False, 0, False]


def run_plot(api, args: list, **fields) -> dict:
    return api.generate("txt2img", {"prompt": "a cat", "steps": 20, "cfg_scale": 7.0, "script_name": PLOT,
                                    "script_args": args, **fields})


def cell_texts(info: dict) -> list[str]:
    """The cells' infotexts: the grid's comes first when lone images are included."""
    return info["infotexts"][1:]


def test_the_plot_lists_our_axes_in_both_tabs_once(api):
    for info in (s for s in api.get("/sdapi/v1/script-info") if s["name"] == PLOT):
        choices = next(a["choices"] for a in info["args"] if a["label"] == "X type")
        assert [c for c in choices if c.startswith("LCM-LoRA")] == AXIS_LABELS


def test_on_off_compares_lcm_with_the_usual_sampler(api, lora):
    choices = axis_choices(api)
    info = run_plot(api, plot_args(choices, "LCM-LoRA (on/off)", f"{ON},{OFF}"))
    on, off = cell_texts(info)
    assert f"<lora:{lora.name}:1>" in on and "Steps: 4," in on and "Sampler: LCM" in on and "CFG scale: 1.0" in on
    assert "<lora:" not in off and "Steps: 20," in off and "CFG scale: 7.0" in off and "LCM-LoRA" not in off


def test_steps_against_cfg_fill_a_grid_with_the_accordion_off(api, lora):
    choices = axis_choices(api)
    info = run_plot(api, plot_args(choices, "LCM-LoRA steps", "2,6", "LCM-LoRA CFG", "1,1.5"))
    texts = cell_texts(info)
    assert len(texts) == 4
    for text, (steps, cfg) in zip(texts, [(2, "1.0"), (6, "1.0"), (2, "1.5"), (6, "1.5")], strict=True):
        assert f"Steps: {steps}," in text and f"CFG scale: {cfg}" in text and f"<lora:{lora.name}:1>" in text


def test_a_preset_not_published_for_the_model_says_so_in_its_cell(api, lora, model):
    choices = axis_choices(api)
    info = run_plot(api, plot_args(choices, "LCM-LoRA preset", f"{catalog.LCM_LORA},{catalog.DMD2}"))
    lcm, dmd2 = cell_texts(info)
    assert f"<lora:{lora.name}:1>" in lcm
    if catalog.for_architecture(model.architecture, catalog.DMD2) is None:
        assert "LCM-LoRA skipped" in dmd2


def test_a_value_the_accordion_cannot_take_stops_the_plot(api):
    choices = axis_choices(api)
    response = api.client.post("/sdapi/v1/txt2img", json={"prompt": "a cat", "script_name": PLOT, "width": 64,
                                                           "height": 64, "script_args": plot_args(
                                                               choices, "LCM-LoRA preset", "Turbo")})
    assert response.status_code >= 400
    assert "LCM-LoRA preset 'Turbo'" in response.text


@pytest.fixture(autouse=True)
def _needs_the_plot(api):
    if not any(s["name"] == PLOT for s in api.get("/sdapi/v1/script-info")):
        pytest.skip("this WebUI has no X/Y/Z plot script")


def test_in_the_browser_the_plot_offers_our_axes_and_draws_on_against_off(api, lora):
    """Once as a user does it: Script -> X/Y/Z plot, X type "LCM-LoRA (on/off)", its values filled by the
    plot's own button, Generate; the first cell is the LCM one."""
    from browser_support import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, pick, wait_listening
    from e2e_support import WEBUI_URL
    from playwright import sync_api

    if not CHROMIUM:
        pytest.skip(NO_CHROMIUM)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(WEBUI_URL, wait_until="domcontentloaded")
        page.wait_for_selector("#txt2img_prompt textarea", timeout=120_000)
        wait_listening(page)
        page.fill("#txt2img_prompt textarea", "a cat")
        for elem_id in ("txt2img_width", "txt2img_height"):
            number = page.locator(f"#{elem_id} input[type=number]").first
            number.fill("64")
            number.press("Enter")
        pick(page, "script_list", "X/Y/Z plot")
        x_type = "script_txt2img_xyz_plot_x_type"
        page.locator(f"#{x_type} input").first.click()
        offered = page.locator(f"#{x_type} li").all_inner_texts()
        assert [o.strip() for o in offered if o.strip().startswith("LCM-LoRA")] == AXIS_LABELS
        page.locator(f"#{x_type} li", has_text="LCM-LoRA (on/off)").first.click()
        page.click("#xyz_grid_fill_x_tool_button")
        # the values dropdown has no elem_id (scripts/xyz_grid.py): its chosen values are gradio 3's tokens
        page.wait_for_function("document.querySelectorAll('.token').length >= 2", timeout=30_000)
        page.click("#txt2img_generate")
        page.wait_for_function("document.querySelector('#html_info_txt2img').innerText.includes('Steps: ')",
                               timeout=600_000)
        text = page.locator("#html_info_txt2img").first.inner_text()
        browser.close()
    assert f"<lora:{lora.name}:1>" in text and "Sampler: LCM" in text
