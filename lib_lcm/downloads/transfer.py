"""Download an official acceleration LoRA into a Lora folder: verified, resumable, never clobbering.

huggingface_hub does the HTTP work: ``get_hf_file_metadata`` resolves the file (sha256 etag, size,
CDN location, commit) and ``file_download.http_get`` streams it, honouring ``HF_ENDPOINT``,
``HF_TOKEN``, ``HF_HUB_OFFLINE`` and its own retries. We hand ``http_get`` our own file object, so
that we (1) write to ``.lcm-lora/NAME.<etag>.part`` inside the Lora folder (same file system, and a
hidden folder the WebUI's Lora scanner skips), (2) hash and count bytes as they arrive, and (3) can
cancel between chunks.
The file takes its final name only once its size, sha256, safetensors header and architecture
are all checked, through a hard link that fails rather than replace a file that appeared meanwhile.

Steps (numbered as in ``download``):
  1. validate the name and the folder          5. refuse a file that is already there but differs
  2. refuse offline mode                       6. check free disk space
  3. take the per-file lock                    7. transfer, resuming a kept part
  4. resolve the file on the hub               8. verify, then publish under the final name
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lib_lcm.lora_files.header import SafetensorsHeaderError, read_header
from lib_lcm.rules.catalog import AccelerationLora

WORK_DIR = ".lcm-lora"  # inside the Lora folder: parts, locks and the checksum table, all hidden
CHECKSUMS_FILE = "checksums.json"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_FORBIDDEN_IN_NAME = set('/\\:<>"|?*') | {chr(c) for c in range(32)}
_PROGRESS_EVERY_S = 0.2
_HASH_BLOCK = 8 * 1024 * 1024
_SYNC_EVERY = 32 * 1024 * 1024
MB = 1_000_000  # for messages: decimal megabytes, as the hub shows sizes


class DownloadError(Exception):
    """One sentence for the user in ``message``; ``kind`` for programs (HTTP status mapping, tests)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


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


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    state: str  # "downloaded" or "already present"
    sha256: str
    size: int
    message: str


ProgressCallback = Callable[[Progress], None]


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


def work_dir(folder: Path) -> Path:
    return folder / WORK_DIR


def part_path(final: Path, sha256: str) -> Path:
    return work_dir(final.parent) / f"{final.name}.{sha256[:16]}.part"


def lock_path(final: Path) -> Path:
    return work_dir(final.parent) / f"{final.name}.lock"


# --- the whole download ---------------------------------------------------------------------------

def download(entry: AccelerationLora, lora_dir: str | os.PathLike[str], *, name: str | None = None,
             endpoint: str | None = None, token: str | None = None, revision: str = "main",
             on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> DownloadResult:
    folder = Path(lora_dir)
    final = target_path(folder, name or entry.local_filename)  # 1
    # Older huggingface_hub releases only read HUGGING_FACE_HUB_TOKEN; read both, whatever the version.
    token = token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None
    validate_repo_id(entry.repo_id)
    _refuse_offline()  # 2
    _ensure_writable_folder(folder)
    with _exclusive(final):  # 3
        remote = resolve(entry, endpoint=endpoint, token=token, revision=revision)  # 4
        existing = _existing_file(final, remote, entry)  # 5
        if existing is not None:
            return existing
        part = part_path(final, remote.sha256)
        _drop_stale_parts(final, keep=part)
        _check_free_space(folder, remote.size - _size_or_zero(part))  # 6
        digest = _transfer(entry, remote, part, token, on_progress, cancel)  # 7
        return _publish(entry, remote, part, final, digest)  # 8


# --- 2. offline, folder ---------------------------------------------------------------------------

def _refuse_offline() -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        raise DownloadError("offline", "Offline mode is on (HF_HUB_OFFLINE); unset it to download.")


def _ensure_writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".lcm-lora-write-test-{os.getpid()}-{threading.get_ident()}"
        probe.write_bytes(b"")
        probe.unlink()
        work_dir(folder).mkdir(exist_ok=True)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise DownloadError("read_only", f"The Lora folder {folder} is not writable ({error.strerror}); "
                                             "fix its permissions or choose another folder.") from error
        raise _disk_error(error, folder) from error


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


# --- 4. resolve -----------------------------------------------------------------------------------

def resolve(entry: AccelerationLora, *, endpoint: str | None = None, token: str | None = None,
            revision: str = "main") -> RemoteFile:
    """Ask the hub what the file is: its LFS sha256 (the etag), size, download location and commit."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    # huggingface_hub reads HF_ENDPOINT once, at import; read it per call so a changed setting counts.
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
    url = hf_hub_url(entry.repo_id, entry.repo_file, revision=revision, endpoint=endpoint)
    try:
        metadata = get_hf_file_metadata(url, token=token)
    except Exception as error:
        raise explain(error, entry, url) from error
    etag = (metadata.etag or "").strip('"').lower()
    if not re.fullmatch(r"[0-9a-f]{64}", etag) or not metadata.size:
        raise DownloadError("server", f"The server did not give a sha256 checksum and size for {entry.repo_file} "
                                      f"in {entry.repo_id}, so the download could not be verified.")
    return RemoteFile(etag, int(metadata.size), metadata.location or url, metadata.commit_hash)


# --- 5. an existing file --------------------------------------------------------------------------

def _existing_file(final: Path, remote: RemoteFile, entry: AccelerationLora) -> DownloadResult | None:
    if not final.exists():
        return None
    try:
        read_header(final)
    except SafetensorsHeaderError as error:
        raise DownloadError("corrupt_present", f"{final.name} already exists but is damaged ({error}); it was left "
                                               "untouched. Delete it, or download under another name.") from error
    digest = known_sha256(final) or file_sha256(final)
    record_checksum(final, digest, remote, entry)  # the tab then shows "verified" or "not the official file"
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


_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EFBIG}


def _disk_error(error: OSError, folder: Path) -> DownloadError:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError("disk_full", f"The disk holding {folder} is full; free some space and download "
                                          "again (what was received is kept and resumes).")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DownloadError("read_only", f"The Lora folder {folder} is not writable ({error.strerror}).")
    return DownloadError("io", f"Writing into {folder} failed: {error.strerror or error}.")


# --- 7. transfer ----------------------------------------------------------------------------------

class _Hasher:
    """sha256 on its own thread, so hashing overlaps the transfer (hashlib releases the GIL).

    The same thread flushes the written bytes to disk every ``_SYNC_EVERY`` bytes, so the fsync
    that must precede publishing has little left to do.
    """

    def __init__(self, digest: Any, fd: int | None = None) -> None:
        self._digest, self._fd, self._unsynced = digest, fd, 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name="lcm-lora-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)
            self._unsynced += len(chunk)
            if self._fd is not None and self._unsynced >= _SYNC_EVERY:
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


class _Sink:
    """The file object given to http_get: appends, hashes, reports progress, honours cancel."""

    def __init__(self, handle: BinaryIO, hasher: _Hasher, total: int, on_progress: ProgressCallback | None,
                 cancel: threading.Event | None) -> None:
        self._handle, self._hasher, self._total = handle, hasher, total
        self._on_progress, self._cancel = on_progress, cancel
        self.done = handle.tell()
        self.name = handle.name  # read by http_get only for hf_transfer, which then writes the file itself
        self._started, self._start_bytes, self._reported = time.monotonic(), self.done, 0.0

    def write(self, chunk: bytes) -> int:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled()
        self._handle.write(chunk)
        self._hasher.update(chunk)
        self.done += len(chunk)
        self.report()
        return len(chunk)

    def tell(self) -> int:  # http_get compares it with the expected size at the end
        return self.done

    def flush(self) -> None:
        self._handle.flush()

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._on_progress is None or (not force and now - self._reported < _PROGRESS_EVERY_S):
            return
        self._reported = now
        speed = (self.done - self._start_bytes) / max(now - self._started, 1e-6)
        self._on_progress(Progress(self.done, self._total, speed))


def _transfer(entry: AccelerationLora, remote: RemoteFile, part: Path, token: str | None,
              on_progress: ProgressCallback | None, cancel: threading.Event | None) -> str:
    """Append the missing bytes to ``part``; return the sha256 of the whole part."""
    if _size_or_zero(part) > remote.size:
        part.unlink()
    digest = hashlib.sha256()
    _hash_existing(part, digest)
    try:
        handle = part.open("ab")
    except OSError as error:
        raise _disk_error(error, part.parent) from error
    hasher = _Hasher(digest, handle.fileno())
    try:
        with handle:
            sink = _Sink(handle, hasher, remote.size, on_progress, cancel)
            _stream(remote, sink, token)
            handle.flush()
            # Make the bytes durable before the file gets its final name; overlaps the hash's tail.
            syncing = threading.Thread(target=os.fsync, args=(handle.fileno(),))
            syncing.start()
            hexdigest = hasher.finish()
            syncing.join()
            sink.report(force=True)
    except Cancelled as error:
        raise DownloadError("cancelled", f"Cancelled; {_size_or_zero(part) / MB:.1f} MB kept, download again to "
                                         "resume.") from error
    except Exception as error:
        # requests' exceptions are OSErrors too; only an errno from the file system means the disk.
        if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
            raise _disk_error(error, part.parent) from error
        raise explain(error, entry, remote.location, received=_size_or_zero(part), total=remote.size) from error
    finally:
        hasher.finish()  # also stops the thread after an error; a second sentinel is never read
    if sink.done != _size_or_zero(part):  # bytes arrived around write(): hf_transfer writes the file by name
        return file_sha256(part)
    return hexdigest


def _stream(remote: RemoteFile, sink: _Sink, token: str | None) -> None:
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    sink.report(force=True)
    if sink.done < remote.size:
        with _small_chunks():
            http_get(remote.location, sink, resume_size=sink.done,  # type: ignore[arg-type]
                     headers=build_hf_headers(token=token), expected_size=remote.size)


_chunk_lock = threading.Lock()
_chunk_users = 0
_chunk_saved: dict[Any, int] = {}
_CHUNK = 1024 * 1024


@contextmanager
def _small_chunks() -> Iterator[None]:
    """Read the body in 1 MiB chunks instead of the hub's 10 MiB while any of our downloads runs.

    http_get hands over (and we keep, and can cancel after) only whole chunks, so smaller ones
    mean a finer progress bar, a prompt cancel and less lost on a dropped connection. Where the
    size lives differs by version: ``constants.DOWNLOAD_CHUNK_SIZE`` read per call (0.26+), a copy
    imported into ``file_download`` (0.21-0.25), or a literal (older: nothing to change). A
    counter restores the values after the last concurrent user.
    """
    global _chunk_users
    from huggingface_hub import constants, file_download

    holders = [m for m in (constants, file_download) if isinstance(getattr(m, "DOWNLOAD_CHUNK_SIZE", None), int)]
    with _chunk_lock:
        if _chunk_users == 0:
            for module in holders:
                _chunk_saved[module] = module.DOWNLOAD_CHUNK_SIZE
                module.DOWNLOAD_CHUNK_SIZE = min(_CHUNK, module.DOWNLOAD_CHUNK_SIZE)
        _chunk_users += 1
    try:
        yield
    finally:
        with _chunk_lock:
            _chunk_users -= 1
            if _chunk_users == 0:
                for module, size in _chunk_saved.items():
                    module.DOWNLOAD_CHUNK_SIZE = size
                _chunk_saved.clear()


def _hash_existing(part: Path, digest: Any) -> None:
    """Hash the bytes the file has now (exactly its stat size: a special file could stream forever)."""
    remaining = _size_or_zero(part)
    if not remaining:
        return
    with part.open("rb") as handle:
        while remaining > 0 and (block := handle.read(min(_HASH_BLOCK, remaining))):
            digest.update(block)
            remaining -= len(block)


def _drop_stale_parts(final: Path, keep: Path) -> None:
    """Parts of an older revision of the same file are ours and useless now."""
    for stale in work_dir(final.parent).glob(f"{glob.escape(final.name)}.*.part"):
        if stale != keep:
            stale.unlink(missing_ok=True)


# --- 8. verify and publish ------------------------------------------------------------------------

def _publish(entry: AccelerationLora, remote: RemoteFile, part: Path, final: Path, digest: str) -> DownloadResult:
    size = _size_or_zero(part)
    if size != remote.size:
        raise DownloadError("dropped", f"The download stopped at {size / MB:.1f} of {remote.size / MB:.1f} MB; "
                                       "download again to resume.")
    if digest != remote.sha256:
        part.unlink(missing_ok=True)
        raise DownloadError("checksum", f"The downloaded {entry.repo_file} does not match the hub's sha256 checksum; "
                                        "it was discarded. Download again.")
    _check_content(entry, part)
    _link_into_place(part, final)
    record_checksum(final, digest, remote, entry)
    return DownloadResult(final, "downloaded", digest, size, f"Downloaded {final.name} ({size / MB:.1f} MB), "
                                                             "verified against the hub's sha256.")


def _check_content(entry: AccelerationLora, part: Path) -> None:
    try:
        detection = read_header(part, check_suffix=False).detect()
    except SafetensorsHeaderError as error:
        part.unlink(missing_ok=True)
        raise DownloadError("corrupt", f"The downloaded file is not a valid safetensors file ({error}); "
                                       "it was discarded.") from error
    if detection.kind != "lora" or detection.architecture is not entry.architecture:
        part.unlink(missing_ok=True)
        raise DownloadError("wrong_architecture", f"{entry.repo_id} served a {detection.architecture.label} "
                                                  f"{detection.kind} file, not a {entry.architecture.label} LoRA; "
                                                  "it was discarded.")


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


# --- checksums of files we verified -----------------------------------------------------------------

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_existing(path, digest)
    return digest.hexdigest()


def known_sha256(final: Path) -> str | None:
    """The sha256 recorded for this file, if it still has the size and modification time it had then."""
    record = read_checksums(final.parent).get(final.name)
    stat = final.stat()
    if isinstance(record, dict) and record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        digest = record.get("sha256")
        return digest if isinstance(digest, str) else None
    return None


def record_checksum(final: Path, digest: str, remote: RemoteFile, entry: AccelerationLora) -> None:
    """Remember that this exact file (size, mtime) is the official one, for offline status later."""
    table = read_checksums(final.parent)
    stat = final.stat()
    table[final.name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest,
                         "official_sha256": remote.sha256, "repo_id": entry.repo_id, "commit": remote.commit}
    path = work_dir(final.parent) / CHECKSUMS_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # only a cache: the download itself succeeded


def read_checksums(folder: Path) -> dict[str, dict[str, Any]]:
    try:
        table = json.loads((work_dir(folder) / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --- errors ---------------------------------------------------------------------------------------

_CUT_MID_BODY = {"ChunkedEncodingError", "IncompleteRead", "ProtocolError"}


def _is_network_error(error: BaseException) -> bool:
    name = type(error).__name__
    return name in {"ConnectionError", "ChunkedEncodingError", "ReadTimeout", "ConnectTimeout", "Timeout",
                    "ProtocolError", "IncompleteRead", "RemoteDisconnected", "ConnectError", "ReadError"}


def explain(error: BaseException, entry: AccelerationLora, url: str, received: int = 0,
            total: int | None = None) -> DownloadError:
    """Map whatever huggingface_hub / requests raised to one sentence, by HTTP status where there is one.

    ``LocalEntryNotFoundError`` subclasses ``EntryNotFoundError`` and hides outages, so the class
    alone is not trusted (../shared/hub-download-facts.md).
    """
    if isinstance(error, DownloadError):
        return error
    status = _http_status(error)
    where = f"{entry.repo_id}/{entry.repo_file}"
    name = type(error).__name__
    if name == "OfflineModeIsEnabled":
        return DownloadError("offline", "Offline mode is on (HF_HUB_OFFLINE); unset it to download.")
    if name == "RepositoryNotFoundError":  # also what the hub answers anonymous callers for private repos
        return DownloadError("not_found", f"The repository {entry.repo_id} was not found on {_host(url)}, or it is "
                                          f"private: then set HF_TOKEN to an access token (HTTP {status}).")
    if status in (401, 403) or name == "GatedRepoError":
        return DownloadError("auth", f"The server refused access to {where} (HTTP {status or 403}): set HF_TOKEN to "
                                     "a Hugging Face access token that may read it.")
    if status == 404:
        what = {"RevisionNotFoundError": "revision", "EntryNotFoundError": "file"}.get(name, "repository or file")
        return DownloadError("not_found", f"The {what} {where} was not found on {_host(url)} (HTTP 404).")
    if status == 429:
        return DownloadError("server", f"{_host(url)} is rate-limiting downloads (HTTP 429); try again in a minute.")
    if status is not None and status >= 500:
        return DownloadError("server", f"{_host(url)} had an error (HTTP {status}); try again later"
                                       + (" - what was received is kept and resumes." if received else "."))
    if status is not None:
        return DownloadError("server", f"{_host(url)} answered HTTP {status} for {where}.")
    if total and (name in _CUT_MID_BODY or (received and _is_network_error(error))):
        return DownloadError("dropped", f"The connection dropped during the download ({received / MB:.1f} of "
                                        f"{total / MB:.1f} MB kept); download again to resume.")
    if _is_network_error(error) or name in {"LocalEntryNotFoundError", "OSError"} or isinstance(error, OSError):
        return DownloadError("network", f"Cannot reach {_host(url)} ({_short(error)}); check the connection "
                                        "or the Hugging Face endpoint (HF_ENDPOINT).")
    return DownloadError("unexpected", f"Downloading {where} failed: {_short(error)}.")


def _http_status(error: BaseException) -> int | None:
    for candidate in (error, error.__cause__, error.__context__):
        response = getattr(candidate, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _host(url: str) -> str:
    match = re.match(r"^[a-z]+://([^/]+)", url)
    return match.group(1) if match else url


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."
