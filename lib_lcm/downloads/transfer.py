"""Download an official acceleration LoRA into a Lora folder: verified, resumable, never clobbering.

The HTTP requests are our own, made on huggingface_hub's configured session (``get_session``: its
proxies and adapters) with its headers (``build_hf_headers``: token, user agent) and URLs
(``hf_hub_url``, honouring ``HF_ENDPOINT``), and its ``hf_raise_for_status`` to name the hub's errors.
Doing the requests ourselves means no setting of the hub's is ever changed (other extensions in the
same WebUI download with it too), we choose the chunk size (a fine progress bar, a prompt cancel,
little lost on a dropped connection), and we retry in our own words: one short line per retry,
through ``on_retry``, instead of the hub's log warnings.

The bytes go to ``.lcm-lora/NAME.<sha>.part`` inside the Lora folder (same file system, and a hidden
folder the WebUI's Lora scanner skips), hashed as they arrive. The file takes its final name only
once its size, sha256, safetensors header and architecture are all checked, through a hard link that
fails rather than replace a file that appeared meanwhile.

Steps (numbered as in ``download``):
  1. validate the name and the folder          5. refuse a file that is already there but differs
  2. refuse offline mode                       6. check free disk space
  3. take the per-file lock                    7. transfer, resuming a kept part, retrying
  4. resolve the file on the hub, retrying     8. verify, then publish under the final name
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, TypeVar
from urllib.parse import urljoin, urlparse

from lib_lcm.downloads.errors import (
    DownloadError,
    Where,
    disk_error,
    explain,
    http_status,
    hub_offline,
    is_disk_error,
    is_worth_retrying,
    offline_error,
)
from lib_lcm.lora_files.header import SafetensorsHeaderError, read_header
from lib_lcm.lora_files.work_folder import (
    file_sha256,
    hash_into,
    known_sha256,
    lock_path,
    part_path,
    parts_of,
    record_checksum,
    size_or_zero,
    work_dir,
)
from lib_lcm.rules.architecture import TensorInfo
from lib_lcm.rules.catalog import MB

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_FORBIDDEN_IN_NAME = set('/\\:<>"|?*') | {chr(c) for c in range(32)}
_PROGRESS_EVERY_S = 0.2
_SYNC_EVERY = 32 * 1024 * 1024
CHUNK = 1024 * 1024  # what one read hands over: the unit of progress, of cancelling and of what a cut keeps
_MAX_REDIRECTS = 5

T = TypeVar("T")


class HubEntry(Protocol):
    """What the downloader needs of a catalog entry: an acceleration LoRA, or a tiny decoder."""

    @property
    def repo_id(self) -> str: ...
    @property
    def repo_file(self) -> str: ...
    @property
    def local_name(self) -> str: ...
    @property
    def local_filename(self) -> str: ...
    def content_problem(self, tensors: Mapping[str, TensorInfo]) -> str | None: ...


class Cancelled(Exception):
    pass


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None
    bytes_per_second: float

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


@dataclass(frozen=True)
class RemoteFile:
    sha256: str
    size: int
    location: str
    commit: str | None
    where: Where


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    state: Literal["downloaded", "already present"]
    sha256: str
    size: int
    message: str


@dataclass(frozen=True)
class Retries:
    """How often a failing request is tried again, waiting ``first_wait_s``, then twice as long each time.

    A transfer that received bytes before it broke starts the count afresh: it is making progress.
    """

    attempts: int = 4
    first_wait_s: float = 1.0


ProgressCallback = Callable[[Progress], None]
RetryCallback = Callable[[str], None]


# --- 1. names ------------------------------------------------------------------------------------

def validate_file_name(name: str) -> str:
    """A bare ``.safetensors`` file name that also works as a ``<lora:NAME:…>`` tag."""
    name = name.strip()
    if not name.lower().endswith(".safetensors"):
        name += ".safetensors"
    stem = name[: -len(".safetensors")]
    if (not stem or stem.startswith(".") or ".." in name or any(c in _FORBIDDEN_IN_NAME for c in name)
            or os.path.isabs(name) or len(name) > 200):
        raise DownloadError("invalid_name", f"{name!r} is not a usable file name: use letters, digits, '-', '_' "
                                            "and '.', no folders, not starting with '.'.")
    return name


def validate_repo_id(repo_id: str) -> str:
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise DownloadError("invalid_name", f"{repo_id!r} is not a Hugging Face repository id (owner/name).")
    return repo_id


def target_path(lora_dir: Path, name: str) -> Path:
    path = (lora_dir / validate_file_name(name)).resolve()
    if path.parent != lora_dir.resolve():
        raise DownloadError("invalid_name", f"{name!r} would leave the Lora folder.")
    return path


# --- the whole download ---------------------------------------------------------------------------

def download(entry: HubEntry, lora_dir: str | os.PathLike[str], *, name: str | None = None,
             endpoint: str | None = None, token: str | None = None, revision: str = "main",
             on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
             on_retry: RetryCallback | None = None, retries: Retries = Retries()) -> DownloadResult:
    folder = Path(lora_dir)
    final = target_path(folder, name or entry.local_filename)  # 1
    # Older huggingface_hub releases only read HUGGING_FACE_HUB_TOKEN; read both, whatever the version.
    token = token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None
    validate_repo_id(entry.repo_id)
    _refuse_offline()  # 2
    _ensure_writable_folder(folder)
    retry = _Retrying(retries, on_retry, cancel)
    with _exclusive(final):  # 3
        remote = resolve(entry, endpoint=endpoint, token=token, revision=revision, retry=retry)  # 4
        existing = _existing_file(final, remote, entry)  # 5
        if existing is not None:
            return existing
        part = part_path(final, remote.sha256)
        _drop_stale_parts(final, keep=part)
        _check_free_space(folder, remote.size - size_or_zero(part))  # 6
        digest = _transfer(remote, part, token, on_progress, cancel, retry)  # 7
        return _publish(entry, remote, part, final, digest)  # 8


# --- 2. offline, folder ---------------------------------------------------------------------------

def _refuse_offline() -> None:
    if hub_offline():
        raise offline_error()


def _ensure_writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".lcm-lora-write-test-{os.getpid()}-{threading.get_ident()}"
        probe.write_bytes(b"")
        probe.unlink()
        work_dir(folder).mkdir(exist_ok=True)
    except OSError as error:
        raise disk_error(error, folder) from error


# --- 3. lock --------------------------------------------------------------------------------------

@contextmanager
def _exclusive(final: Path) -> Iterator[None]:
    """One download per target file, across threads and processes (filelock ships with huggingface_hub).

    The hidden lock file stays: deleting it on release would let two later downloads lock two
    different inodes of the same name.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path(final)), timeout=0)
    try:
        lock.acquire()
    except Timeout as error:
        raise DownloadError("busy", f"{final.name} is already being downloaded by another task; "
                                    "wait for it to finish.") from error
    try:
        yield
    finally:
        lock.release()


# --- retrying -------------------------------------------------------------------------------------

class _Retrying:
    """Run a request again after a worth-retrying failure, saying so in one line each time.

    The last failure is raised as it came; a cancel during a wait raises Cancelled.
    """

    def __init__(self, retries: Retries, on_retry: RetryCallback | None, cancel: threading.Event | None) -> None:
        self.retries, self.on_retry, self.cancel = retries, on_retry, cancel

    def run(self, attempt: Callable[[], T], made_progress: Callable[[], bool] = lambda: False) -> T:
        failures = 0
        while True:
            try:
                return attempt()
            except Exception as error:
                failures = 1 if made_progress() else failures + 1
                if failures > self.retries.attempts or not is_worth_retrying(error):
                    raise
                self._wait(error, failures)

    def _wait(self, error: BaseException, failures: int) -> None:
        wait = self.retries.first_wait_s * 2 ** (failures - 1)
        if self.on_retry is not None:
            self.on_retry(f"{_what_failed(error)}; trying again in {wait:g} s "
                          f"(retry {failures} of {self.retries.attempts}).")
        if self.cancel is not None and self.cancel.wait(wait):
            raise Cancelled()
        if self.cancel is None:
            time.sleep(wait)


def _what_failed(error: BaseException) -> str:
    status = http_status(error)
    if status is not None:
        return f"The server answered HTTP {status}"
    return f"The connection failed ({type(error).__name__})"


# --- 4. resolve -----------------------------------------------------------------------------------

def resolve(entry: HubEntry, *, endpoint: str | None = None, token: str | None = None,
            revision: str = "main", retry: _Retrying | None = None) -> RemoteFile:
    """Ask the hub what the file is: its LFS sha256 (the linked etag), size, download location and commit."""
    from huggingface_hub import hf_hub_url

    # huggingface_hub reads HF_ENDPOINT once, at import; read it per call so a changed setting counts.
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
    url = hf_hub_url(entry.repo_id, entry.repo_file, revision=revision, endpoint=endpoint)
    where = Where(entry.repo_id, entry.repo_file, url)
    retry = retry or _Retrying(Retries(), None, None)
    try:
        response = retry.run(lambda: _head(url, token))
    except Cancelled as error:
        raise DownloadError("cancelled", "Cancelled before the download started.") from error
    except Exception as error:
        raise explain(error, where) from error
    headers = response.headers
    etag = (headers.get("X-Linked-Etag") or headers.get("ETag") or "").strip('"').removeprefix("W/").strip('"')
    size = headers.get("X-Linked-Size") or headers.get("Content-Length")
    if not re.fullmatch(r"[0-9a-f]{64}", etag.lower()) or not (size or "").isdigit() or not int(size or 0):
        raise DownloadError("server", f"The server did not give a sha256 checksum and size for {entry.repo_file} "
                                      f"in {entry.repo_id}, so the download could not be verified.")
    location = headers.get("Location")
    location = urljoin(response.url, location) if location else response.url
    return RemoteFile(etag.lower(), int(size or 0), location, headers.get("X-Repo-Commit"), where)


def _head(url: str, token: str | None) -> Any:
    """HEAD the resolve URL, following only same-host redirects (a renamed repo); the CDN's is the location."""
    from huggingface_hub.utils import get_session, hf_raise_for_status

    session = get_session()
    for _ in range(_MAX_REDIRECTS):
        response = session.head(url, headers=_headers(token), allow_redirects=False, timeout=_timeout("etag"))
        hf_raise_for_status(response)
        location = response.headers.get("Location")
        if not (300 <= response.status_code < 400 and location and not urlparse(location).netloc):
            return response
        url = urljoin(url, location)
    return response


def _headers(token: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    # identity: a compressed answer would make sizes and byte ranges mean something else
    return {**build_hf_headers(token=token), "Accept-Encoding": "identity", **(extra or {})}


def _timeout(kind: Literal["etag", "download"]) -> float:
    from huggingface_hub import constants

    name = "HF_HUB_ETAG_TIMEOUT" if kind == "etag" else "HF_HUB_DOWNLOAD_TIMEOUT"
    return float(getattr(constants, name, 10))


# --- 5. an existing file --------------------------------------------------------------------------

def _existing_file(final: Path, remote: RemoteFile, entry: HubEntry) -> DownloadResult | None:
    if not final.exists():
        return None
    try:
        read_header(final)
    except SafetensorsHeaderError as error:
        raise DownloadError("corrupt_present", f"{final.name} already exists but is damaged ({error}); it was left "
                                               "untouched. Delete it, or download under another name.") from error
    digest = known_sha256(final) or file_sha256(final)
    # the tab then shows "verified" or "not the official file"
    record_checksum(final, digest, remote.sha256, entry.repo_id, remote.commit)
    if digest != remote.sha256:
        raise DownloadError("exists_different", f"{final.name} already exists and differs from the official file; "
                                                f"it was left untouched. Download under another name, for example "
                                                f"{final.stem}-official.safetensors.")
    return DownloadResult(final, "already present", digest, final.stat().st_size,
                          f"{final.name} is already present and matches the official file.")


# --- 6. space -------------------------------------------------------------------------------------

def _check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DownloadError("disk_full", f"Not enough free space in {folder}: {needed / MB:.0f} MB needed, "
                                         f"{free / MB:.0f} MB free.")


# --- 7. transfer ----------------------------------------------------------------------------------

class _Hasher:
    """sha256 on its own thread, so hashing overlaps the transfer (hashlib releases the GIL).

    The same thread flushes the written bytes to disk every ``_SYNC_EVERY`` bytes, so the fsync
    that must precede publishing has little left to do.
    """

    def __init__(self, digest: Any, fd: int) -> None:
        self._digest, self._fd, self._unsynced = digest, fd, 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name="lcm-lora-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)
            self._unsynced += len(chunk)
            if self._unsynced >= _SYNC_EVERY:
                self._unsynced = 0
                with contextlib.suppress(OSError):  # best effort; the final fsync is the one that counts
                    os.fdatasync(self._fd) if hasattr(os, "fdatasync") else os.fsync(self._fd)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def finish(self) -> str:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        return str(self._digest.hexdigest())


class _Part:
    """The part file while bytes arrive: appends, hashes, reports progress, honours cancel."""

    def __init__(self, handle: BinaryIO, hasher: _Hasher, total: int, on_progress: ProgressCallback | None,
                 cancel: threading.Event | None) -> None:
        self._handle, self._hasher, self._total = handle, hasher, total
        self._on_progress, self._cancel = on_progress, cancel
        self.done = handle.tell()
        self._started, self._start_bytes, self._reported = time.monotonic(), self.done, 0.0

    def write(self, chunk: bytes) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled()
        self._handle.write(chunk)
        self._hasher.update(chunk)
        self.done += len(chunk)
        self.report()

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._on_progress is None or (not force and now - self._reported < _PROGRESS_EVERY_S):
            return
        self._reported = now
        speed = (self.done - self._start_bytes) / max(now - self._started, 1e-6)
        self._on_progress(Progress(self.done, self._total, speed))


def _transfer(remote: RemoteFile, part: Path, token: str | None, on_progress: ProgressCallback | None,
              cancel: threading.Event | None, retry: _Retrying) -> str:
    """Append the missing bytes to ``part``; return the sha256 of the whole part."""
    if size_or_zero(part) > remote.size:
        part.unlink()
    digest = hashlib.sha256()
    hash_into(part, digest)
    try:
        handle = part.open("ab")
    except OSError as error:
        raise disk_error(error, part.parent) from error
    hasher = _Hasher(digest, handle.fileno())
    try:
        with handle:
            sink = _Part(handle, hasher, remote.size, on_progress, cancel)
            sink.report(force=True)
            _receive(remote, sink, token, retry)
            handle.flush()
            # Make the bytes durable before the file gets its final name; overlaps the hash's tail.
            syncing = threading.Thread(target=os.fsync, args=(handle.fileno(),))
            syncing.start()
            hexdigest = hasher.finish()
            syncing.join()
            sink.report(force=True)
    except Cancelled as error:
        raise DownloadError("cancelled", f"Cancelled; {size_or_zero(part) / MB:.1f} MB kept, download again to "
                                         "resume.") from error
    except Exception as error:
        if is_disk_error(error):
            raise disk_error(error, part.parent) from error  # type: ignore[arg-type]
        raise explain(error, remote.where, received=size_or_zero(part), total=remote.size) from error
    finally:
        hasher.finish()  # also stops the thread after an error; a second sentinel is never read
    return hexdigest


def _receive(remote: RemoteFile, sink: _Part, token: str | None, retry: _Retrying) -> None:
    """GET the bytes from where the part ends, again from where it then ends after each worth-retrying failure."""
    at_start = [sink.done]

    def attempt() -> None:
        at_start[0] = sink.done
        if sink.done < remote.size:
            _get_range(remote, sink, token)

    def made_progress() -> bool:
        return sink.done > at_start[0]

    retry.run(attempt, made_progress)


def _get_range(remote: RemoteFile, sink: _Part, token: str | None) -> None:
    from huggingface_hub.utils import get_session, hf_raise_for_status

    headers = _headers(None if _other_host(remote) else token, {"Range": f"bytes={sink.done}-"})
    with get_session().get(remote.location, headers=headers, stream=True, timeout=_timeout("download")) as response:
        hf_raise_for_status(response)
        # A server that ignores the range sends the whole file: skip what the part already holds.
        skip = sink.done if response.status_code == 200 else 0
        for chunk in response.iter_content(chunk_size=CHUNK):
            if skip:
                kept = min(skip, len(chunk))
                chunk, skip = chunk[kept:], skip - kept
            if chunk:
                sink.write(chunk)


def _other_host(remote: RemoteFile) -> bool:
    """The CDN's signed URL carries its own permission; the hub token is not sent to another host."""
    return urlparse(remote.location).netloc != urlparse(remote.where.url).netloc


def _drop_stale_parts(final: Path, keep: Path) -> None:
    """Parts of an older revision of the same file are ours and useless now."""
    for stale in parts_of(final):
        if stale != keep:
            stale.unlink(missing_ok=True)


# --- 8. verify and publish ------------------------------------------------------------------------

def _publish(entry: HubEntry, remote: RemoteFile, part: Path, final: Path, digest: str) -> DownloadResult:
    size = size_or_zero(part)
    if size != remote.size:
        raise DownloadError("dropped", f"The download stopped at {size / MB:.1f} of {remote.size / MB:.1f} MB; "
                                       "download again to resume.")
    if digest != remote.sha256:
        part.unlink(missing_ok=True)
        raise DownloadError("checksum", f"The downloaded {entry.repo_file} does not match the hub's sha256 checksum; "
                                        "it was discarded. Download again.")
    _check_content(entry, part)
    _link_into_place(part, final)
    record_checksum(final, digest, remote.sha256, entry.repo_id, remote.commit)
    return DownloadResult(final, "downloaded", digest, size, f"Downloaded {final.name} ({size / MB:.1f} MB), "
                                                             "verified against the hub's sha256.")


def _check_content(entry: HubEntry, part: Path) -> None:
    try:
        tensors = read_header(part, check_suffix=False).tensors
    except SafetensorsHeaderError as error:
        part.unlink(missing_ok=True)
        raise DownloadError("corrupt", f"The downloaded file is not a valid safetensors file ({error}); "
                                       "it was discarded.") from error
    problem = entry.content_problem(tensors)
    if problem:
        part.unlink(missing_ok=True)
        raise DownloadError("wrong_architecture", f"{entry.repo_id} served a file that is not {entry.local_name}: "
                                                  f"{problem}; it was discarded.")


def _link_into_place(part: Path, final: Path) -> None:
    """Atomic, and never replaces a file that appeared under the final name meanwhile."""
    try:
        os.link(part, final)
    except FileExistsError as error:
        raise DownloadError("exists_different", f"{final.name} appeared in the folder during the download; it was "
                                                "left untouched and the download is kept for another name.") from error
    except OSError:  # no hard links on this file system (FAT, some network shares)
        if final.exists():
            raise DownloadError("exists_different", f"{final.name} appeared in the folder during the download; "
                                                    "it was left untouched.") from None
        os.replace(part, final)
        return
    part.unlink()
