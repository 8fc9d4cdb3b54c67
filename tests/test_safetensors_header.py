import json
import os
import struct

import pytest
import torch
from helpers import write_layout
from safetensors.torch import save_file

from lib_lcm.lora_files.header import SafetensorsHeaderError, detect_file, read_header
from lib_lcm.rules.architecture import Architecture


def raw_file(path, header: bytes, data: bytes = b"") -> str:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return str(path)


def test_agrees_with_the_safetensors_library(tmp_path):
    tensors = {"a": torch.zeros(2, 3, dtype=torch.float16), "b.weight": torch.ones(5, dtype=torch.float32),
               "ids": torch.arange(7, dtype=torch.int64), "scalar": torch.tensor(8.0, dtype=torch.bfloat16)}
    path = tmp_path / "x.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt", "ss_output_name": "x"})
    header = read_header(path)
    assert {k: (v.shape, v.dtype) for k, v in header.tensors.items()} == {
        "a": ((2, 3), "F16"), "b.weight": ((5,), "F32"), "ids": ((7,), "I64"), "scalar": ((), "BF16")}
    assert header.metadata == {"format": "pt", "ss_output_name": "x"}
    assert header.file_size == path.stat().st_size


def test_real_size_lora_matches_published_byte_size(tmp_path):
    path = write_layout(tmp_path / "lcm.safetensors", "lcm-lora-sdv1-5")
    assert path.stat().st_size == 134_621_556
    assert len(read_header(path).tensors) == 834


@pytest.mark.parametrize(("header", "data", "reason"), [
    (b'{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}', b"\0" * 4, "truncated"),
    (b'{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,6]}}', b"\0" * 8, "byte size"),
    (b'{"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,8]}}', b"\0" * 8, "unknown dtype"),
    (b'{"a":{"dtype":"F16","shape":[-4],"data_offsets":[0,8]}}', b"\0" * 8, "malformed shape"),
    (b'{"a":{"dtype":"F16","shape":[4],"data_offsets":[8,0]}}', b"\0" * 8, "malformed data_offsets"),
    (b'{"a":[1,2]}', b"", "not an object"),
    (b'[1,2,3]', b"", "no JSON header"),
    (b'{"a": nope}', b"", "not valid JSON"),
    (b'{"__metadata__":{"k":1}}', b"", "__metadata__"),
    (b'\xff\xfe{}', b"", "no JSON header"),
    (b'{"a": 1} \xff', b"", "not valid JSON"),
])
def test_malformed_files_get_one_clear_reason(tmp_path, header, data, reason):
    path = raw_file(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(SafetensorsHeaderError, match=reason) as caught:
        read_header(path)
    assert "bad.safetensors" in str(caught.value)


def test_truncated_download_of_a_real_layout_is_caught(tmp_path):
    path = write_layout(tmp_path / "cut.safetensors", "lcm-lora-sdxl")
    os.truncate(path, path.stat().st_size - 1)
    with pytest.raises(SafetensorsHeaderError, match="truncated"):
        read_header(path)


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "too short"),
    (b"1234", "too short"),
    (struct.pack("<Q", 10**12) + b"{}", "header length"),
    (struct.pack("<Q", 1000) + b"{}", "truncated inside its header"),
    (b"PK\x03\x04" + b"\0" * 100, "no JSON header"),  # a zip, e.g. a renamed .ckpt
])
def test_not_safetensors_at_all(tmp_path, content, reason):
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    with pytest.raises(SafetensorsHeaderError, match=reason):
        read_header(path)


def test_pickles_are_refused_by_name(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"whatever")
    with pytest.raises(SafetensorsHeaderError, match=r"only \.safetensors"):
        read_header(path)


def test_missing_file(tmp_path):
    with pytest.raises(SafetensorsHeaderError, match="cannot be read"):
        read_header(tmp_path / "absent.safetensors")
    with pytest.raises(SafetensorsHeaderError, match="cannot be read"):
        detect_file(tmp_path / "absent.safetensors")


def test_detect_file_notices_a_replaced_file(tmp_path):
    path = write_layout(tmp_path / "x.safetensors", "lcm-lora-sdv1-5")
    assert detect_file(path).architecture is Architecture.SD1
    write_layout(path, "lcm-lora-sdxl")  # same name, other content (other size and mtime)
    assert detect_file(path).architecture is Architecture.SDXL
    path.write_bytes(b"garbage")
    with pytest.raises(SafetensorsHeaderError):
        detect_file(path)


def test_header_json_is_not_executed_or_trusted_beyond_shapes(tmp_path):
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": "ignored"}}).encode()
    path = raw_file(tmp_path / "ok.safetensors", header, b"\0\0\0\0")
    assert read_header(path).tensors["w"].shape == (1,)
