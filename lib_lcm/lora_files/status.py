"""What state a catalog entry's file is in, offline: missing, partly downloaded, verified, present,
different from the official file, or damaged.

"Verified" needs no network: a download (or a download click that found the file already there)
records the official sha256 together with the file's size and modification time in the Lora
folder's hidden checksum table; a file that still has that size and time is the verified one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lib_lcm.lora_files.header import SafetensorsHeaderError, detect_file
from lib_lcm.lora_files.work_folder import known_sha256, parts_of, read_checksums, size_or_zero
from lib_lcm.rules.catalog import MB, AccelerationLora

FileState = Literal["missing", "partial", "verified", "present", "different", "corrupt"]
MISSING: FileState = "missing"
PARTIAL: FileState = "partial"
VERIFIED: FileState = "verified"
PRESENT: FileState = "present"
DIFFERENT: FileState = "different"
CORRUPT: FileState = "corrupt"


@dataclass(frozen=True)
class FileStatus:
    entry: AccelerationLora
    path: Path
    state: FileState
    message: str
    size: int | None = None  # on disk, when present
    partial_bytes: int = 0  # kept from an interrupted download


def file_status(entry: AccelerationLora, lora_dir: str | os.PathLike[str]) -> FileStatus:
    final = Path(lora_dir) / entry.local_filename
    partial = _partial_bytes(final)
    if not final.is_file():
        if partial:
            return FileStatus(entry, final, PARTIAL, f"Partly downloaded ({partial / MB:.1f} MB kept); "
                                                     "Download resumes it.", None, partial)
        return FileStatus(entry, final, MISSING, "Not downloaded.")
    size = final.stat().st_size
    problem = _content_problem(entry, final)
    if problem is not None:
        state = CORRUPT if problem.startswith("damaged") else DIFFERENT
        return FileStatus(entry, final, state, f"{final.name} is {problem}; it is left as it is.", size, partial)
    return _checked_against_official(entry, final, size, partial)


def _content_problem(entry: AccelerationLora, final: Path) -> str | None:
    try:
        detection = detect_file(final)
    except SafetensorsHeaderError as error:
        return f"damaged ({str(error).split(': ', 1)[-1]})"
    if detection.kind != "lora" or detection.architecture is not entry.architecture:
        return f"not the official file: it holds a {detection.architecture.label} {detection.kind}"
    return None


def _checked_against_official(entry: AccelerationLora, final: Path, size: int, partial: int) -> FileStatus:
    digest = known_sha256(final)
    if digest is not None:
        if digest == read_checksums(final.parent)[final.name].get("official_sha256"):
            return FileStatus(entry, final, VERIFIED, "Present and verified against the hub's sha256.", size, partial)
        return FileStatus(entry, final, DIFFERENT, "Present, but not the official file (sha256 differs).", size,
                          partial)
    if entry.size_bytes is not None and size != entry.size_bytes:
        return FileStatus(entry, final, DIFFERENT, f"Present, but its size ({size:,} bytes) is not the official "
                                                   f"file's ({entry.size_bytes:,}).", size, partial)
    return FileStatus(entry, final, PRESENT, "Present; not verified yet (Verify checks it against the hub).",
                      size, partial)


def _partial_bytes(final: Path) -> int:
    return max((size_or_zero(part) for part in parts_of(final)), default=0)
