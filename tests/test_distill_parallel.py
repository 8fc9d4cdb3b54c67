"""Distillation on several processes through Accelerate, on the CPU: ``accelerate launch … -m lib_lcm distill``.

Accelerate starts CPU processes with its torchrun launcher (``--multi_gpu`` names the launcher; with no
GPU each process trains on the CPU, talking over gloo). The toy teacher is distilled for a few steps
with a global batch of 8: on one process, on two (4 rows each), and with gradient accumulation.
Every process draws the same batch and the data-parallel wrapper averages the gradients, so the
gradients agree up to the order of float sums (about 3e-5 of their size, batches of 8 against 2 x 4
on this CPU). Adam's first steps divide each gradient by its own size, which turns that noise in a
near-zero gradient into a visible move of that one weight; so the whole LoRA is compared, by the
norm of the difference over the norm of the LoRA. Measured: 3e-4 to 4e-4 after 3 and 6 steps (the same
for a resume with another process count); two runs with another seed: 1.4.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from browser_support import free_port
from helpers import ROOT

from lib_lcm.training.distill import STATE_FILE

pytestmark = pytest.mark.slow
# A high peak rate, so that the first steps of the warm-up already move the LoRA to about 1e-2.
STEPS = ["--batch", "8", "--rank", "4", "--alpha", "4", "--lr", "0.5", "--checkpoint-every", "1", "--seed", "3"]
TOLERANCE = 3e-3  # relative: 8 times the float noise measured, 500 times below another run's distance


def distill(out: Path, steps: int, processes: int = 1, *extra: str) -> subprocess.CompletedProcess:
    command = ["-m", "lib_lcm", "distill", "--out", str(out), "--steps", str(steps), *STEPS, *extra]
    if processes > 1:
        command = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(free_port()), *command]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def trained(out: Path) -> dict[str, torch.Tensor]:
    state = torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
    return {f"lora.{k}": v for k, v in state["lora"].items()} | {f"ema.{k}": v for k, v in state["ema"].items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    ours, theirs = (torch.cat([x[k].flatten() for k in sorted(a)]) for x in (a, b))
    distance = float((ours - theirs).norm() / ours.norm())
    assert distance < TOLERANCE, distance
    assert max(float(v.abs().max()) for k, v in a.items() if "lora_B" in k) > 1e-3  # it trained


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    distill(out, 3)
    return out


def test_two_processes_give_the_lora_of_one_with_the_same_global_batch(one_process, tmp_path):
    result = distill(tmp_path, 3, 2)
    assert_same(trained(tmp_path), trained(one_process))
    assert result.stdout.count("wrote ") == 1  # only the main process writes, and says so
    assert result.stdout.count("distill: step 3/3") == 1


def test_a_run_resumes_with_another_process_count(one_process, tmp_path):
    distill(tmp_path, 2, 2)
    resumed = distill(tmp_path, 3, 1)
    assert "resuming from step 2" in resumed.stdout
    assert_same(trained(tmp_path), trained(one_process))
