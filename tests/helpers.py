"""Test helpers: the real tensor layouts (tests/data/layouts, copied from shared/lora-layouts) and
writers of valid safetensors files with those exact names and shapes."""
from __future__ import annotations

import gzip
import json
import math
import os
import struct
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
_DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "I64": 8, "I32": 4}


@cache
def layout(name: str) -> dict:
    """name: lcm-lora-sdv1-5, lcm-lora-sdxl, lcm-lora-ssd-1b, checkpoint-sd15, checkpoint-sd2, checkpoint-sdxl."""
    with gzip.open(DATA / "layouts" / f"{name}.json.gz", "rt", encoding="utf-8") as handle:
        return json.load(handle)


def tensors_of(name: str, *, optional: bool = False) -> dict[str, dict]:
    doc = layout(name)
    tensors = dict(doc["tensors"])
    if optional:
        tensors.update(doc.get("optional_tensors", {}))
    return tensors


def write_sparse_safetensors(path: str | os.PathLike, tensors: dict[str, dict], metadata: dict | None = None) -> Path:
    """A valid safetensors file whose data is all zeros, written sparse: full size, no disk use."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for key in sorted(tensors):
        info = tensors[key]
        size = math.prod(info["shape"]) * _DTYPE_BYTES[info["dtype"]]
        header[key] = {"dtype": info["dtype"], "shape": list(info["shape"]), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        handle.truncate(8 + len(raw) + offset)
    return path


def write_layout(path: str | os.PathLike, name: str, **kwargs) -> Path:
    doc = layout(name)
    metadata = doc.get("safetensors_metadata")
    metadata = metadata if isinstance(metadata, dict) else None  # ssd-1b: "unknown"
    return write_sparse_safetensors(path, tensors_of(name, **kwargs), metadata)


# The official LCM-LoRA layouts (../shared/lora-layouts). The other families' files are stood in for by
# the same architecture's layout: their published sizes fit the same rank-64 module set (Hyper-SD15
# 269 MB and Hyper-SDXL 787 MB in fp32, SDXL-Lightning 394 MB in fp16), and the detector reads
# only the features those share.
LAYOUT_BY_ARCHITECTURE = {"sd1": "lcm-lora-sdv1-5", "sdxl": "lcm-lora-sdxl", "ssd-1b": "lcm-lora-ssd-1b"}


def catalog_layout(key: str) -> str:
    from lib_lcm.rules import catalog

    return LAYOUT_BY_ARCHITECTURE[catalog.by_key(key).architecture.value]


@cache
def catalog_bytes(key: str) -> bytes:
    """What the local hub serves for a catalog entry: its architecture's official key layout at rank 1."""
    return tiny_lora_bytes(catalog_layout(key))


def tiny_lora_bytes(name: str, seed: int = 0, rank: int = 1) -> bytes:
    """The official key names at rank ``rank`` (the real layouts are rank 64): small, same detector features.

    lora_down keeps its input width ([rank, in, ...]), which is what tells SD1/SDXL apart.
    """
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    arrays = {}
    for key, info in tensors_of(name).items():
        shape = list(info["shape"])
        if key.endswith(".lora_down.weight"):
            shape[0] = rank
        elif key.endswith(".lora_up.weight"):
            shape[1] = rank
        if key.endswith(".alpha"):
            arrays[key] = np.array(rank, dtype=np.float16)
        else:
            arrays[key] = (rng.standard_normal(shape, dtype=np.float32) * 0.01).astype(np.float16)
    return save(arrays, metadata={"format": "pt"})
