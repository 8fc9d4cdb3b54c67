"""javascript/lcm_lora.js in a real browser, on a gradio 3.41.2 page with the WebUI's ids (browser_page.py).

The accordion's own Python wiring runs too: on_after_component captures the sampler dropdowns, and
ticking the accordion goes through the `_js` hook and back as gr.update, as in the WebUI.
"""
from __future__ import annotations

import pytest
from browser_page import build_page, page_scripts
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_CHROMIUM,
    choice,
    free_port,
    number,
    pick,
    wait_listening,
    wait_value,
)

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM), pytest.mark.slow]
ACC = "script_{tab}_lcmlora_{item}"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, webui, forge=False):
    app = build_page(webui.classes, forge=forge)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    # Uncaught exceptions, and what lcm_lora.js caught and logged (offline, gradio's own web-font
    # requests fail too; those are not ours).
    page.on("console", lambda m: page.errors.append(m.text) if "[LCM-LoRA]" in m.text else None)
    page.add_init_script(page_scripts())
    page.goto(f"http://127.0.0.1:{port}")
    page.wait_for_selector("#script_txt2img_lcmlora_hint .lcm-lora-presets", state="attached", timeout=60_000)
    wait_listening(page)
    page.app = app
    return page


@pytest.fixture
def page(browser, webui):
    webui.add_lora()
    page = open_page(browser, webui)
    yield page
    assert page.errors == []
    page.close()
    page.app.close()


def set_number(page, elem_id, value):
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


def tick(page, tab, on):
    page.evaluate("([id, on]) => inputAccordionChecked(id, on)", [ACC.format(tab=tab, item="enabled"), on])


def pick_preset(page, tab, preset):
    if not page.locator(f"#{ACC.format(tab=tab, item='preset')} input").first.is_visible():
        page.locator(f"#{ACC.format(tab=tab, item='enabled')} .label-wrap").first.click()  # open, not tick
    pick(page, ACC.format(tab=tab, item="preset"), preset)


def test_ticking_moves_everything_to_the_preset_and_unticking_restores_it(page):
    set_number(page, "txt2img_steps", 25)
    set_number(page, "txt2img_cfg_scale", 6.5)
    tick(page, "txt2img", True)
    wait_value(page, "txt2img_sampling", "LCM", "choice")
    assert (number(page, "txt2img_steps"), number(page, "txt2img_cfg_scale")) == (4, 1)
    assert choice(page, "txt2img_scheduler") == "SGM Uniform"
    tick(page, "txt2img", False)
    wait_value(page, "txt2img_sampling", "DPM++ 2M", "choice")
    assert (number(page, "txt2img_steps"), number(page, "txt2img_cfg_scale")) == (25, 6.5)
    assert choice(page, "txt2img_scheduler") == "Automatic"


def test_while_on_a_slider_moved_out_of_range_shows_what_will_run(page):
    tick(page, "txt2img", True)
    wait_value(page, "txt2img_sampling", "LCM", "choice")
    set_number(page, "txt2img_steps", 30)
    wait_value(page, "txt2img_steps", 8)
    assert number(page, ACC.format(tab="txt2img", item="steps")) == 8  # the value the generation uses
    set_number(page, "txt2img_cfg_scale", 5)
    wait_value(page, "txt2img_cfg_scale", 2.5)
    set_number(page, "txt2img_steps", 6)  # inside the range: kept, and the accordion follows
    wait_value(page, ACC.format(tab="txt2img", item="steps"), 6)
    tick(page, "txt2img", False)
    wait_value(page, "txt2img_steps", 20)
    set_number(page, "txt2img_steps", 30)  # off: nothing is clamped
    page.wait_for_timeout(500)
    assert number(page, "txt2img_steps") == 30


def test_presets_bring_their_own_sampler_and_range(page):
    tick(page, "txt2img", True)
    wait_value(page, "txt2img_sampling", "LCM", "choice")
    pick_preset(page, "txt2img", "DMD2")  # fixed at 4 steps, CFG 1, LCM on explicit timesteps
    set_number(page, "txt2img_steps", 7)
    wait_value(page, "txt2img_steps", 4)
    pick_preset(page, "txt2img", "SDXL-Lightning")
    wait_value(page, "txt2img_sampling", "Euler", "choice")
    assert choice(page, "txt2img_scheduler") == "SGM Uniform"
    set_number(page, "txt2img_cfg_scale", 2)
    wait_value(page, "txt2img_cfg_scale", 1.5)
    pick_preset(page, "txt2img", "TCD-LoRA")
    wait_value(page, "txt2img_sampling", "TCD", "choice")
    tick(page, "txt2img", False)
    wait_value(page, "txt2img_sampling", "DPM++ 2M", "choice")
    assert (number(page, "txt2img_steps"), number(page, "txt2img_cfg_scale")) == (20, 7)


def test_a_preset_picked_while_off_only_fits_the_accordions_own_values(page):
    page.locator(f"#{ACC.format(tab='txt2img', item='enabled')} .label-wrap").first.click()
    set_number(page, ACC.format(tab="txt2img", item="steps"), 8)
    pick_preset(page, "txt2img", "DMD2")
    wait_value(page, ACC.format(tab="txt2img", item="steps"), 4)
    page.wait_for_timeout(500)
    assert (number(page, "txt2img_steps"), choice(page, "txt2img_sampling")) == (20, "DPM++ 2M")
    tick(page, "txt2img", True)
    wait_value(page, "txt2img_sampling", "LCM", "choice")
    assert number(page, "txt2img_steps") == 4


def test_hires_sliders_follow_when_hires_fix_is_on(page):
    page.evaluate("() => inputAccordionChecked('txt2img_hr', true)")
    set_number(page, "txt2img_hires_steps", 20)
    tick(page, "txt2img", True)
    wait_value(page, "txt2img_hires_steps", 8)
    tick(page, "txt2img", False)
    wait_value(page, "txt2img_hires_steps", 20)


def test_the_tabs_are_independent(page):
    tick(page, "img2img", True)
    wait_value(page, "img2img_sampling", "LCM", "choice")
    assert number(page, "img2img_steps") == 4
    assert (number(page, "txt2img_steps"), choice(page, "txt2img_sampling")) == (20, "DPM++ 2M")
    # gradio 3 gives an HTML component's id to its block and to the prose inside it; any other
    # repeated id would be ours.
    repeated = page.evaluate("""() => Array.from(document.querySelectorAll('[id*=lcmlora]')).filter(e =>
        document.querySelectorAll('#' + CSS.escape(e.id)).length > 1 && !e.parentElement.closest('#' + CSS.escape(e.id))
        && !e.querySelector('#' + CSS.escape(e.id))).map(e => e.id)""")
    assert repeated == []
    ids = page.evaluate("() => Array.from(document.querySelectorAll('[id*=lcmlora]')).map(e => e.id)")
    assert any(i.startswith("script_img2img_") for i in ids) and any(i.startswith("script_txt2img_") for i in ids)


def test_notice_when_cfg_1_makes_the_negative_prompt_useless(page):
    notice = page.locator(f"#{ACC.format(tab='txt2img', item='notice')} .lcm-lora-notice")
    page.fill("#txt2img_neg_prompt textarea", "blurry")
    tick(page, "txt2img", True)
    wait_value(page, "txt2img_cfg_scale", 1)
    page.wait_for_function(f"document.querySelector('#{ACC.format(tab='txt2img', item='notice')} .lcm-lora-notice')"
                           ".innerText.includes('negative prompt has no effect')", timeout=10_000)
    assert notice.is_visible()
    set_number(page, "txt2img_cfg_scale", 2)
    page.wait_for_function(f"document.querySelector('#{ACC.format(tab='txt2img', item='notice')} .lcm-lora-notice')"
                           ".innerText === ''", timeout=10_000)
    set_number(page, "txt2img_cfg_scale", 1)
    page.fill("#txt2img_neg_prompt textarea", "")
    page.wait_for_timeout(300)
    assert notice.inner_text() == ""


def test_a_missing_lora_links_to_the_downloads_tab(browser, webui):
    page = open_page(browser, webui)  # no LoRA file in the folder
    try:
        page.locator(f"#{ACC.format(tab='txt2img', item='enabled')} .label-wrap").first.click()
        status = page.locator(f"#{ACC.format(tab='txt2img', item='status')} .lcm-lora-status")
        assert "Missing" in status.inner_text()
        page.locator(f"#{ACC.format(tab='txt2img', item='status')} a.lcm-lora-open-tab").click()
        page.wait_for_selector("#lcm_lora_tab_content", state="visible", timeout=10_000)
        assert page.errors == []
    finally:
        page.close()
        page.app.close()


def test_forge_hires_cfg_is_clamped_and_restored(browser, webui):
    webui.add_lora()
    page = open_page(browser, webui, forge=True)
    try:
        page.evaluate("() => inputAccordionChecked('txt2img_hr', true)")
        tick(page, "txt2img", True)
        wait_value(page, "txt2img_hr_cfg", 2.5)
        tick(page, "txt2img", False)
        wait_value(page, "txt2img_hr_cfg", 7)
        assert page.errors == []
    finally:
        page.close()
        page.app.close()


def test_missing_elements_never_throw(page):
    assert page.evaluate("() => lcmLoraPreset('nosuchtab', 'LCM-LoRA')") == ["LCM-LoRA"]
    assert page.evaluate("() => lcmLoraPreset('txt2img', 'Turbo')") == ["Turbo"]
    result = page.evaluate("() => lcmLoraWanted('nosuchtab', true, 'LCM-LoRA', 'Euler', 'Karras', 'Euler', 'Karras')")
    assert result == [True, "LCM-LoRA", "Euler", "Karras"]


def test_fast_toggling_still_ends_where_the_user_left_it(page):
    # gradio 3 drops a click that arrives while the same event still runs; the page script retries.
    for on in (True, False, True, False, True):
        tick(page, "txt2img", on)
    wait_value(page, "txt2img_sampling", "LCM", "choice")
    tick(page, "txt2img", False)
    wait_value(page, "txt2img_sampling", "DPM++ 2M", "choice")
    assert (number(page, "txt2img_steps"), number(page, "txt2img_cfg_scale")) == (20, 7)
