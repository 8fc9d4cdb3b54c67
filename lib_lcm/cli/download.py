"""``python -m lib_lcm download`` and ``python -m lib_lcm ui``: the downloader without the WebUI."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from lib_lcm.downloads.errors import DownloadError
from lib_lcm.downloads.service import DownloadService
from lib_lcm.downloads.transfer import Progress, ProgressCallback, RetryCallback, download, validate_file_name
from lib_lcm.rules import catalog
from lib_lcm.rules.catalog import MB

ALL = "all"


def run_downloads(keys: Sequence[str], folder: Path, name: str | None, endpoint: str | None,
                  out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        entries = _entries(keys)
        if name is not None:
            if len(entries) != 1:
                raise DownloadError("bad_request", "--name works with one key only.")
            validate_file_name(name)
    except DownloadError as error:
        print(f"error: {error.message}", file=err)
        return 2
    failures = 0
    for entry in entries:
        cancel = threading.Event()
        try:
            result = download(entry, folder, name=name, endpoint=endpoint, on_progress=progress_bar(entry.key, err),
                              on_retry=retry_line(entry.key, err), cancel=cancel)
        except DownloadError as error:
            print(f"\r{entry.key}: {error.message}", file=err)
            failures += 1
            continue
        except KeyboardInterrupt:
            print(f"\r{entry.key}: interrupted; what was received is kept and the next run resumes.", file=err)
            return 130
        print(f"\r{entry.key}: {result.message} -> {result.path}", file=out)
    return 1 if failures else 0


def _entries(keys: Sequence[str]) -> list[catalog.AccelerationLora]:
    if any(k.lower() == ALL for k in keys):
        return list(catalog.CATALOG)
    entries = []
    for key in keys:
        entry = catalog.by_key(key)
        if entry is None:
            raise DownloadError("invalid_key", f"{key!r} is not in the catalog; choose from "
                                               f"{', '.join(catalog.all_keys())} or {ALL}.")
        entries.append(entry)
    return entries


def progress_bar(key: str, err: TextIO = sys.stderr) -> ProgressCallback:
    def show(progress: Progress) -> None:
        fraction = progress.fraction or 0.0
        filled = int(fraction * 30)
        err.write(f"\r{key}: [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}% "
                  f"{progress.done / MB:7.1f} MB {progress.bytes_per_second / MB:6.1f} MB/s")
        err.flush()

    return show


def retry_line(key: str, err: TextIO = sys.stderr) -> RetryCallback:
    """A retry gets a line of its own; the progress bar then continues below it."""
    def show(message: str) -> None:
        err.write(f"\r{key}: {message}\n")
        err.flush()

    return show


def serve_ui(folder: Path, port: int, endpoint: str | None) -> int:
    from lib_lcm.downloads.tab import standalone_page

    page = standalone_page(DownloadService(lora_dir=lambda: folder, endpoint=lambda: endpoint))
    page.launch(server_name="127.0.0.1", server_port=port, show_api=False)  # never bind beyond this machine
    return 0
