"""Playwright with Debian's chromium (never downloaded): the binary, its flags, a free port."""
from __future__ import annotations

import os
import shutil
import socket

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
# No background networking, no sandbox as root, no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
NO_CHROMIUM = "no Chromium binary (Debian's chromium or CHROMIUM_PATH)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def number(page, elem_id: str) -> float:
    """A slider's value, from its number box (gradio 3 and 4 both render one)."""
    return float(page.locator(f"#{elem_id} input[type=number]").first.input_value())


def choice(page, elem_id: str) -> str:
    """A dropdown's shown value."""
    return page.locator(f"#{elem_id} input").first.input_value()


def wait_value(page, elem_id: str, expected, kind: str = "number", timeout: int = 30_000) -> None:
    selector = f"#{elem_id} input[type=number]" if kind == "number" else f"#{elem_id} input"
    page.wait_for_function("([sel, want]) => { const e = document.querySelector(sel); if (!e) return false;"
                           " const n = parseFloat(want);"
                           " return isNaN(n) ? e.value === want : parseFloat(e.value) === n; }",
                           arg=[selector, str(expected)], timeout=timeout)


def wait_listening(page, timeout: int = 60_000) -> None:
    """Wait until lcm_lora.js has bound its listeners in both tabs (it does so from onUiLoaded).

    Ticking the accordion before that goes unheard, so a test that ticks first must wait for it.
    """
    for tab in ("txt2img", "img2img"):
        page.wait_for_selector(f'#script_{tab}_lcmlora_enabled-checkbox input[data-lcm-lora-bound="1"]',
                               state="attached", timeout=timeout)


def pick(page, elem_id: str, option: str) -> None:
    """Choose a dropdown option the way a user does: open the list, click the entry."""
    page.locator(f"#{elem_id} input").first.click()
    page.locator(f"#{elem_id} li", has_text=option).first.click()
