"""Read and check the header of a ``.safetensors`` file without loading any tensor.

The format: 8 bytes little-endian header length N, N bytes of JSON mapping tensor names to
``{"dtype", "shape", "data_offsets"}`` (plus an optional ``__metadata__`` of strings), then the
raw tensor bytes. Reading only the header keeps detection cheap on multi-GB checkpoints, and
checking the offsets against the file size catches truncated downloads.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from lib_lcm.rules.architecture import Detection, TensorInfo, detect_architecture

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library refuses larger headers too

_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}


class SafetensorsHeaderError(ValueError):
    """The file is not a complete, well-formed safetensors file; the message says why."""


@dataclass(frozen=True)
class SafetensorsHeader:
    path: Path
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    file_size: int = 0

    def detect(self) -> Detection:
        return detect_architecture(self.tensors)


def read_header(path: str | os.PathLike[str], *, check_suffix: bool = True) -> SafetensorsHeader:
    """Parse and validate the header of ``path``; raise SafetensorsHeaderError with a reason.

    ``check_suffix=False`` is for our own download parts, whose name ends in ``.part``.
    """
    path = Path(path)
    if check_suffix and path.suffix.lower() != ".safetensors":
        raise SafetensorsHeaderError(f"{path.name}: only .safetensors files are read (pickled .ckpt/.pt are refused)")
    try:
        with path.open("rb") as handle:
            file_size = os.fstat(handle.fileno()).st_size
            raw = _read_raw_header(handle, file_size, path.name)
    except OSError as error:
        raise SafetensorsHeaderError(f"{path.name}: cannot be read ({error.strerror or error})") from error
    return _parse(path, raw, file_size)


def _read_raw_header(handle: BinaryIO, file_size: int, name: str) -> bytes:
    prefix = handle.read(8)
    if len(prefix) < 8:
        raise SafetensorsHeaderError(f"{name}: file is too short to be safetensors ({file_size} bytes)")
    (length,) = struct.unpack("<Q", prefix)
    if length < 2 or length > MAX_HEADER_BYTES:
        raise SafetensorsHeaderError(f"{name}: not a safetensors file (header length {length})")
    raw = handle.read(length)
    if not raw.startswith(b"{"):  # e.g. a pickled .ckpt (a zip) renamed to .safetensors
        raise SafetensorsHeaderError(f"{name}: not a safetensors file (no JSON header)")
    if len(raw) < length:
        raise SafetensorsHeaderError(f"{name}: file is truncated inside its header")
    return raw


def _parse(path: Path, raw: bytes, file_size: int) -> SafetensorsHeader:
    name = path.name
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SafetensorsHeaderError(f"{name}: header is not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise SafetensorsHeaderError(f"{name}: header is not a JSON object")
    metadata = _parse_metadata(document.pop("__metadata__", None), name)
    data_size = file_size - 8 - len(raw)
    tensors = {key: _parse_tensor(key, entry, data_size, name) for key, entry in document.items()}
    return SafetensorsHeader(path=path, tensors=tensors, metadata=metadata, file_size=file_size)


def _parse_metadata(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise SafetensorsHeaderError(f"{name}: __metadata__ must map names to strings")
    return {str(k): v for k, v in value.items()}


def _parse_tensor(key: str, entry: object, data_size: int, name: str) -> TensorInfo:
    if not isinstance(entry, dict):
        raise SafetensorsHeaderError(f"{name}: entry {key!r} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in _DTYPE_BYTES:
        raise SafetensorsHeaderError(f"{name}: tensor {key!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise SafetensorsHeaderError(f"{name}: tensor {key!r} has a malformed shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise SafetensorsHeaderError(f"{name}: tensor {key!r} has malformed data_offsets {offsets!r}")
    if offsets[1] > data_size:
        raise SafetensorsHeaderError(f"{name}: file is truncated (tensor {key!r} ends past the end of the file)")
    if offsets[1] - offsets[0] != math.prod(shape) * _DTYPE_BYTES[dtype]:
        raise SafetensorsHeaderError(f"{name}: tensor {key!r} byte size does not match its shape and dtype")
    return TensorInfo(shape=tuple(shape), dtype=dtype)


@lru_cache(maxsize=256)
def _detect_cached(path: str, size: int, mtime_ns: int) -> Detection | str:
    try:
        return read_header(path).detect()
    except SafetensorsHeaderError as error:
        return str(error)


def detect_file(path: str | os.PathLike[str]) -> Detection:
    """Architecture of a file from its header; cached by path, size and modification time.

    Raises SafetensorsHeaderError (also for a file that vanished) with a one-sentence reason.
    """
    try:
        stat = os.stat(path)
    except OSError as error:
        raise SafetensorsHeaderError(f"{Path(path).name}: cannot be read ({error.strerror or error})") from error
    result = _detect_cached(os.fspath(path), stat.st_size, stat.st_mtime_ns)
    if isinstance(result, str):
        raise SafetensorsHeaderError(result)
    return result


def lora_short_hash(path: str | os.PathLike[str]) -> str:
    """The 12-hex-digit LoRA hash the WebUI writes as ``Lora hashes``.

    A1111 1.10 (``extensions-builtin/Lora/network.py`` via ``modules/hashes.py``, kohya's
    "addnet" hash) takes a ``sshs_model_hash`` from the metadata, else the sha256 of the tensor
    bytes after the header, so that editing the metadata does not change it.
    """
    header = read_header(path)
    stored = header.metadata.get("sshs_model_hash", "")
    if stored:
        return stored[:12]
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + length)
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]
