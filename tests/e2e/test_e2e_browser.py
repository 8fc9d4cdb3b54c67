"""The accordion in a real browser against the real WebUI: tick the box, Generate, read the infotext; how
the accordion and the LCM-LoRA tab read at 1400 and 1920 px (no label past two lines, the file name whole,
one primary button before the list, no Cancel while nothing runs); the README's pictures.

Needs WEBUI_URL (see conftest.py), the `playwright` package and a Chromium binary (Debian's
`chromium`, or CHROMIUM_PATH); no browser is ever downloaded. Skipped when either is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_CHROMIUM,
    accordion_reading,
    choice,
    number,
    pick,
    squeeze_to_a_third,
    tab_reading,
    wait_listening,
    wait_value,
)
from e2e_support import WEBUI_URL

sync_api = pytest.importorskip("playwright.sync_api")
GENERATION_TIMEOUT_MS = 600_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip(NO_CHROMIUM)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(WEBUI_URL, wait_until="domcontentloaded")
    page.wait_for_selector("#txt2img_prompt textarea", timeout=120_000)
    wait_listening(page)
    yield page
    page.close()


def set_slider(page, elem_id: str, value: int) -> None:
    number = page.locator(f"#{elem_id} input[type=number]").first
    number.fill(str(value))
    number.press("Enter")


def infotext(page, tab: str = "txt2img") -> str:
    return page.locator(f"#html_info_{tab}").first.inner_text()


def generate(page, tab: str = "txt2img") -> str:
    """Click Generate and wait for a new infotext (never edit gradio's DOM: its components stop updating)."""
    before = infotext(page, tab)
    page.click(f"#{tab}_generate")
    page.wait_for_function(
        "([selector, before]) => { const e = document.querySelector(selector);"
        " return e && e.innerText.includes('Steps: ') && e.innerText !== before; }",
        arg=[f"#html_info_{tab}", before], timeout=GENERATION_TIMEOUT_MS)
    return infotext(page, tab)


def test_the_accordion_sits_beside_hires_fix_in_both_tabs(page):
    for tab in ("txt2img", "img2img"):
        accordion = page.locator(f"#script_{tab}_lcmlora_enabled")
        assert accordion.count() == 1
        assert page.locator(f"#{tab}_accordions #script_{tab}_lcmlora_enabled").count() == 1
    assert page.locator("#script_txt2img_lcmlora_enabled-visible-checkbox").is_checked() is False


def test_ticking_the_box_gives_a_4_step_lcm_lora_image_whatever_the_main_sliders_say(page, lora):
    page.fill("#txt2img_prompt textarea", "a cat")
    for elem_id in ("txt2img_width", "txt2img_height"):
        set_slider(page, elem_id, 64)
    page.click("#script_txt2img_lcmlora_enabled-visible-checkbox")
    text = generate(page)
    assert text.startswith(f"a cat <lora:{lora.name}:1>")
    # The main sliders still say 20 steps, DPM++ 2M, CFG 7: the built-in Sampler script wrote those
    # into p in setup(); the extension's process() ran after it and won.
    assert "Steps: 4, Sampler: LCM, Schedule type: SGM Uniform, CFG scale: 1" in text
    assert "Lora hashes" in text and f"LCM-LoRA: {lora.name}" in text


def test_status_line_and_refresh(page, lora):
    page.click("#script_txt2img_lcmlora_enabled .label-wrap")  # open the accordion
    page.click("#script_txt2img_lcmlora_refresh")
    page.wait_for_function("document.querySelector('#script_txt2img_lcmlora_status').innerText.includes('Uses')",
                           timeout=30_000)
    # gradio 3.41 gives an HTML component's elem_id to its wrapper and its body: take the first
    assert f"Uses {lora.name}.safetensors for" in page.locator("#script_txt2img_lcmlora_status").first.inner_text()


def test_pasting_an_infotext_restores_the_accordion_without_doubling_the_tag(page, lora):
    text = (f"a dog <lora:{lora.name}:0.8>\nSteps: 6, Sampler: LCM, Schedule type: SGM Uniform, CFG scale: 1.5, "
            f"Seed: 1, Size: 64x64, LCM-LoRA: {lora.name}, LCM-LoRA weight: 0.8, LCM-LoRA tag: added")
    page.fill("#txt2img_prompt textarea", text)
    page.click("#paste")
    page.wait_for_function("document.querySelector('#txt2img_prompt textarea').value === 'a dog'", timeout=30_000)
    assert page.locator("#script_txt2img_lcmlora_enabled-visible-checkbox").is_checked()
    assert page.locator("#script_txt2img_lcmlora_weight input[type=number]").first.input_value() == "0.8"
    assert page.locator("#script_txt2img_lcmlora_steps input[type=number]").first.input_value() == "6"
    assert page.locator("#script_txt2img_lcmlora_cfg input[type=number]").first.input_value() == "1.5"


def test_settings_section_is_there(page):
    assert page.locator("#setting_lcm_lora_max_steps").count() == 1
    assert page.locator("#setting_lcm_lora_file_sdxl").count() == 1


# --- javascript/lcm_lora.js against the real page ------------------------------------------------

def show_tab(page, tab, ready=None):
    page.locator("#tabs .tab-nav button", has_text=tab).first.click()
    page.wait_for_selector(ready or f"#{tab}_steps", state="visible", timeout=30_000)


def open_accordion(page, tab="txt2img"):
    """Unfold it without ticking it (after a click on its checkbox, the header only folds: inputAccordion.js)."""
    if not page.locator(f"#script_{tab}_lcmlora_enabled .label-wrap.open").count():
        page.locator(f"#script_{tab}_lcmlora_enabled .label-wrap").first.click()


def main_values(page, tab="txt2img"):
    return (number(page, f"{tab}_steps"), number(page, f"{tab}_cfg_scale"), choice(page, f"{tab}_sampling"),
            choice(page, f"{tab}_scheduler"))


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_ticking_moves_the_main_controls_and_unticking_restores_them(page, tab):
    show_tab(page, tab)
    set_slider(page, f"{tab}_steps", 23)
    before = main_values(page, tab)
    assert before[2] != "LCM"
    page.click(f"#script_{tab}_lcmlora_enabled-visible-checkbox")
    wait_value(page, f"{tab}_sampling", "LCM", "choice")
    assert main_values(page, tab) == (4, 1, "LCM", "SGM Uniform")
    page.click(f"#script_{tab}_lcmlora_enabled-visible-checkbox")
    wait_value(page, f"{tab}_sampling", before[2], "choice")
    assert main_values(page, tab) == before


def test_a_slider_outside_the_range_snaps_while_on(page):
    page.click("#script_txt2img_lcmlora_enabled-visible-checkbox")
    wait_value(page, "txt2img_sampling", "LCM", "choice")
    set_slider(page, "txt2img_steps", 30)
    wait_value(page, "txt2img_steps", 8)
    assert number(page, "script_txt2img_lcmlora_steps") == 8
    set_slider(page, "txt2img_cfg_scale", 6)
    wait_value(page, "txt2img_cfg_scale", 2.5)


def test_the_cfg_1_notice(page):
    page.fill("#txt2img_neg_prompt textarea", "blurry")
    page.click("#script_txt2img_lcmlora_enabled-visible-checkbox")
    page.wait_for_function("document.querySelector('#script_txt2img_lcmlora_notice .lcm-lora-notice')"
                           ".innerText.includes('negative prompt has no effect')", timeout=30_000)


def test_a_preset_picked_in_the_page_drives_the_generation(page, api, model, lora):
    from e2e_support import lora_file

    from lib_lcm.rules import catalog

    entry = catalog.for_architecture(model.architecture, "TCD-LoRA")
    if entry is None:
        pytest.skip(f"TCD-LoRA does not exist for {model.architecture.label}")
    with lora_file(api, entry.local_name, model.architecture):
        page.reload()
        page.wait_for_selector("#txt2img_prompt textarea", timeout=120_000)
        wait_listening(page)
        page.fill("#txt2img_prompt textarea", "a cat")
        for elem_id in ("txt2img_width", "txt2img_height"):
            set_slider(page, elem_id, 64)
        page.click("#script_txt2img_lcmlora_enabled-visible-checkbox")
        wait_value(page, "txt2img_sampling", "LCM", "choice")
        open_accordion(page)
        pick(page, "script_txt2img_lcmlora_preset", "TCD-LoRA")
        wait_value(page, "txt2img_sampling", "TCD", "choice")
        page.wait_for_function("document.querySelector('#script_txt2img_lcmlora_status').innerText"
                               ".includes('TCD-')", timeout=30_000)
        text = generate(page)
    assert text.startswith(f"a cat <lora:{entry.local_name}:1>")
    assert "Sampler: TCD" in text and "LCM-LoRA preset: TCD-LoRA" in text and "TCD gamma: 0.3" in text


def test_a_missing_file_links_to_the_tab(page, api, model):
    from lib_lcm.rules import catalog

    entry = catalog.for_architecture(model.architecture, "Hyper-SD")
    if entry is None:
        pytest.skip(f"Hyper-SD does not exist for {model.architecture.label}")
    page.click("#script_txt2img_lcmlora_enabled-visible-checkbox")
    open_accordion(page)
    pick(page, "script_txt2img_lcmlora_preset", "Hyper-SD")
    link = page.locator("#script_txt2img_lcmlora_status a.lcm-lora-open-tab").first
    link.wait_for(timeout=30_000)
    link.click()
    page.wait_for_selector("#lcm_lora_downloads_header", state="visible", timeout=30_000)


# --- how the accordion and the tab read -----------------------------------------------------------------

@pytest.mark.parametrize("width", [1400, 1920])
def test_the_accordion_reads_at_full_width_and_at_a_third(page, lora, width):
    page.set_viewport_size({"width": width, "height": 1000})
    for tab in ("txt2img", "img2img"):
        show_tab(page, tab)
        open_accordion(page, tab)
        page.wait_for_selector(f"#script_{tab}_lcmlora_enabled.input-accordion-open", timeout=10_000)
        page.click(f"#script_{tab}_lcmlora_refresh")
        page.wait_for_function("(id) => document.querySelector(id).innerText.includes('Uses')",
                               arg=f"#script_{tab}_lcmlora_status", timeout=30_000)
        reading = accordion_reading(page, tab)
        # open, it takes the whole accordions row, as Hires. fix does when open
        assert reading["width"] == pytest.approx(reading["row"], abs=2), reading
        assert reading["labels"] and all(lines == 1 for _, lines in reading["labels"]), reading["labels"]
        assert reading["file"] == (f"{lora.name}.safetensors", 1), reading  # whole, on one line
        assert [lines for _, lines in reading["status"]] == [1], reading["status"]
        assert reading["hint_open"] is False  # the style-LoRA hint folded to one line
        squeeze_to_a_third(page, tab)  # as beside Hires. fix and Refiner
        narrow = accordion_reading(page, tab)
        assert narrow["width"] < narrow["row"] / 3 + 1
        assert narrow["labels"] and all(lines <= 2 for _, lines in narrow["labels"]), narrow["labels"]
        assert narrow["stem"] == (lora.name, 1), narrow  # a third may wrap only before ".safetensors"
    assert "0: use the Sampling steps slider" in page.locator("#script_txt2img_lcmlora_steps").first.get_attribute(
        "title")


@pytest.mark.parametrize("width", [1400, 1920])
def test_the_tab_shows_one_primary_action_before_the_list(page, model, moved_away, width):
    from lib_lcm.rules import catalog

    page.set_viewport_size({"width": width, "height": 1000})
    show_tab(page, "LCM-LoRA", "#lcm_lora_downloads_header")
    page.wait_for_selector("#lcm_lora_download_auto", state="visible", timeout=30_000)
    reading = tab_reading(page)
    first = [b for b in reading["buttons"] if b["above"]]
    assert first == [{"id": "lcm_lora_download_auto", "text": "Download", "above": True, "primary": True}], reading
    assert not [b for b in reading["buttons"] if b["text"] == "Cancel"]  # nothing runs
    entry = catalog.for_architecture(model.architecture)
    rows = {row["key"]: row for row in reading["rows"]}
    assert rows[entry.key]["tags"] == ["recommended"] and rows[entry.key]["actions"] == ["Download"]
    for other in catalog.CATALOG:
        if other.architecture is model.architecture and other.key != entry.key:
            assert rows[other.key]["tags"] == [f"fits {model.architecture.label}"]
        elif other.architecture is not model.architecture:
            assert rows[other.key]["tags"] == []
    header = page.locator("#lcm_lora_downloads_header").first.inner_text()
    assert f"It needs {entry.family} for {model.architecture.label}: {entry.local_filename}" in header


# --- the README's pictures ---------------------------------------------------------------------------

SCREENSHOTS = os.environ.get("LCM_LORA_SCREENSHOTS")  # a folder, e.g. docs/images: refresh the README's pictures


@pytest.mark.skipif(not SCREENSHOTS, reason="set LCM_LORA_SCREENSHOTS=docs/images to refresh the README's pictures")
def test_screenshot_of_the_accordion(page, lora):
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.fill("#txt2img_prompt textarea", "a cat in a hat, watercolor")
    page.click("#script_txt2img_lcmlora_enabled-visible-checkbox")
    wait_value(page, "txt2img_sampling", "LCM", "choice")
    open_accordion(page)
    page.wait_for_function("document.querySelector('#script_txt2img_lcmlora_status').innerText.includes('Uses')",
                           timeout=30_000)
    page.locator("#txt2img_settings").first.screenshot(path=str(folder / "accordion.png"))
    assert (folder / "accordion.png").stat().st_size > 10_000


@pytest.mark.skipif(not SCREENSHOTS, reason="set LCM_LORA_SCREENSHOTS=docs/images to refresh the README's pictures")
def test_screenshot_of_the_tab(page, moved_away):
    """The tab as a new user meets it: the file the checkpoint needs is not there yet."""
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    show_tab(page, "LCM-LoRA", "#lcm_lora_downloads_header")
    page.wait_for_selector("#lcm_lora_download_auto", state="visible", timeout=30_000)
    # the Lora folder is this machine's path: painted over in the picture
    page.locator("#tab_lcm_lora").first.screenshot(path=str(folder / "downloads-tab.png"), mask_color="#e5e7eb",
                                                   mask=[page.locator("#lcm_lora_folder code")])
    assert (folder / "downloads-tab.png").stat().st_size > 10_000
