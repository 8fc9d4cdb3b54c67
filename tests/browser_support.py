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


# --- how the accordion and the tab read (tests/webui on the stand-in page, tests/e2e on a real WebUI) ---

# The visible labels of a gradio component block (gradio 3 and 4 both mark them "block-info"), the
# accordion's header, and the folded style-LoRA hint.
ACCORDION_LABELS = "[data-testid='block-info'], .label-wrap > span:first-child, summary"


def text_lines(page, selector: str) -> list[tuple[str, int]]:
    """(text, number of lines it takes) for every visible element matching ``selector``."""
    # Inline boxes of one line may start at different heights (a smaller or monospace font): a box
    # starts a new line only below the bottom of the line before.
    return [tuple(pair) for pair in page.evaluate(
        """(selector) => Array.from(document.querySelectorAll(selector)).filter(e => e.offsetParent !== null)
            .map(e => { const range = document.createRange(); range.selectNodeContents(e);
                        const boxes = Array.from(range.getClientRects()).filter(r => r.width > 0)
                                           .sort((a, b) => a.top - b.top);
                        let lines = 0, bottom = -Infinity;
                        for (const r of boxes) {
                            if (r.top >= bottom - 1) { lines += 1; bottom = r.bottom; }
                            else { bottom = Math.max(bottom, r.bottom); }
                        }
                        return [e.innerText.trim(), lines]; })""", selector)]


def accordion_reading(page, tab: str) -> dict:
    """What a reader of the open accordion meets: its labels' line counts, the status line's, and the file
    name the status names (whole, and on how many lines)."""
    accordion = f"#script_{tab}_lcmlora_enabled"
    status = f"#script_{tab}_lcmlora_status .lcm-lora-status"
    files = text_lines(page, f"{status} .lcm-lora-file")
    stems = text_lines(page, f"{status} .lcm-lora-file > span:first-child")
    return {
        "labels": text_lines(page, ", ".join(f"{accordion} {part}" for part in ACCORDION_LABELS.split(", "))),
        "status": text_lines(page, status),
        "file": files[0] if files else None,
        "stem": stems[0] if stems else None,
        "hint_open": page.evaluate(f"() => document.querySelector('{accordion} details.lcm-lora-hint').open"),
        "width": page.evaluate(f"() => document.querySelector('{accordion}').getBoundingClientRect().width"),
        "row": page.evaluate(f"() => document.querySelector('#{tab}_accordions').getBoundingClientRect().width"),
    }


def squeeze_to_a_third(page, tab: str) -> None:
    """Give the open accordion a third of the accordions row, as a WebUI that keeps it beside Hires. fix and
    Refiner does."""
    page.evaluate("(id) => { const e = document.querySelector('#' + id);"
                  " e.style.setProperty('flex', '0 0 calc(33.3% - 0.5em)', 'important');"
                  " e.style.setProperty('min-width', '0', 'important'); }", f"script_{tab}_lcmlora_enabled")
    page.wait_for_timeout(200)


def tab_reading(page) -> dict:
    """What the LCM-LoRA tab shows first: its visible buttons in page order (id, text, above the list?),
    and the rows' marks."""
    return page.evaluate("""() => {
        const table = document.querySelector('table.lcm-lora-catalog');
        const top = table ? table.getBoundingClientRect().top : Infinity;
        const buttons = Array.from(document.querySelectorAll('#tab_lcm_lora button'))
            .filter(b => b.getClientRects().length > 0 && b.innerText.trim() && !b.closest('.tab-nav'))
            .map(b => ({id: b.id, text: b.innerText.trim(), above: b.getBoundingClientRect().bottom <= top,
                        primary: b.classList.contains('primary')}));
        const rows = Array.from(document.querySelectorAll('tr.lcm-lora-row')).map(r => ({
            key: r.getAttribute('data-lcm-lora-key'), state: r.getAttribute('data-lcm-lora-state'),
            tags: Array.from(r.querySelectorAll('.lcm-lora-tag')).map(t => t.innerText.trim()),
            actions: Array.from(r.querySelectorAll('td.lcm-lora-actions button')).map(b => b.innerText.trim())}));
        return {buttons, rows};
    }""")
