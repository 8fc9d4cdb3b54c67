"""The accordion in a real browser against the real WebUI: tick the box, Generate, read the infotext.

Needs WEBUI_URL (see conftest.py), the `playwright` package and a Chromium binary (Debian's
`chromium`, or CHROMIUM_PATH); no browser is ever downloaded. Skipped when either is missing.
"""
from __future__ import annotations

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM
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
