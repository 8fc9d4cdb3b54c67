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
