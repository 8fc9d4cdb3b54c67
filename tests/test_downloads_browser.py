"""The LCM-LoRA tab in a real browser: `python -m lib_lcm ui` on 127.0.0.1, driven by Playwright with
Debian's chromium (never downloaded). Skipped when playwright or chromium is missing."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, free_port
from helpers import ROOT, tiny_lora_bytes
from hub_server import FakeHub

from lib_lcm.rules import catalog

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = FakeHub(tmp_path_factory.mktemp("hub"))
    for key, layout in (("sd15", "lcm-lora-sdv1-5"), ("sdxl", "lcm-lora-sdxl")):
        entry = catalog.by_key(key)
        server.add(entry.repo_id, entry.repo_file, tiny_lora_bytes(layout))
    yield server
    server.close()


@pytest.fixture(scope="module")
def lora_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("Lora")


@pytest.fixture(scope="module")
def app_url(hub, lora_folder):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    process = subprocess.Popen([sys.executable, "-m", "lib_lcm", "ui", "--dir", str(lora_folder), "--port", str(port),
                                "--endpoint", hub.url], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the standalone tab did not start: " + process.stdout.read().decode()[-2000:])
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def page(app_url):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(app_url)
        page.wait_for_selector("#lcm_lora_download_sd15", timeout=60_000)
        yield page
        browser.close()


def row_text(page, key: str) -> str:
    return page.locator(f"#lcm_lora_row_{key}").first.inner_text()


def test_every_catalog_entry_is_listed(page):
    for key, repo in (("sd15", "lcm-lora-sdv1-5"), ("sdxl", "lcm-lora-sdxl"), ("ssd_1b", "lcm-lora-ssd-1b")):
        text = row_text(page, key)
        assert f"latent-consistency/{repo}" in text and f"{repo}.safetensors" in text and "Not downloaded" in text


def test_click_download_watch_progress_see_it_verified(page, hub, lora_folder):
    hub.faults["rate"] = 1024 * 1024  # the tiny SD 1.5 file takes about 2 s
    page.click("#lcm_lora_download_sd15")
    page.wait_for_selector("#lcm_lora_row_sd15[data-lcm-lora-state='running'] progress", timeout=20_000)
    page.wait_for_function("document.querySelector('#lcm_lora_row_sd15').innerText.includes('MB/s')",
                           timeout=20_000)
    # no clicking from here on: the page's own script keeps refreshing until the download is done
    page.wait_for_selector("#lcm_lora_row_sd15[data-lcm-lora-state='verified']", timeout=60_000)
    assert "Present and verified" in row_text(page, "sd15")
    assert (lora_folder / "lcm-lora-sdv1-5.safetensors").read_bytes() == tiny_lora_bytes("lcm-lora-sdv1-5")
    hub.faults.clear()


def test_cancel_then_resume(page, hub, lora_folder):
    hub.faults["rate"] = 512 * 1024
    page.click("#lcm_lora_download_sdxl")
    page.wait_for_selector("#lcm_lora_row_sdxl[data-lcm-lora-state='running']", timeout=20_000)
    time.sleep(2.5)
    page.click("#lcm_lora_cancel_sdxl")
    page.wait_for_function("document.querySelector('#lcm_lora_row_sdxl').innerText.includes('Cancelled')",
                           timeout=30_000)
    assert "Partly downloaded" in row_text(page, "sdxl")
    assert page.locator("#lcm_lora_download_sdxl").inner_text() == "Resume"
    hub.faults.clear()
    page.click("#lcm_lora_download_sdxl")
    page.wait_for_selector("#lcm_lora_row_sdxl[data-lcm-lora-state='verified']", timeout=60_000)


def test_errors_are_one_clear_sentence(page):
    # the standalone page has no loaded checkpoint: the card says so and offers no button
    assert "No checkpoint is loaded yet" in page.locator("#lcm_lora_downloads_header").first.inner_text()
    assert not page.locator("#lcm_lora_download_auto").is_visible()
    page.click("#lcm_lora_row_ssd_1b summary")
    page.fill("#lcm_lora_save_as_ssd_1b", "../escape")
    page.press("#lcm_lora_save_as_ssd_1b", "Enter")
    page.wait_for_function("document.querySelector('#lcm_lora_downloads_message').innerText"
                           ".includes('not a usable file name')", timeout=20_000)


def test_a_missing_entry_on_the_server(page, lora_folder):
    page.click("#lcm_lora_download_ssd_1b")  # the local hub does not serve the SSD-1B repo
    page.wait_for_function("document.querySelector('#lcm_lora_row_ssd_1b').innerText.includes('was not found')",
                           timeout=30_000)
    assert not (lora_folder / "lcm-lora-ssd-1b.safetensors").exists()
