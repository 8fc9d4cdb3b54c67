"""The hidden work folder inside a Lora folder: download parts, locks and the checksum table.

The WebUI walks the Lora folders but skips hidden directories (``extensions-builtin/Lora/networks.py``
through ``shared.walk_files``), so nothing kept in ``.lcm-lora`` is ever listed as a LoRA. The
checksum table remembers which files were verified against the hub, by size and modification time,
so that the tab can say "verified" offline later.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

WORK_DIR = ".lcm-lora"
CHECKSUMS_FILE = "checksums.json"
_HASH_BLOCK = 8 * 1024 * 1024


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def work_dir(folder: Path) -> Path:
    return folder / WORK_DIR


def part_path(final: Path, sha256: str) -> Path:
    """Where the bytes of ``final`` collect while they arrive; one part per published revision."""
    return work_dir(final.parent) / f"{final.name}.{sha256[:16]}.part"


def parts_of(final: Path) -> list[Path]:
    """Every part kept for ``final``, of any revision."""
    return sorted(work_dir(final.parent).glob(f"{glob.escape(final.name)}.*.part"))


def lock_path(final: Path) -> Path:
    return work_dir(final.parent) / f"{final.name}.lock"


def hash_into(path: Path, digest: Digest) -> None:
    """Feed the bytes ``path`` has now to ``digest`` (exactly its stat size: a special file could stream forever)."""
    remaining = size_or_zero(path)
    if not remaining:
        return
    with path.open("rb") as handle:
        while remaining > 0 and (block := handle.read(min(_HASH_BLOCK, remaining))):
            digest.update(block)
            remaining -= len(block)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    hash_into(path, digest)
    return digest.hexdigest()


def size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_checksums(folder: Path) -> dict[str, dict[str, Any]]:
    try:
        table = json.loads((work_dir(folder) / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def known_sha256(final: Path) -> str | None:
    """The sha256 recorded for this file, if it still has the size and modification time it had then."""
    record = read_checksums(final.parent).get(final.name)
    stat = final.stat()
    if isinstance(record, dict) and record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        digest = record.get("sha256")
        return digest if isinstance(digest, str) else None
    return None


def record_checksum(final: Path, digest: str, official_sha256: str, repo_id: str, commit: str | None) -> None:
    """Remember that this exact file (size, mtime) has ``digest``, and what the official file's is."""
    table = read_checksums(final.parent)
    stat = final.stat()
    table[final.name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest,
                         "official_sha256": official_sha256, "repo_id": repo_id, "commit": commit}
    path = work_dir(final.parent) / CHECKSUMS_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # only a cache: the file itself is fine
