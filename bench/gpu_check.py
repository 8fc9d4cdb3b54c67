"""The project's GPU check: every CUDA path run and timed, side by side in one run.

    .venv/bin/python bench/gpu_check.py [--out gpu-check.json]      # on CUDA: full-size SD 1.5 and SDXL
    .venv/bin/python bench/gpu_check.py --tiny                      # on the CPU: tiny models (CI runs this)

It writes random-weight single files in the original layout with the test suite's writers (full-size
from the configs lib_lcm ships, or tiny) and an acceleration LoRA in the official kohya layout, then:

1. ``generate``: 4 LCM steps at CFG 1 against 25 DPM-Solver++ steps at CFG 7 on the same fused pipeline,
   interleaved, median of ``--repeats`` (SD 1.5 at 512², SDXL at 1024²);
2. the floor of one image: text encoding, 4 UNet calls and the VAE decode, timed bare;
3. a cold ``python -m lib_lcm generate`` process, start to PNG;
4. ``distill --checkpoint``: iterations/s, images/s and peak memory, as one process and under
   ``accelerate launch`` (one process per GPU; two CPU processes with --tiny);
5. ``lib_lcm.sampling`` (the WebUI path's samplers) in the pipeline's precision against diffusers'
   LCMScheduler and TCDScheduler: the largest difference of the final latents, and time per image;
6. the fast path (bench/fast_path_speed.py): eager against compiled, full VAE against the tiny decoder,
   at 1, 2 and 4 steps (--tiny: 4 steps, eager only: compiling on the CPU takes minutes); the live
   page's engine kept busy at 2 steps (images/s); on CUDA the peak memory of each --offload.

Prints a table and writes the numbers as JSON. The GPU has torch; diffusers, transformers, peft and
accelerate travel as wheels (see docs/distillation.md).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import fast_path_speed as fast_path  # noqa: E402  (beside this file)
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from sampling_support import (  # noqa: E402
    ALPHAS_CUMPROD,
    RESIDUAL,
    Conditioning,
    KDiffusionStyleDenoiser,
    diffusers_loop,
    lcm_scheduler,
    schedule_of,
    seeded_noise,
    tcd_scheduler,
)
from standalone_support import (  # noqa: E402
    full_components,
    kohya_lora,
    tiny_components,
    write_checkpoint,
    write_config_dir,
)

from lib_lcm.rules import catalog  # noqa: E402
from lib_lcm.rules.architecture import Architecture  # noqa: E402
from lib_lcm.sampling.samplers import sample_lcm, sample_tcd  # noqa: E402
from lib_lcm.sampling.schedule import lcm_timesteps  # noqa: E402
from lib_lcm.standalone.model_loading import reference_scheduler  # noqa: E402
from lib_lcm.standalone.pipeline import Job, Options, build_pipeline  # noqa: E402

ARCHITECTURES = {"sd1": Architecture.SD1, "sdxl": Architecture.SDXL}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (what CI runs)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--distill-steps", type=int, default=20)
    parser.add_argument("--only", choices=sorted(ARCHITECTURES), help="one architecture")
    parser.add_argument("--out", type=Path, help="write the numbers here as JSON")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("no CUDA device: run with --tiny for the CPU check", file=sys.stderr)
        return 2
    device = "cuda" if cuda else "cpu"
    _quiet()
    results: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "tiny": args.tiny}
    with tempfile.TemporaryDirectory(prefix="lcm-gpu-check-") as scratch:
        for key in [args.only] if args.only else list(ARCHITECTURES):
            results[key] = check(key, Path(scratch) / key, device, args)
            print(report(key, results[key]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def check(key: str, folder: Path, device: str, args: argparse.Namespace) -> dict[str, Any]:
    folder.mkdir(parents=True)
    size = 64 if args.tiny else (512 if key == "sd1" else 1024)
    checkpoint, config, lora_dir = write_model(key, folder, args.tiny, device)
    ready = build_pipeline(str(checkpoint), Options(lora_dir=lora_dir, config=config, device=device))
    out: dict[str, Any] = {"size": size, "dtype": str(ready.pipe.unet.dtype).removeprefix("torch.")}
    out["generate"] = generate_side_by_side(ready, size, device, args.repeats)
    out["floor"] = floor(ready, size, device, args.repeats)
    out["cold_generate_s"] = cold_generate(checkpoint, config, lora_dir, size, device, folder)
    images = write_images(folder / "images", size)
    processes = torch.cuda.device_count() if device == "cuda" else 2
    out["distill"] = {
        "one process": distill(checkpoint, config, images, size, device, folder / "d1", args, None),
        f"accelerate launch, {processes} process(es)": distill(checkpoint, config, images, size, device,
                                                               folder / "d2", args, processes)}
    out["sampling"] = sampling_against_diffusers(ready, size, device, args.repeats)
    del ready
    if device == "cuda":
        torch.cuda.empty_cache()
    out["fast_path"] = fast_path_stage(key, checkpoint, config, lora_dir, folder, size, device, args)
    if device == "cuda":
        out["offload_peak_gib"] = offload_memory(checkpoint, config, lora_dir, size, device)
    return out


def fast_path_stage(key: str, checkpoint: Path, config: Path, lora_dir: Path, folder: Path, size: int, device: str,
                    args: argparse.Namespace) -> dict[str, Any]:
    decoders = folder / "decoders"
    fast_path.write_tiny_decoder(ARCHITECTURES[key], decoders)
    # --tiny compiles nothing: on the CPU that takes minutes (tests/test_standalone_fast.py covers it)
    variants = fast_path.VARIANTS if not args.tiny else {
        name: fast_path.VARIANTS[name] for name in ("eager, full VAE", "eager, tiny decoder")}
    steps = [4] if args.tiny else [1, 2, 4]
    result: dict[str, Any] = fast_path.side_by_side(checkpoint, config, lora_dir, decoders, size, device, steps,
                                                    args.repeats, variants)
    live = "live page, 2 steps, tiny decoder" + ("" if args.tiny else ", compiled") + ": images/s"
    result[live] = fast_path.live_images_per_second(checkpoint, config, lora_dir, decoders, size, device,
                                                    frames=5 if args.tiny else 60, decoder="tiny",
                                                    compile=not args.tiny)
    return result


def offload_memory(checkpoint: Path, config: Path, lora_dir: Path, size: int, device: str) -> dict[str, float]:
    """Peak GPU memory of one 4-step image with each --offload (weights in CPU memory as they wait)."""
    import gc

    peaks = {}
    for offload in ("none", "model", "sequential"):
        torch._dynamo.reset()  # the compiled graphs of stage 6 hold memory (CUDA graph pools)
        gc.collect()
        torch.cuda.empty_cache()
        baseline = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        ready = build_pipeline(str(checkpoint), Options(lora_dir=lora_dir, config=config, device=device,
                                                        offload=offload))
        ready.generate(Job("a cat in a hat", steps=4, seed=1, width=size, height=size))
        peaks[offload] = (torch.cuda.max_memory_allocated() - baseline) / 2**30
        del ready
    return peaks


def write_model(key: str, folder: Path, tiny: bool, device: str) -> tuple[Path, Path, Path]:
    components = tiny_components(key) if tiny else full_components(key, device=device)
    components = {name: model.to("cpu", torch.float16 if not tiny else torch.float32)
                  for name, model in components.items()}
    checkpoint = write_checkpoint(folder / f"random-{key}.safetensors", components, key)
    config = write_config_dir(components, folder / "config")
    lora_dir = folder / "Lora"
    lora_dir.mkdir()
    entry = catalog.for_architecture(ARCHITECTURES[key])
    assert entry is not None
    lora = kohya_lora(components["unet"].float(), rank=8 if tiny else 64, scale=0.01)
    save_file({k: v.half() for k, v in lora.items()}, str(lora_dir / entry.local_filename))
    return checkpoint, config, lora_dir


def timed(run: Callable[[], Any], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def generate_side_by_side(ready: Any, size: int, device: str, repeats: int) -> dict[str, float]:
    """The recipe against the usual 25 DPM-Solver++ steps at CFG 7, on the same fused pipeline."""
    lcm_scheduler = ready.pipe.scheduler
    dpm = reference_scheduler("dpm", ready.entry.architecture)

    def lcm() -> None:
        ready.pipe.scheduler = lcm_scheduler
        ready.generate(Job("a cat in a hat", steps=4, cfg=1.0, seed=1, width=size, height=size))

    def baseline() -> None:
        ready.pipe.scheduler = dpm
        ready.pipe("a cat in a hat", num_inference_steps=25, guidance_scale=7.0, width=size, height=size,
                   generator=torch.Generator("cpu").manual_seed(1))

    ready.pipe.set_progress_bar_config(disable=True)
    for run in (lcm, baseline):
        run()  # warm-up: kernels, allocator
    times: dict[str, list[float]] = {"lcm": [], "dpm": []}
    for _ in range(repeats):
        times["lcm"].append(timed(lcm, device))
        times["dpm"].append(timed(baseline, device))
    ready.pipe.scheduler = lcm_scheduler
    lcm_s, dpm_s = statistics.median(times["lcm"]), statistics.median(times["dpm"])
    return {"lcm_4_steps_s": lcm_s, "dpm_25_steps_s": dpm_s, "speed_up": dpm_s / lcm_s}


@torch.no_grad()
def floor(ready: Any, size: int, device: str, repeats: int) -> dict[str, float]:
    """What no sampler can skip: the prompt's encoding, 4 UNet calls and the VAE decode."""
    pipe = ready.pipe
    unet, vae = pipe.unet, pipe.vae
    latents = torch.randn(1, unet.config.in_channels, size // 8, size // 8, device=device, dtype=unet.dtype)
    xl = "text_encoder_2" in pipe.components and pipe.text_encoder_2 is not None

    def encode() -> Any:
        if xl:
            return pipe.encode_prompt("a cat in a hat", device=device, num_images_per_prompt=1,
                                      do_classifier_free_guidance=False)
        return pipe.encode_prompt("a cat in a hat", device, 1, False)

    encoded = encode()
    added = None
    if xl:
        time_ids = torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=unet.dtype)
        added = {"text_embeds": encoded[2], "time_ids": time_ids}

    def unet_calls() -> None:
        for t in (999, 759, 499, 259):
            unet(latents, t, encoder_hidden_states=encoded[0], added_cond_kwargs=added)

    def decode() -> None:
        vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor)

    result = {}
    for name, run in (("text_encode_s", encode), ("unet_4_calls_s", unet_calls), ("vae_decode_s", decode)):
        run()
        result[name] = statistics.median(timed(run, device) for _ in range(repeats))
    result["sum_s"] = sum(result.values())
    return result


def cold_generate(checkpoint: Path, config: Path, lora_dir: Path, size: int, device: str, folder: Path) -> float:
    command = [sys.executable, "-m", "lib_lcm", "generate", "--checkpoint", str(checkpoint), "--config", str(config),
               "--lora-dir", str(lora_dir), "--prompt", "a cat in a hat", "--size", f"{size}x{size}", "--seed", "1",
               "--device", device, "--out", str(folder / "cold")]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=_environment())
    return time.perf_counter() - start


def write_images(folder: Path, size: int, count: int = 8) -> Path:
    folder.mkdir()
    generator = torch.Generator().manual_seed(0)
    for i in range(count):
        pixels = (torch.rand(size, size, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"a random picture number {i}", encoding="utf-8")
    return folder


def distill(checkpoint: Path, config: Path, images: Path, size: int, device: str, out: Path,
            args: argparse.Namespace, processes: int | None) -> dict[str, float]:
    """``processes`` None: plain ``python -m lib_lcm distill``; else under ``accelerate launch`` with that many."""
    per_process = 2 if args.tiny else 4
    count = processes or 1
    command = ["-m", "lib_lcm", "distill", "--checkpoint", str(checkpoint), "--config", str(config), "--images",
               str(images), "--out", str(out), "--size", str(size), "--steps", str(args.distill_steps),
               "--batch", str(per_process * count), "--rank", "8" if args.tiny else "64", "--device", device]
    if processes is not None:
        launcher = ["--multi_gpu"] if processes > 1 else []  # accelerate's torchrun launcher; CPU processes too
        command = ["-m", "accelerate.commands.launch", *launcher, "--num_processes", str(processes),
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *command]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *command], cwd=ROOT, check=True, capture_output=True, text=True,
                            env=_environment())
    elapsed = time.perf_counter() - start
    speeds = [float(m) for m in re.findall(r"([\d.]+) images/s", result.stdout)]
    peak = re.findall(r"peak GPU memory ([\d.]+) GiB", result.stdout)
    images_per_s = speeds[-1] if speeds else 0.0
    return {"processes": count, "global_batch": per_process * count, "images_per_s": images_per_s,
            "iterations_per_s": images_per_s / (per_process * count), "wall_s": elapsed,
            "peak_gib": float(peak[-1]) if peak else 0.0}


class _DeviceEps:
    """The pipeline's UNet as the oracle's epsilon model (tests/sampling_support.CountingUnet): the exact noise
    predictor for unit-Gaussian latents plus 0.1 of the random UNet, so latents stay SD-sized; the UNet runs in
    the pipeline's precision, the rest in float32."""

    def __init__(self, unet: Any, added: dict[str, torch.Tensor] | None) -> None:
        self.unet, self.added = unet, added

    def eps(self, x_vp: torch.Tensor, t: int, context: torch.Tensor) -> torch.Tensor:
        residual = self.unet(x_vp.to(self.unet.dtype), t, encoder_hidden_states=context,
                             added_cond_kwargs=self.added).sample.float()
        return (1 - ALPHAS_CUMPROD[int(t)]).sqrt().to(x_vp) * x_vp + RESIDUAL * residual

    def guided_eps(self, x_vp: torch.Tensor, t: int, c: Conditioning) -> torch.Tensor:
        return self.eps(x_vp, t, c.cond)


@torch.no_grad()
def sampling_against_diffusers(ready: Any, size: int, device: str, repeats: int) -> dict[str, Any]:
    """lib_lcm.sampling with the UNet in the pipeline's precision against diffusers' schedulers: same UNet,
    start and noise on both sides (tests/test_sampling_oracle.py's bar, 1e-5, is for float32 on the CPU)."""
    unet = ready.pipe.unet
    shape = (1, unet.config.in_channels, size // 8, size // 8)
    context = torch.randn(1, 77, unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(2))
    added = None
    if unet.config.addition_embed_type == "text_time":  # SDXL: pooled text embeddings and size ids
        width = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
        pooled = torch.randn(1, width, generator=torch.Generator().manual_seed(3)).to(device, unet.dtype)
        added = {"text_embeds": pooled,
                 "time_ids": torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=unet.dtype)}
    c = Conditioning(context.to(device, unet.dtype), context.to(device, unet.dtype))
    start = torch.randn(shape, generator=torch.Generator().manual_seed(7)).to(device)
    model = _DeviceEps(unet, added)
    return {"lcm": _compare(model, c, start, lcm_scheduler(), sample_lcm, {}, device, repeats),
            "tcd": _compare(model, c, start, tcd_scheduler(), sample_tcd, {"gamma": catalog.TCD_GAMMA}, device,
                            repeats)}


def _compare(model: _DeviceEps, c: Conditioning, start: torch.Tensor, scheduler: Any, sampler: Any,
             extra: dict[str, float], device: str, repeats: int) -> dict[str, float]:
    scheduler.set_timesteps(4)
    schedule = schedule_of(scheduler)
    eta = {"eta": extra["gamma"]} if extra else {}

    def theirs() -> torch.Tensor:
        return diffusers_loop(scheduler, model, start, c, seed=3, **eta)  # type: ignore[arg-type]

    def ours() -> torch.Tensor:
        sigmas = schedule.sigmas_for(lcm_timesteps(4)).to(device)
        draw = seeded_noise(start.shape, 3)
        x = start * (1 + sigmas[0] ** 2) ** 0.5
        return sampler(KDiffusionStyleDenoiser(model, schedule, c), x, sigmas,  # type: ignore[arg-type]
                       noise_sampler=lambda s, n: draw(s, n).to(x), schedule=schedule, **extra)

    reference = theirs()
    return {"max_difference": float((reference - ours()).abs().max()), "latent_scale": float(reference.abs().max()),
            "lib_lcm_s": statistics.median(timed(ours, device) for _ in range(repeats)),
            "diffusers_s": statistics.median(timed(theirs, device) for _ in range(repeats))}


def report(key: str, r: dict[str, Any]) -> str:
    g, f = r["generate"], r["floor"]
    lines = [f"{key} at {r['size']}², {r['dtype']}:",
             f"  generate: 4 LCM steps {g['lcm_4_steps_s'] * 1000:.0f} ms, 25 DPM-Solver++ steps "
             f"{g['dpm_25_steps_s'] * 1000:.0f} ms ({g['speed_up']:.1f}x)",
             f"  floor: text {f['text_encode_s'] * 1000:.0f} ms + 4 UNet calls {f['unet_4_calls_s'] * 1000:.0f} ms + "
             f"VAE decode {f['vae_decode_s'] * 1000:.0f} ms = {f['sum_s'] * 1000:.0f} ms",
             f"  cold generate process: {r['cold_generate_s']:.1f} s"]
    for name, d in r["distill"].items():
        lines.append(f"  distill, {name}: {d['iterations_per_s']:.2f} it/s, {d['images_per_s']:.1f} images/s "
                     f"(global batch {d['global_batch']}), peak {d['peak_gib']:.1f} GiB")
    for kind, s in r["sampling"].items():
        lines.append(f"  {kind}: lib_lcm.sampling {s['lib_lcm_s'] * 1000:.0f} ms, diffusers "
                     f"{s['diffusers_s'] * 1000:.0f} ms, largest difference {s['max_difference']:.1e} "
                     f"(latents up to {s['latent_scale']:.1f})")
    for name, row in r["fast_path"].items():
        numbers = row.items() if isinstance(row, dict) else [("", row)]
        lines.append(f"  fast path, {name}: " + ", ".join(f"{k} {v:.1f}".strip() for k, v in numbers))
    if "offload_peak_gib" in r:
        lines.append("  generate peak memory by --offload: " + ", ".join(
            f"{k} {v:.2f} GiB" for k, v in r["offload_peak_gib"].items()))
    return "\n".join(lines)


def _quiet() -> None:
    """diffusers' per-load notes ("No LoRA keys associated to CLIPTextModel …") say nothing here."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()


def _environment() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


if __name__ == "__main__":
    sys.exit(main())
