"""`python -m lib_lcm download`, run as a real process against the local hub server."""
import os
import subprocess
import sys

import pytest
from helpers import ROOT

from lib_lcm.rules import catalog

CLEARED = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_ENDPOINT")


def cli(*args, env=None):
    environment = {k: v for k, v in os.environ.items() if k not in CLEARED}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "lib_lcm", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=environment)


def test_download_all_into_a_folder(hub, tmp_path):
    result = cli("download", "all", "--dir", str(tmp_path / "Lora"), "--endpoint", hub.url)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "Lora").glob("*.safetensors"))
    assert names == sorted(e.local_filename for e in catalog.CATALOG)
    assert {"lcm-lora-sdv1-5.safetensors", "lcm-lora-sdxl.safetensors", "lcm-lora-ssd-1b.safetensors",
            "TCD-SD15-LoRA.safetensors", "sdxl_lightning_4step_lora.safetensors"} <= set(names)
    assert result.stdout.count("verified against the hub's sha256") == len(catalog.CATALOG)
    assert "100.0%" in result.stderr  # the progress bar


def test_hf_endpoint_from_the_environment_and_a_chosen_name(hub, tmp_path):
    result = cli("download", "sdxl", "--dir", str(tmp_path), "--name", "xl-speed", env={"HF_ENDPOINT": hub.url})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "xl-speed.safetensors").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["download", "sd3", "--dir", "X"], "'sd3' is not in the catalog"),
    (["download", "all", "--dir", "X", "--name", "x"], "--name works with one key only"),
    (["download", "sd15", "--dir", "X", "--name", "../x"], "is not a usable file name"),
])
def test_usage_errors_exit_2_with_one_sentence(hub, tmp_path, args, message):
    result = cli(*[str(tmp_path / a) if a == "X" else a for a in args], "--endpoint", hub.url)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failure_exits_1_and_keeps_the_users_file(hub, tmp_path):
    (tmp_path / "lcm-lora-sdv1-5.safetensors").write_bytes(b"mine")
    result = cli("download", "sd15", "--dir", str(tmp_path), "--endpoint", hub.url)
    assert result.returncode == 1 and "left untouched" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "lcm-lora-sdv1-5.safetensors").read_bytes() == b"mine"


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline(hub, tmp_path, variable):
    """huggingface_hub goes offline for either variable; the message names the one that is set."""
    result = cli("download", "sd15", "--dir", str(tmp_path), "--endpoint", hub.url, env={variable: "1"})
    assert result.returncode == 1 and f"Offline mode is on ({variable}, " in result.stderr
    assert hub.requests_to("resolve") == []


def test_a_server_error_is_retried_with_one_line_then_the_download_completes(hub, tmp_path):
    hub.script("cdn", ("status", 503))
    result = cli("download", "sd15", "--dir", str(tmp_path), "--endpoint", hub.url)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\r")[-1] for line in result.stderr.splitlines()]
    assert "sd15: The server answered HTTP 503; trying again in 1 s (retry 1 of 4)." in lines
    assert "huggingface_hub" not in result.stderr and "Retrying in" not in result.stderr
