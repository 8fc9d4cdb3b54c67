"""javascript/lcm_lora.js in a real browser, on a gradio 3.41.2 page with the WebUI's ids and layout
(browser_page.py), and the LCM-LoRA tab beside it.

The accordion's own Python wiring runs too: on_after_component captures the sampler dropdowns, and
ticking the accordion goes through the `_js` hook and back as gr.update, as in the WebUI. How the
accordion and the tab read (no label past two lines, the file name whole, one primary button before
the list) is measured at 1400 and 1920 px; tests/e2e measures the same on a real WebUI.
"""
from __future__ import annotations

import os

import pytest
from browser_page import build_page, page_scripts
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_CHROMIUM,
    accordion_reading,
    choice,
    free_port,
    number,
    pick,
    squeeze_to_a_third,
    tab_reading,
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


def open_page(browser, webui, forge=False, width=1400):
    app = build_page(webui.classes, forge=forge)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    page = browser.new_page(viewport={"width": width, "height": 1200})
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
        assert status.inner_text().startswith("Missing lcm-lora-sdv1-5.safetensors for SD 1.5.")
        page.locator(f"#{ACC.format(tab='txt2img', item='status')} a.lcm-lora-open-tab").click()
        page.wait_for_selector("#lcm_lora_downloads_header", state="visible", timeout=10_000)
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


# --- how the accordion and the tab read ------------------------------------------------------------------

def open_accordion(page, tab):
    show(page, tab)
    if not page.locator(f"#{ACC.format(tab=tab, item='enabled')} .label-wrap.open").count():
        page.locator(f"#{ACC.format(tab=tab, item='enabled')} .label-wrap").first.click()  # open, not tick
    page.wait_for_selector(f"#{ACC.format(tab=tab, item='enabled')}.input-accordion-open", timeout=10_000)


def show(page, tab):
    page.locator("#tabs .tab-nav button", has_text=tab).first.click()
    page.wait_for_timeout(200)


def picture(page, name):
    """LCM_LORA_STANDIN_SCREENSHOTS=folder: keep pictures of the stand-in page to look at (never docs/)."""
    folder = os.environ.get("LCM_LORA_STANDIN_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def assert_reads_well(reading, file_name, status_lines):
    assert reading["labels"] and all(lines <= 2 for _, lines in reading["labels"]), reading["labels"]
    assert reading["file"] == (file_name, 1), reading  # the whole file name, on one line
    assert all(lines <= status_lines for _, lines in reading["status"]), reading["status"]
    assert reading["hint_open"] is False  # the style-LoRA hint is folded to one line
    assert ("Style LoRAs: weight about 0.8", 1) in reading["labels"]


@pytest.mark.parametrize("width", [1400, 1920])
def test_the_accordion_reads_at_full_width_and_at_a_third(browser, webui, width):
    webui.add_lora()
    page = open_page(browser, webui, width=width)
    try:
        for tab in ("txt2img", "img2img"):
            open_accordion(page, tab)
            reading = accordion_reading(page, tab)
            picture(page, f"accordion-{tab}-{width}")
            # open, it takes the accordions row's whole width, as Hires. fix does when open
            assert reading["width"] == pytest.approx(reading["row"], abs=2)
            assert_reads_well(reading, "lcm-lora-sdv1-5.safetensors", status_lines=1)
            assert all(lines == 1 for _, lines in reading["labels"]), reading["labels"]
            squeeze_to_a_third(page, tab)
            narrow = accordion_reading(page, tab)
            picture(page, f"accordion-{tab}-{width}-third")
            assert narrow["width"] < reading["row"] / 3 + 1
            # the stem never breaks; a third may only wrap the sentence between words
            assert narrow["labels"] and all(lines <= 2 for _, lines in narrow["labels"]), narrow["labels"]
            assert narrow["stem"] == ("lcm-lora-sdv1-5", 1), narrow
        title = page.evaluate("() => document.querySelector('#script_txt2img_lcmlora_steps').title")
        assert "0: use the Sampling steps slider" in title  # the label's details, as a tooltip
        assert page.errors == []
    finally:
        page.close()
        page.app.close()


def test_the_longest_file_name_stays_whole_and_a_missing_one_links_to_the_tab(browser, webui):
    from lib_lcm.rules import catalog

    page = open_page(browser, webui)  # no file at all
    try:
        open_accordion(page, "txt2img")
        reading = accordion_reading(page, "txt2img")
        assert reading["file"] == ("lcm-lora-sdv1-5.safetensors", 1)
        # one line on a real WebUI (tests/e2e); this page has only the browser's fallback fonts, wider
        [(text, lines)] = reading["status"]
        assert text == "Missing lcm-lora-sdv1-5.safetensors for SD 1.5. Get it in the LCM-LoRA tab." and lines <= 2
        pick(page, ACC.format(tab="txt2img", item="preset"), "Hyper-SD")
        longest = catalog.for_architecture(catalog.Architecture.SD1, "Hyper-SD").local_filename
        page.wait_for_function("(name) => document.querySelector('#script_txt2img_lcmlora_status').innerText"
                               ".includes(name)", arg=longest, timeout=10_000)
        assert accordion_reading(page, "txt2img")["file"] == (longest, 1)
        assert page.errors == []
    finally:
        page.close()
        page.app.close()


@pytest.fixture
def fresh_service(monkeypatch, hub):
    """The tab's download service built anew, downloading from the local hub (shared.hf_endpoint)."""
    from modules import shared

    import lib_lcm.webui.downloads as downloads

    monkeypatch.setattr(downloads, "_service", None)
    monkeypatch.setattr(shared, "hf_endpoint", hub.url)
    return hub


@pytest.mark.parametrize("width", [1400, 1920])
def test_the_tab_shows_the_one_primary_action_before_the_list(browser, webui, fresh_service, width):
    page = open_page(browser, webui, width=width)
    try:
        show(page, "LCM-LoRA")
        page.wait_for_selector("#lcm_lora_download_auto", state="visible", timeout=10_000)
        reading = tab_reading(page)
        picture(page, f"tab-{width}")
        first = [b for b in reading["buttons"] if b["above"]]
        assert first == [{"id": "lcm_lora_download_auto", "text": "Download", "above": True, "primary": True}]
        assert not [b for b in reading["buttons"] if b["text"] == "Cancel"]  # nothing runs
        rows = {row["key"]: row for row in reading["rows"]}
        assert rows["sd15"]["tags"] == ["recommended"]  # what the accordion's preset uses for SD 1.5
        assert rows["tcd-sd15"]["tags"] == ["fits SD 1.5"] and rows["hyper-sd15"]["tags"] == ["fits SD 1.5"]
        assert rows["sdxl"]["tags"] == [] and rows["sdxl"]["actions"] == ["Download"]
        header = page.locator("#lcm_lora_downloads_header").first.inner_text().replace("\u00a0", " ")
        assert "It needs LCM-LoRA for SD 1.5: lcm-lora-sdv1-5.safetensors, 135 MB" in header
        assert page.errors == []
    finally:
        page.close()
        page.app.close()


def test_the_primary_button_follows_the_accordion_and_gets_the_file(browser, webui, fresh_service):
    fresh_service.faults["rate"] = 512 * 1024  # slow enough to see it run
    page = open_page(browser, webui)
    try:
        open_accordion(page, "txt2img")
        pick(page, ACC.format(tab="txt2img", item="preset"), "TCD-LoRA")
        show(page, "LCM-LoRA")
        page.wait_for_function("document.querySelector('#lcm_lora_downloads_header').innerText"
                               ".includes('It needs TCD-LoRA for SD 1.5')", timeout=10_000)
        rows = {row["key"]: row for row in tab_reading(page)["rows"]}
        assert rows["tcd-sd15"]["tags"] == ["recommended"] and rows["sd15"]["tags"] == ["fits SD 1.5"]
        page.click("#lcm_lora_download_auto")
        page.wait_for_selector("#lcm_lora_row_tcd_sd15[data-lcm-lora-state='running'] progress", timeout=20_000)
        picture(page, "tab-running")
        assert tab_reading(page)["rows"][3]["actions"] == ["Cancel"]  # the running row offers Cancel only
        fresh_service.faults.clear()
        # no clicking from here on: the page script refreshes until the download is done
        page.wait_for_selector("#lcm_lora_row_tcd_sd15[data-lcm-lora-state='verified']", timeout=60_000)
        page.wait_for_function("document.querySelector('#lcm_lora_downloads_header').innerText"
                               ".includes('Ready: the accordion uses TCD-SD15-LoRA.safetensors')", timeout=10_000)
        assert not page.locator("#lcm_lora_download_auto").is_visible()  # nothing left to do
        assert (webui.lora_dir / "TCD-SD15-LoRA.safetensors").is_file()
        show(page, "txt2img")
        page.click(f"#{ACC.format(tab='txt2img', item='refresh')}")
        page.wait_for_function("document.querySelector('#script_txt2img_lcmlora_status').innerText"
                               ".includes('Uses TCD-SD15-LoRA.safetensors')", timeout=10_000)
        assert page.errors == []
    finally:
        page.close()
        page.app.close()


def test_save_as_renames_only_its_row_and_survives_the_refreshes(browser, webui, fresh_service):
    fresh_service.faults["rate"] = 256 * 1024
    page = open_page(browser, webui)
    try:
        show(page, "LCM-LoRA")
        page.wait_for_selector("#lcm_lora_row_sdxl", timeout=10_000)
        page.click("#lcm_lora_download_sd15")  # a download runs: the table is redrawn every second
        page.wait_for_selector("#lcm_lora_row_sd15[data-lcm-lora-state='running']", timeout=20_000)
        page.click("#lcm_lora_row_sdxl summary")
        page.fill("#lcm_lora_save_as_sdxl", "my-sdxl-lcm")
        page.wait_for_timeout(2500)  # two redraws later, still open and still typed
        picture(page, "tab-save-as")
        assert page.locator("#lcm_lora_save_as_sdxl").input_value() == "my-sdxl-lcm"
        fresh_service.faults.clear()
        page.click("#lcm_lora_download_as_sdxl")
        page.wait_for_function("[...document.querySelectorAll('tr.lcm-lora-row')].some(r => r.innerText"
                               ".includes('Downloaded my-sdxl-lcm.safetensors'))", timeout=60_000)
        assert (webui.lora_dir / "my-sdxl-lcm.safetensors").is_file()
        assert not (webui.lora_dir / "lcm-lora-sdxl.safetensors").exists()
        page.wait_for_selector("#lcm_lora_row_sd15[data-lcm-lora-state='verified']", timeout=60_000)
        assert page.errors == []
    finally:
        page.close()
        page.app.close()
