"""What can go wrong in a download, as one sentence for the user and a ``kind`` for programs.

Errors are told apart by the classes huggingface_hub and requests raise (``hf_raise_for_status``
turns the hub's ``X-Error-Code`` into RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError
and EntryNotFoundError) and by the HTTP status they carry. The hub keeps those classes in
``huggingface_hub.errors`` since 0.24 and in ``huggingface_hub.utils`` before; both are read.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

from lib_lcm.rules.catalog import MB

ErrorKind = Literal[
    # the request itself
    "invalid_key", "invalid_name", "bad_request", "unsupported",
    # the Lora folder as it is
    "busy", "exists_different", "corrupt_present", "cancelled",
    # the hub and the network
    "auth", "not_found", "offline", "network", "server", "dropped",
    # what arrived
    "checksum", "wrong_architecture", "corrupt",
    # the local disk
    "disk_full", "read_only", "io",
    "unexpected",
]


class DownloadError(Exception):
    """One sentence for the user in ``message``; ``kind`` for programs (HTTP status mapping, tests)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


@dataclass(frozen=True)
class Where:
    """What was being fetched, for the sentences: ``repo_id/filename`` from ``url``."""

    repo_id: str
    filename: str
    url: str

    @property
    def file(self) -> str:
        return f"{self.repo_id}/{self.filename}"

    @property
    def host(self) -> str:
        match = re.match(r"^[a-z]+://([^/]+)", self.url)
        return match.group(1) if match else self.url


# huggingface_hub goes offline for either (constants.py: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE), and then its
# session refuses every request; the message names the one that is set.
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_offline() -> bool:
    """Offline mode as huggingface_hub read it at import, or as the environment says now."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or bool(_offline_variables())


def offline_error() -> DownloadError:
    named = " and ".join(_offline_variables()) or "HF_HUB_OFFLINE"
    return DownloadError("offline", f"Offline mode is on ({named}, which huggingface_hub reads); unset it to "
                                    "download.")


def _offline_variables() -> list[str]:
    return [name for name in _OFFLINE_VARIABLES if os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE")]


def explain(error: BaseException, where: Where, received: int = 0, total: int | None = None) -> DownloadError:
    """Map what huggingface_hub or requests raised to one sentence."""
    if isinstance(error, DownloadError):
        return error
    hub, requests = _hub_errors(), _requests_errors()
    if isinstance(error, hub.OfflineModeIsEnabled):
        return offline_error()
    status = http_status(error)
    # GatedRepoError subclasses RepositoryNotFoundError: ask about it first.
    if isinstance(error, hub.GatedRepoError) or status in (401, 403):
        if isinstance(error, hub.RepositoryNotFoundError) and not isinstance(error, hub.GatedRepoError):
            return _repository_not_found(where, status)
        return DownloadError("auth", f"The server refused access to {where.file} (HTTP {status or 403}): set "
                                     "HF_TOKEN to a Hugging Face access token that may read it.")
    if isinstance(error, hub.RepositoryNotFoundError):
        return _repository_not_found(where, status)
    if isinstance(error, hub.RevisionNotFoundError):
        return DownloadError("not_found", f"The revision of {where.file} was not found on {where.host} (HTTP 404).")
    if isinstance(error, hub.EntryNotFoundError) or status == 404:
        return DownloadError("not_found", f"The file {where.file} was not found on {where.host} (HTTP 404).")
    if status is not None:
        return _server_error(status, where, received)
    if total and received and isinstance(error, (requests.ConnectionError, requests.Timeout)):
        return _dropped(received, total)
    if isinstance(error, (requests.ChunkedEncodingError, requests.ContentDecodingError)):
        return _dropped(received, total)
    if isinstance(error, (requests.ConnectionError, requests.Timeout)):
        return DownloadError("network", f"Cannot reach {where.host} ({_short(error)}); check the connection or the "
                                        "Hugging Face endpoint (HF_ENDPOINT).")
    return DownloadError("unexpected", f"Downloading {where.file} failed: {_short(error)}.")


def is_worth_retrying(error: BaseException) -> bool:
    """A busy or failing server, or a connection that broke: the same request may well work a little later."""
    requests = _requests_errors()
    if isinstance(error, (requests.ConnectionError, requests.Timeout, requests.ChunkedEncodingError)):
        return True
    status = http_status(error)
    return status == 429 or (status is not None and status >= 500 and status != 507)


def disk_error(error: OSError, folder: Path) -> DownloadError:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError("disk_full", f"The disk holding {folder} is full; free some space and download "
                                          "again (what was received is kept and resumes).")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DownloadError("read_only", f"The Lora folder {folder} is not writable ({error.strerror}); "
                                          "fix its permissions or choose another folder.")
    return DownloadError("io", f"Writing into {folder} failed: {error.strerror or error}.")


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EFBIG})


def is_disk_error(error: BaseException) -> bool:
    # requests' exceptions are OSErrors too; only an errno from the file system means the disk.
    return isinstance(error, OSError) and error.errno in DISK_ERRNOS


def http_status(error: BaseException) -> int | None:
    for candidate in (error, error.__cause__, error.__context__):
        response = getattr(candidate, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _repository_not_found(where: Where, status: int | None) -> DownloadError:
    # The hub answers anonymous callers the same for a private repository as for a missing one.
    return DownloadError("not_found", f"The repository {where.repo_id} was not found on {where.host}, or it is "
                                      f"private: then set HF_TOKEN to an access token (HTTP {status or 404}).")


def _server_error(status: int, where: Where, received: int) -> DownloadError:
    if status == 429:
        return DownloadError("server", f"{where.host} is rate-limiting downloads (HTTP 429); try again in a minute.")
    if status >= 500:
        kept = " - what was received is kept and resumes." if received else "."
        return DownloadError("server", f"{where.host} had an error (HTTP {status}); try again later{kept}")
    return DownloadError("server", f"{where.host} answered HTTP {status} for {where.file}.")


def _dropped(received: int, total: int | None) -> DownloadError:
    of = f" of {total / MB:.1f}" if total else ""
    return DownloadError("dropped", f"The connection dropped during the download ({received / MB:.1f}{of} MB kept); "
                                    "download again to resume.")


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def hub_errors() -> ModuleType:
    """The module holding huggingface_hub's exception classes, whichever version is installed."""
    return _hub_errors()


def _hub_errors() -> ModuleType:
    try:
        return importlib.import_module("huggingface_hub.errors")
    except ImportError:  # huggingface_hub < 0.24
        return importlib.import_module("huggingface_hub.utils")


def _requests_errors() -> ModuleType:
    from requests import exceptions

    return exceptions
