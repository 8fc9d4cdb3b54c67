"""The standalone fast path against the eager path, side by side in one run: ms per image and images/s.

    .venv/bin/python bench/fast_path_speed.py [--size 128] [--repeats 5] [--steps 1 2 4]   # CPU, tiny SD 1.5
    bench/gpu_check.py runs the same measurement as its stage 6, at full size on CUDA.

Four pipelines from one random-weight single file (the test suite's writers), the LCM-LoRA fused:
eager with the full VAE (today's ``generate``), eager with the tiny decoder, compiled with the full
VAE, compiled with the tiny decoder. Each is warmed up (compiling happens there), then every
timed image gets a new prompt and seed, as on the live page: a compiled pipeline that recompiled
for them would show it here. The runs are interleaved; each number is the median of ``--repeats``.

Then the decoders alone at their real size: the tiny models' own VAE is far smaller than a real one
(smaller even than TAESD), so the tiny decoder only shows its worth against the checkpoint's VAE built
from the shipped config.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from standalone_support import write_config_dir, write_model_with_lora_dir  # noqa: E402

from lib_lcm.rules import catalog  # noqa: E402
from lib_lcm.rules.architecture import Architecture  # noqa: E402
from lib_lcm.rules.choice import Bounds  # noqa: E402
from lib_lcm.rules.tiny_decoders import tiny_decoder_for  # noqa: E402
from lib_lcm.standalone.pipeline import Job, Options, build_pipeline  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "eager, full VAE": {},
    "eager, tiny decoder": {"decoder": "tiny"},
    "compiled, full VAE": {"compile": True},
    "compiled, tiny decoder": {"compile": True, "decoder": "tiny"},
}
ARCHITECTURES = {"sd1": Architecture.SD1, "sdxl": Architecture.SDXL}
LIVE_BOUNDS = Bounds(min_steps=catalog.LIVE_STEPS.minimum, max_steps=catalog.LCM_STEPS.maximum)


def write_tiny_decoder(architecture: Architecture, folder: Path) -> None:
    """Random weights in TAESD's layout where the fast path looks for them, so nothing is downloaded."""
    from diffusers import AutoencoderTiny

    entry = tiny_decoder_for(architecture)
    assert entry is not None
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().half() for k, v in AutoencoderTiny().state_dict().items()},
              str(folder / entry.local_filename))


def write_tiny_model(key: str, folder: Path) -> tuple[Path, Path, Path]:
    components, checkpoint, lora_dir = write_model_with_lora_dir(folder, key, lora_scale=0.01)
    return checkpoint, write_config_dir(components, folder / "config"), lora_dir


def timed(run: Callable[[], Any], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def side_by_side(checkpoint: Path, config: Path, lora_dir: Path, decoder_dir: Path, size: int, device: str,
                 steps: list[int], repeats: int, variants: dict[str, dict[str, Any]] = VARIANTS,
                 ) -> dict[str, dict[str, float]]:
    """ms per image for every variant and step count, interleaved: {variant: {"4 steps ms": ...}}."""
    pipelines = {name: build_pipeline(str(checkpoint), Options(
        lora_dir=lora_dir, config=config, device=device, decoder_dir=decoder_dir, bounds=LIVE_BOUNDS, **extra))
        for name, extra in variants.items()}
    for ready in pipelines.values():
        ready.pipe.set_progress_bar_config(disable=True)
    counter = iter(range(10**9))

    def one(name: str, n: int) -> Callable[[], Any]:
        i = next(counter)
        return lambda: pipelines[name].generate(Job(f"a cat in a hat, take {i}", steps=n, seed=i,
                                                    width=size, height=size))

    for name in pipelines:
        for n in steps:
            one(name, n)()
            one(name, n)()  # warm-up: compiling, CUDA graphs recorded, allocator
    times: dict[tuple[str, int], list[float]] = {(name, n): [] for name in pipelines for n in steps}
    for _ in range(repeats):
        for name, n in times:
            times[name, n].append(timed(one(name, n), device))
    return {name: {f"{n} steps ms": statistics.median(times[name, n]) * 1000 for n in steps} for name in pipelines}


def live_images_per_second(checkpoint: Path, config: Path, lora_dir: Path, decoder_dir: Path, size: int,
                           device: str, frames: int, **extra: Any) -> float:
    """The live page's engine and renderer (JPEG encoding included) kept busy by a client that sends the
    next prompt as soon as a picture arrives: pictures per second of wall time, 2 steps, after warm-up."""
    from lib_lcm.live.engine import LiveEngine, LiveRequest
    from lib_lcm.live.render import PipelineRenderer

    ready = build_pipeline(str(checkpoint), Options(lora_dir=lora_dir, config=config, device=device,
                                                    decoder_dir=decoder_dir, bounds=LIVE_BOUNDS, **extra))
    renderer = PipelineRenderer(ready, (size, size))
    engine = LiveEngine(renderer)
    try:
        renderer.warm_up(engine)
        def one(i: int) -> None:
            number = engine.submit(LiveRequest(f"a lighthouse, take {i}", steps=2, seed=i))
            frame = engine.latest(after=number - 1, timeout=600)
            assert frame is not None and frame.error is None, frame

        one(-1)
        start = time.perf_counter()
        for i in range(frames):
            one(i)
        return frames / (time.perf_counter() - start)
    finally:
        engine.close()


@torch.no_grad()
def decoders_at_full_size(architecture: Architecture, size: int, repeats: int) -> dict[str, float]:
    """The checkpoint's VAE decoder at its real size (the shipped config, random weights) against the
    tiny autoencoder, decoding one latent: the tiny models' own VAE is far smaller than a real one."""
    import json

    from diffusers import AutoencoderKL, AutoencoderTiny

    from lib_lcm.standalone.model_loading import CONFIGS

    key = {Architecture.SD1: "sd15", Architecture.SDXL: "sdxl"}[architecture]
    config = json.loads((CONFIGS / key / "vae" / "config.json").read_text(encoding="utf-8"))
    full, tiny = AutoencoderKL.from_config(config).eval(), AutoencoderTiny().eval()
    latents = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {"full VAE decode ms": [], "tiny decoder decode ms": []}
    for _ in range(repeats + 1):  # the first pass warms up
        times["full VAE decode ms"].append(timed(lambda: full.decode(latents), "cpu"))
        times["tiny decoder decode ms"].append(timed(lambda: tiny.decode(latents), "cpu"))
    return {name: statistics.median(values[1:]) * 1000 for name, values in times.items()}


def report(results: dict[str, dict[str, float]], steps: list[int]) -> str:
    eager = results["eager, full VAE"]
    header = " | ".join(f"{n} steps: ms, images/s, vs eager" for n in steps)
    lines = [f"| variant | {header} |", "|---" * (len(steps) + 1) + "|"]
    for name, row in results.items():
        cells = [f"{row[f'{n} steps ms']:.1f}, {1000 / row[f'{n} steps ms']:.1f}/s, "
                 f"{eager[f'{n} steps ms'] / row[f'{n} steps ms']:.2f}x" for n in steps]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="sd1")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (multiple of 8)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode-size", type=int, default=256, help="image side for the decoder comparison")
    args = parser.parse_args()
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="lcm-fast-path-") as scratch:
        folder = Path(scratch)
        checkpoint, config, lora_dir = write_tiny_model(args.architecture, folder)
        write_tiny_decoder(ARCHITECTURES[args.architecture], folder / "decoders")
        results = side_by_side(checkpoint, config, lora_dir, folder / "decoders", args.size, "cpu", args.steps,
                               args.repeats)
    print(f"{args.architecture}, tiny random model at {args.size}², CPU, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}:")
    print(report(results, args.steps))
    decoders = decoders_at_full_size(ARCHITECTURES[args.architecture], args.decode_size, args.repeats)
    print(f"decoders at their real size, one {args.decode_size}² image: " + ", ".join(
        f"{name} {ms:.0f}" for name, ms in decoders.items())
        + f" ({decoders['full VAE decode ms'] / decoders['tiny decoder decode ms']:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
