"""The package as pip installs it: a wheel built from this repo, installed in a fresh venv, runs its commands.

The fresh venv has the wheel and nothing of the checkout: its dependencies come from the test venv's
site-packages through a path file (which Python reads as a plain folder: the editable install of the
checkout there stays unused), and the commands run from a folder outside the repo.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, write_layout

from lib_lcm.rules import catalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of what the build reads, so no build/ folder of an earlier build can fill gaps."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("lib_lcm", "javascript"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, str(source), "-w", str(out)],
                   check=True, capture_output=True, cwd=out)
    (found,) = out.glob("sd_webui_lcm_lora-*.whl")
    return found


@pytest.fixture(scope="module")
def fresh(wheel, tmp_path_factory) -> Path:
    """A new venv with only the wheel installed; returns its python."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    return python


def run(python: Path, *args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_ENDPOINT", "HF_HUB_OFFLINE")}
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env,
                          **kwargs)


def test_the_wheel_holds_every_module_and_its_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "lib_lcm").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    data = {"lib_lcm/py.typed", "lib_lcm/downloads/page_js/lcm_lora_downloads.js",
            "lib_lcm/standalone/model_configs/sdxl/unet/config.json", "lib_lcm/toy/weights/teacher.safetensors",
            "lib_lcm/live/page/index.html", "lib_lcm/live/page/live.js", "lib_lcm/live/page/live.css"}
    assert data <= names, sorted(data - names)
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "bench/"))]


def test_the_installed_package_is_the_wheels(fresh, tmp_path):
    where = run(fresh, "-c", "import lib_lcm; print(lib_lcm.__file__)", cwd=tmp_path).stdout.strip()
    assert where.startswith(str(fresh.parents[1])) and str(ROOT) not in where


def test_detect_and_generate_help(fresh, tmp_path):
    lora = write_layout(tmp_path / "x.safetensors", "lcm-lora-sdxl")
    detected = run(fresh, "-m", "lib_lcm", "detect", str(lora), cwd=tmp_path)
    assert detected.returncode == 0 and "SDXL lora" in detected.stdout, detected.stderr
    helped = run(fresh, "-m", "lib_lcm", "generate", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--checkpoint" in helped.stdout and "--tcd-gamma" in helped.stdout


def test_download(fresh, tmp_path, hub):
    result = run(fresh, "-m", "lib_lcm", "download", "sd15", "--dir", str(tmp_path / "Lora"), "--endpoint", hub.url,
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "Lora" / catalog.by_key("sd15").local_filename).is_file()


def test_the_download_page_serves_with_its_script(fresh, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(fresh), "-m", "lib_lcm", "ui", "--dir", str(tmp_path), "--port", str(port)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        page = _get(f"http://127.0.0.1:{port}/", server)
        config = re.search(r"window\.gradio_config = (.*?);</script>", page, re.S)
        assert config is not None and "lcm_lora_downloads_refresh" in config.group(1)
        assert "lcmLoraPoll" in config.group(1)  # the page script, read from the wheel
    finally:
        server.terminate()
        server.wait(30)


def _get(url: str, server: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the page stopped: {server.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode("utf-8")
        except OSError:
            time.sleep(0.5)
    pytest.fail("the page did not answer")
