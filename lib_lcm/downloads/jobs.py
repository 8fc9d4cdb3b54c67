"""Downloads running in background threads, for the tab and the HTTP API.

The UI never blocks on a transfer (and needs no ``gr.Progress``, which stops A1111 from starting
under ``--no-gradio-queue``): it starts a job and polls ``snapshot()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from lib_lcm.downloads.errors import DownloadError, ErrorKind
from lib_lcm.downloads.transfer import DownloadResult, Progress, download
from lib_lcm.rules.catalog import AccelerationLora

JobStatus = Literal["running", "done", "failed", "cancelled"]
RUNNING: JobStatus = "running"
DONE: JobStatus = "done"
FAILED: JobStatus = "failed"
CANCELLED: JobStatus = "cancelled"


@dataclass(frozen=True)
class JobState:
    key: str
    target: str
    state: JobStatus = RUNNING
    done: int = 0
    total: int | None = None
    bytes_per_second: float = 0.0
    message: str = "Starting…"
    error_kind: ErrorKind | None = None
    path: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def percent(self) -> float | None:
        return 100.0 * self.done / self.total if self.total else None

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, "target": self.target, "state": self.state, "done": self.done, "total": self.total,
                "percent": self.percent, "bytes_per_second": self.bytes_per_second, "message": self.message,
                "error": self.error_kind, "path": self.path}


Downloader = Callable[..., DownloadResult]
Log = Callable[[str], None]


class Jobs:
    """At most one job per catalog key; finished jobs stay visible until the next one starts."""

    def __init__(self, downloader: Downloader = download, after_download: Callable[[Path], None] | None = None,
                 log: Log = print) -> None:
        self._downloader = downloader
        self._after_download = after_download
        self._log = log  # retries and failures, for the console
        self._lock = threading.Lock()
        self._states: dict[str, JobState] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}

    def start(self, entry: AccelerationLora, lora_dir: Path, *, name: str | None = None,
              endpoint: str | None = None, token: str | None = None) -> JobState:
        with self._lock:
            current = self._states.get(entry.key)
            if current is not None and current.state == RUNNING:
                raise DownloadError("busy", f"{current.target} is already being downloaded; wait for it or "
                                            "cancel it.")
            target = name or entry.local_filename
            state = JobState(entry.key, target)
            cancel = threading.Event()
            self._states[entry.key], self._cancels[entry.key] = state, cancel
            thread = threading.Thread(target=self._run, name=f"lcm-lora-download-{entry.key}", daemon=True,
                                      args=(entry, lora_dir, name, endpoint, token, cancel))
            self._threads[entry.key] = thread
            thread.start()
            return state

    def cancel(self, key: str) -> bool:
        with self._lock:
            state = self._states.get(key)
            if state is None or state.state != RUNNING:
                return False
            self._cancels[key].set()
            return True

    def get(self, key: str) -> JobState | None:
        with self._lock:
            return self._states.get(key)

    def snapshot(self) -> dict[str, JobState]:
        with self._lock:
            return dict(self._states)

    def wait(self, key: str, timeout: float | None = None) -> JobState | None:
        thread = self._threads.get(key)
        if thread is not None:
            thread.join(timeout)
        return self.get(key)

    def _update(self, key: str, **changes: object) -> None:
        with self._lock:
            self._states[key] = replace(self._states[key], **changes)  # type: ignore[arg-type]

    def _run(self, entry: AccelerationLora, lora_dir: Path, name: str | None, endpoint: str | None,
             token: str | None, cancel: threading.Event) -> None:
        target = name or entry.local_filename

        def on_progress(progress: Progress) -> None:
            self._update(entry.key, done=progress.done, total=progress.total,
                         bytes_per_second=progress.bytes_per_second, message="Downloading…")

        def on_retry(message: str) -> None:
            self._update(entry.key, message=message)
            self._log(f"{target}: {message}")

        try:
            result = self._downloader(entry, lora_dir, name=name, endpoint=endpoint, token=token,
                                      on_progress=on_progress, cancel=cancel, on_retry=on_retry)
        except DownloadError as error:
            state = CANCELLED if error.kind == "cancelled" else FAILED
            self._update(entry.key, state=state, message=error.message, error_kind=error.kind, finished=time.time())
            self._log(f"{target}: {error.message}")
            return
        except Exception as error:  # never let a thread die silently: the UI must show why
            self._update(entry.key, state=FAILED, message=f"Download failed unexpectedly: {error}",
                         error_kind="unexpected", finished=time.time())
            self._log(f"{target}: download failed unexpectedly: {error!r}")
            return
        if self._after_download is not None:
            try:
                self._after_download(result.path)
            except Exception as error:
                self._log(f"refreshing the Lora list failed: {error}")
        self._update(entry.key, state=DONE, message=result.message, path=str(result.path), done=result.size,
                     total=result.size, finished=time.time())
