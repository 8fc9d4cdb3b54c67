"""The LCM-LoRA tab and /lcm-lora/v1 endpoints in a real WebUI.

Downloads need a hub the WebUI can reach: start tests/hub_server.py (it serves the three catalog
repos with tiny LoRAs in the official key layout), start the WebUI with HF_ENDPOINT pointing at it and
HF_HUB_OFFLINE unset, and give the suite the same URL as WEBUI_HF_ENDPOINT, plus WEBUI_LORA_DIR so it
can check and remove the files it downloads (only files that were not there before).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from e2e_support import WEBUI_URL

from lib_lcm.rules import catalog

HUB = os.environ.get("WEBUI_HF_ENDPOINT")
LORA_DIR = os.environ.get("WEBUI_LORA_DIR")
needs_hub = pytest.mark.skipif(not (HUB and LORA_DIR), reason="set WEBUI_HF_ENDPOINT (the hub the WebUI downloads "
                                                             "from) and WEBUI_LORA_DIR to run download tests")


@pytest.fixture
def fresh_name():
    """A file name in the Lora folder that is free now, removed again afterwards (only if we made it)."""
    made = []

    def make(stem: str) -> str:
        path = Path(LORA_DIR) / f"{stem}.safetensors"
        if path.exists():
            pytest.skip(f"{path} exists already; the suite never touches existing files")
        made.append(path)
        return stem

    yield make
    for path in made:
        path.unlink(missing_ok=True)


def test_status_endpoint_lists_the_catalog_and_the_loaded_checkpoint(api, model):
    status = api.get("/lcm-lora/v1/status")
    assert [e["key"] for e in status["entries"]] == [e.key for e in catalog.CATALOG]
    assert status["loaded"]["architecture"] == model.architecture.value
    assert status["lora_dir"]


def test_bad_requests_get_4xx_with_a_message(api):
    for body, code in (({"key": "sd3"}, 400), ({"key": "sd15", "name": "../escape"}, 400), ({}, 400),
                       ({"key": "sd15", "wait": "soon"}, 400)):
        response = api.client.post("/lcm-lora/v1/download", content=json.dumps(body),
                                   headers={"Content-Type": "application/json"})
        assert response.status_code == code and response.json()["message"], response.text


@needs_hub
def test_download_then_generate_with_it_at_once(api, model, fresh_name):
    name = fresh_name("lcm-lora-e2e-download")
    result = api.post("/lcm-lora/v1/download", {"key": "auto", "name": name, "wait": True})
    assert result["ok"] and result["job"]["state"] == "done", result
    assert Path(LORA_DIR, f"{name}.safetensors").exists()
    again = api.post("/lcm-lora/v1/download", {"key": "auto", "name": name, "wait": True})
    assert "already present" in again["message"]
    # no restart, no refresh call: the WebUI's Lora list knows the new file
    assert name in {item["name"] for item in api.get("/sdapi/v1/loras")}
    info = api.generate("txt2img", {"prompt": f"a cat <lora:{name}:1>", "steps": 2, "sampler_name": "LCM",
                                    "cfg_scale": 1})
    assert f"{name}: " in info["infotexts"][0]  # Lora hashes: it was applied
    entry = next(e for e in api.get("/lcm-lora/v1/status")["entries"] if e["matches_loaded_checkpoint"])
    assert entry["job"]["state"] == "done"


def open_browser_page(playwright):
    from test_e2e_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM:
        pytest.skip("no Chromium binary")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(WEBUI_URL)
    page.wait_for_selector("#tab_lcm_lora", state="attached", timeout=120_000)
    return browser, page


def show_downloads_tab(page):
    # A1111's gradio 3 renders the tab headers as buttons; Forge's gradio 4 gives them the role "tab".
    page.locator("#tabs .tab-nav button", has_text="LCM-LoRA").first.click()
    page.wait_for_selector("#lcm_lora_catalog tr.lcm-lora-row", timeout=30_000)


@needs_hub
def test_the_tab_in_the_browser(api, model, fresh_name):
    sync_api = pytest.importorskip("playwright.sync_api")
    name = fresh_name("lcm-lora-e2e-tab")
    with sync_api.sync_playwright() as playwright:
        browser, page = open_browser_page(playwright)
        show_downloads_tab(page)
        assert "latent-consistency/lcm-lora-sdxl" in page.locator("#lcm_lora_row_sdxl").first.inner_text()
        # "Save as…" in a row that fits the loaded checkpoint (the recommended one when it offers it: a file
        # already there under the catalog name may only be verified): that file, under the name typed
        fitting = [entry.key for entry in catalog.CATALOG if entry.architecture is model.architecture]
        rows = [page.locator(f"#lcm_lora_row_{key.replace('-', '_')}").first for key in fitting]
        row = next((r for r in rows if r.locator("details.lcm-lora-save-as").count()), None)
        if row is None:
            pytest.skip(f"every {model.architecture.label} file is there already: no row offers Save as")
        row.locator("summary").click()
        row.locator("details.lcm-lora-save-as input").fill(name)
        row.locator("details.lcm-lora-save-as button").click()
        page.wait_for_function("document.querySelector('#lcm_lora_downloads_message').innerText.includes('Download')",
                               timeout=30_000)
        page.wait_for_function(f"[...document.querySelectorAll('.lcm-lora-row')].some(r => r.innerText.includes("
                               f"'Downloaded {name}.safetensors'))", timeout=120_000)
        browser.close()
    assert Path(LORA_DIR, f"{name}.safetensors").exists()


@needs_hub
def test_the_primary_button_follows_the_accordion_and_gets_its_file(api, model):
    """Pick TCD-LoRA in the accordion; the tab then recommends its file, and its one button gets it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from browser_support import pick, tab_reading, wait_listening

    entry = catalog.for_architecture(model.architecture, catalog.TCD_LORA)
    if entry is None:
        pytest.skip(f"TCD-LoRA does not exist for {model.architecture.label}")
    path = Path(LORA_DIR, entry.local_filename)
    if path.exists():
        pytest.skip(f"{path} exists already; the suite never touches existing files")
    try:
        with sync_api.sync_playwright() as playwright:
            browser, page = open_browser_page(playwright)
            wait_listening(page)
            if not page.locator("#script_txt2img_lcmlora_enabled .label-wrap.open").count():
                page.locator("#script_txt2img_lcmlora_enabled .label-wrap").first.click()
            pick(page, "script_txt2img_lcmlora_preset", catalog.TCD_LORA)
            show_downloads_tab(page)
            page.wait_for_function("(text) => document.querySelector('#lcm_lora_downloads_header').innerText"
                                   ".includes(text)", arg=f"It needs {entry.family} for {model.architecture.label}",
                                   timeout=30_000)
            rows = {row["key"]: row for row in tab_reading(page)["rows"]}
            assert rows[entry.key]["tags"] == ["recommended"]
            page.click("#lcm_lora_download_auto")
            page.wait_for_selector(f"#lcm_lora_row_{entry.key.replace('-', '_')}[data-lcm-lora-state='verified']",
                                   timeout=120_000)
            page.wait_for_function("(name) => document.querySelector('#lcm_lora_downloads_header').innerText"
                                   ".includes('Ready: the accordion uses ' + name)", arg=entry.local_filename,
                                   timeout=30_000)
            assert not page.locator("#lcm_lora_download_auto").is_visible()  # nothing left to do
            browser.close()
        assert path.is_file()
    finally:
        path.unlink(missing_ok=True)
        api.post("/sdapi/v1/refresh-loras")
