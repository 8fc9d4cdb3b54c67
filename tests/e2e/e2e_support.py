"""Support for the end-to-end suite against a real running WebUI (A1111 1.10 or Forge) through its HTTP API.

    WEBUI_URL=http://127.0.0.1:7860 [WEBUI_LORA_DIR=.../models/Lora] python -m pytest tests/e2e

Skipped when WEBUI_URL is unset. The WebUI must run with --api and have this extension installed.
With WEBUI_LORA_DIR, the suite writes the LCM-LoRA file the loaded checkpoint needs (the official key
layout, small random weights) when no file of that name exists, and deletes only what it wrote.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from helpers import layout, tensors_of
from safetensors.numpy import save_file

from lib_lcm.lora_files.header import SafetensorsHeaderError, detect_file
from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture

WEBUI_URL = os.environ.get("WEBUI_URL", "").rstrip("/")
LORA_DIR = os.environ.get("WEBUI_LORA_DIR")
LAYOUTS = {Architecture.SD1: "lcm-lora-sdv1-5", Architecture.SDXL: "lcm-lora-sdxl",
           Architecture.SSD1B: "lcm-lora-ssd-1b"}
SIZE = int(os.environ.get("WEBUI_E2E_SIZE", "64"))  # small images: the WebUI may run on a CPU


def pytest_collection_modifyitems(config, items):
    if WEBUI_URL:
        return
    skip = pytest.mark.skip(reason="set WEBUI_URL to a running WebUI (started with --api) to run the e2e suite")
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


class Api:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=900)

    def get(self, path: str):
        response = self.client.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict | None = None, expect: int = 200):
        response = self.client.post(path, content=json.dumps(body or {}), headers={"Content-Type": "application/json"})
        assert response.status_code == expect, response.text[:2000]
        return response.json()

    def generate(self, kind: str, body: dict) -> dict:
        body = {"width": SIZE, "height": SIZE, "seed": 1, "save_images": False, **body}
        result = self.post(f"/sdapi/v1/{kind}", body)
        info = json.loads(result["info"])
        info["images"] = result["images"]
        return info


def is_forge(api: Api) -> bool:
    """Forge serves its page with gradio 4 (A1111 1.10: gradio 3.41.2)."""
    return str(api.get("/config").get("version", "")).startswith("4.")


def hires_fields(api: Api) -> dict:
    """What a hires request needs on top of A1111's fields: Forge's sample() iterates hr_additional_modules."""
    return {"hr_additional_modules": ["Use same choices"]} if is_forge(api) else {}


FORGE_INFOTEXT_API = ("Forge's API fails every request with an infotext, with or without this extension "
                      "(modules/api/api.py get_field_value: isinstance on a parameterized generic)")


def setting_ids(api: Api) -> set[str]:
    """Element ids of the page's components: settings show up as setting_<key>."""
    return {c.get("props", {}).get("elem_id") for c in api.get("/config")["components"]} - {None}


@dataclass
class LoadedModel:
    architecture: Architecture
    title: str
    filename: str


@dataclass
class Lora:
    name: str
    path: Path | None
    created: bool


@pytest.fixture(scope="session")
def api():
    return Api(WEBUI_URL)


@pytest.fixture(scope="session")
def model(api) -> LoadedModel:
    current = api.get("/sdapi/v1/options")["sd_model_checkpoint"]
    models = api.get("/sdapi/v1/sd-models")
    entry = next((m for m in models if current in (m["title"], m["model_name"])), models[0])
    forced = os.environ.get("WEBUI_ARCH")
    if forced:
        return LoadedModel(Architecture(forced), entry["title"], entry["filename"])
    try:
        architecture = detect_file(entry["filename"]).architecture
    except SafetensorsHeaderError as error:
        pytest.skip(f"cannot read the loaded checkpoint's header ({error}); set WEBUI_ARCH=sd1|sdxl|ssd-1b")
    return LoadedModel(architecture, entry["title"], entry["filename"])


def write_random_lora(path: Path, layout_name: str, seed: int = 0) -> None:
    """The official key layout and dtypes; lora_down/up small random values, alpha as published."""
    rng = np.random.default_rng(seed)
    alpha = float(layout(layout_name)["alpha"])
    tensors = {}
    for key, spec in tensors_of(layout_name).items():
        if key.endswith(".alpha"):
            tensors[key] = np.array(alpha, dtype=np.float16)
        else:
            tensors[key] = (rng.standard_normal(spec["shape"], dtype=np.float32) * 0.01).astype(np.float16)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)


@pytest.fixture(scope="session")
def lora(api, model) -> Lora:
    entry = catalog.for_architecture(model.architecture)
    if entry is None:
        pytest.skip(f"the loaded checkpoint is {model.architecture.label}; LCM-LoRA needs SD 1.5, SDXL or SSD-1B")
    created = False
    path = None
    if LORA_DIR:
        path = Path(LORA_DIR) / entry.local_filename
        if not path.exists():  # never overwrite a file the user has
            write_random_lora(path, LAYOUTS[model.architecture])
            created = True
        api.post("/sdapi/v1/refresh-loras")
    names = {item["name"] for item in api.get("/sdapi/v1/loras")}
    if entry.local_name not in names:
        pytest.skip(f"{entry.local_filename} is not in the WebUI's Lora list; set WEBUI_LORA_DIR to let the suite "
                    "write it")
    yield Lora(entry.local_name, path, created)
    if created and path is not None and path.exists():
        path.unlink()
        api.post("/sdapi/v1/refresh-loras")


@contextlib.contextmanager
def lora_file(api, stem: str, architecture: Architecture, seed: int = 1):
    """A LoRA file named ``stem`` in WEBUI_LORA_DIR for the duration (random weights, the architecture's
    official layout); an existing file of that name is used as it is and never touched."""
    if not LORA_DIR:
        pytest.skip("set WEBUI_LORA_DIR to let the suite write LoRA files")
    path = Path(LORA_DIR) / f"{stem}.safetensors"
    created = not path.exists()
    if created:
        write_random_lora(path, LAYOUTS[architecture], seed)
        api.post("/sdapi/v1/refresh-loras")
    try:
        yield stem
    finally:
        if created and path.exists():
            path.unlink()
            api.post("/sdapi/v1/refresh-loras")


def png_base64(color: tuple[int, int, int], size: int = SIZE, mask: bool = False) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (0, 0, 0) if mask else color)
    if mask:
        ImageDraw.Draw(image).rectangle((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def moved_away(api, lora):
    """Temporarily hide our LoRA file from the WebUI (only a file this suite wrote)."""
    if not lora.created:
        pytest.skip("only done with a LoRA file the suite wrote itself (WEBUI_LORA_DIR, no file there before)")
    hidden = lora.path.with_name(f".{lora.path.name}.hidden")
    shutil.move(lora.path, hidden)
    api.post("/sdapi/v1/refresh-loras")
    yield
    shutil.move(hidden, lora.path)
    api.post("/sdapi/v1/refresh-loras")
