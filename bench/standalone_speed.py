"""The standalone path, side by side in one run: 4 LCM steps at CFG 1 vs 25 DPM-Solver++ steps at CFG 7.

Both runs use the same pipeline, built the way ``python -m lib_lcm generate`` builds it: a tiny
SD 1.5-shaped checkpoint written in the original single-file layout (random weights, the test
suite's writer), loaded with ``lib_lcm.standalone.pipeline.build_pipeline``, and the LCM-LoRA fused. The
baseline swaps in DPMSolverMultistepScheduler (dpmsolver++) on that same pipeline. The runs are
interleaved and each reports the median of ``--repeats`` passes. The output gives UNet calls,
UNet evaluations (latents through the UNet: x2 with CFG) and the wall-time ratio.

    .venv/bin/python bench/standalone_speed.py [--size 256] [--repeats 5]

Goal (issue #6): the 4-step recipe makes 4 UNet calls against 25 with a doubled batch, so the
wall-time ratio should approach 12.5 as the UNet dominates (larger --size).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from standalone_support import kohya_lora, tiny_components, write_checkpoint, write_config_dir  # noqa: E402

from lib_lcm.standalone.pipeline import Job, Options, VisitedTimesteps, build_pipeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (multiple of 8)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    with tempfile.TemporaryDirectory() as folder:
        ready = _ready(Path(folder))
        lcm, baseline = _runs(ready, args.size)
        times = {"lcm": [], "baseline": []}
        calls = {}
        for run in (lcm, baseline):  # untimed warm-up
            run()
        for _ in range(args.repeats):
            for name, run in (("lcm", lcm), ("baseline", baseline)):
                start = time.perf_counter()
                calls[name] = run()
                times[name].append(time.perf_counter() - start)
    _report(args.size, times, calls)


def _ready(folder: Path):  # noqa: ANN202 -- a ReadyPipeline
    components = tiny_components("sd1")
    checkpoint = write_checkpoint(folder / "tiny-sd15.safetensors", components, "sd1")
    (folder / "Lora").mkdir()
    save_file(kohya_lora(components["unet"], rank=4), str(folder / "Lora" / "lcm-lora-sdv1-5.safetensors"))
    return build_pipeline(str(checkpoint), Options(lora_dir=folder / "Lora",
                                                   config=write_config_dir(components, folder / "config")))


def _runs(ready, size: int):  # noqa: ANN001, ANN202
    from diffusers import DPMSolverMultistepScheduler

    ready.pipe.set_progress_bar_config(disable=True)
    lcm_scheduler = ready.pipe.scheduler
    dpm = DPMSolverMultistepScheduler.from_config(lcm_scheduler.config, algorithm_type="dpmsolver++")

    def lcm() -> tuple[int, int]:
        ready.pipe.scheduler = lcm_scheduler
        [result] = ready.generate(Job("a cat in a hat", steps=4, cfg=1.0, seed=1, width=size, height=size))
        return result.unet_calls, result.unet_calls  # CFG 1: one latent per call

    def baseline() -> tuple[int, int]:
        ready.pipe.scheduler = dpm
        with VisitedTimesteps(ready.pipe.unet) as visited:
            ready.pipe("a cat in a hat", num_inference_steps=25, guidance_scale=7.0, height=size, width=size,
                       generator=torch.Generator().manual_seed(1))
        return len(visited.timesteps), 2 * len(visited.timesteps)  # CFG 7: cond + uncond in one batch

    return lcm, baseline


def _report(size: int, times: dict[str, list[float]], calls: dict[str, tuple[int, int]]) -> None:
    lcm, base = statistics.median(times["lcm"]), statistics.median(times["baseline"])
    print(f"tiny SD 1.5-shaped single file, {size}x{size}, CPU, {torch.get_num_threads()} threads, "
          f"median of {len(times['lcm'])}")
    print(f"{'run':<34} {'UNet calls':>10} {'UNet evals':>10} {'wall ms':>9}")
    print(f"{'DPM-Solver++ 25 steps, CFG 7':<34} {calls['baseline'][0]:>10} {calls['baseline'][1]:>10} "
          f"{base * 1000:>9.1f}")
    print(f"{'LCM 4 steps, CFG 1 (generate)':<34} {calls['lcm'][0]:>10} {calls['lcm'][1]:>10} {lcm * 1000:>9.1f}")
    print(f"wall-time ratio baseline / LCM: {base / lcm:.2f}x; UNet evaluations ratio: "
          f"{calls['baseline'][1] / calls['lcm'][1]:.1f}x")


if __name__ == "__main__":
    main()
