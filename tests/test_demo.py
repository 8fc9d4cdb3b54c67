"""`python -m lib_lcm demo --pipeline`: the random SD-shaped pipeline timing, at a small size (the toy demo,
the README's main job, is tested in test_toy.py)."""
import pytest
from PIL import Image

from lib_lcm.cli.main import main


@pytest.mark.slow
def test_demo_runs_offline_and_writes_the_table_and_grid(tmp_path, capsys):
    assert main(["demo", "--pipeline", "--out", str(tmp_path), "--seeds", "1", "2", "--size", "64",
                 "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "a cat in a hat <lora:lcm-lora-sdv1-5:1>" in out
    baseline = next(line for line in out.splitlines() if line.startswith("DPM-Solver++ baseline"))
    lcm = next(line for line in out.splitlines() if line.startswith("LCM (the extension's recipe)"))
    # 25 steps with CFG: 25 calls of a doubled batch; 4 LCM steps at CFG 1: 4 calls, no unconditional pass
    assert baseline.split()[2:6] == ["25", "7.5", "25", "50"]
    assert lcm.split()[4:8] == ["4", "1", "4", "4"]
    tcd = next(line for line in out.splitlines() if line.startswith("TCD, gamma 0.3"))
    assert tcd.split()[3:7] == ["4", "1", "4", "4"]
    grid = Image.open(tmp_path / "lcm-demo.png")
    assert grid.size == (220 + 2 * 64, 3 * 64)  # one row per run: baseline, LCM, TCD


def test_demo_rejects_bad_sizes(capsys):
    assert main(["demo", "--pipeline", "--size", "100"]) == 2
    assert "multiple of 8" in capsys.readouterr().err


def test_detect_command(tmp_path, capsys):
    from helpers import write_layout

    good = write_layout(tmp_path / "a.safetensors", "lcm-lora-sdxl")
    bad = tmp_path / "b.safetensors"
    bad.write_bytes(b"nope")
    assert main(["detect", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{good}: SDXL lora" in out and "too short" in out
