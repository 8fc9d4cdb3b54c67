"""bench/gpu_check.py --tiny: the GPU check's every stage, on tiny models on the CPU, so it never rots."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT

pytestmark = pytest.mark.slow


def test_the_gpu_check_runs_every_stage_on_the_cpu(tmp_path):
    out = tmp_path / "check.json"
    result = subprocess.run([sys.executable, "bench/gpu_check.py", "--tiny", "--repeats", "1", "--distill-steps", "2",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(out.read_text())
    assert numbers["device"] == "cpu"
    for key in ("sd1", "sdxl"):
        check = numbers[key]
        assert check["generate"]["speed_up"] > 2  # 4 UNet evaluations against 50
        assert check["floor"]["sum_s"] > 0 and check["cold_generate_s"] > 0
        assert [d["processes"] for d in check["distill"].values()] == [1, 2]
        assert all(d["images_per_s"] > 0 for d in check["distill"].values())
        for kind in ("lcm", "tcd"):  # float32 on the CPU: the oracle's own bar
            assert check["sampling"][kind]["max_difference"] < 1e-5 < check["sampling"][kind]["latent_scale"]
        fast = check["fast_path"]
        live = fast.pop("live page, 2 steps, tiny decoder: images/s")
        assert set(fast) == {"eager, full VAE", "eager, tiny decoder"} and live > 0
        assert all(row["4 steps ms"] > 0 for row in fast.values())
    assert "sd1 at 64²" in result.stdout and "sdxl at 64²" in result.stdout
