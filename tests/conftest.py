"""Shared fixtures. Tests that need the WebUI stand-ins live in tests/webui/ (own conftest)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
for path in (ROOT, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from helpers import catalog_bytes, write_layout  # noqa: E402
from hub_server import FakeHub  # noqa: E402

from lib_lcm.rules import catalog  # noqa: E402


@pytest.fixture
def lora_dir(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "Lora"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def official_loras(lora_dir: Path) -> dict[str, Path]:
    """The three official LCM-LoRA files under their catalog names, real layouts, zero weights."""
    return {
        "sd15": write_layout(lora_dir / "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdv1-5"),
        "sdxl": write_layout(lora_dir / "lcm-lora-sdxl.safetensors", "lcm-lora-sdxl"),
        "ssd-1b": write_layout(lora_dir / "lcm-lora-ssd-1b.safetensors", "lcm-lora-ssd-1b"),
    }


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory) -> FakeHub:
    server = FakeHub(tmp_path_factory.mktemp("hub"))
    yield server
    server.close()


@pytest.fixture
def hub(hub_server: FakeHub, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """The local hub serving the three catalog repos, no faults, and this process online without a token."""
    hub_server.reset()
    for entry in catalog.CATALOG:
        hub_server.add(entry.repo_id, entry.repo_file, catalog_bytes(entry.key))
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return hub_server
