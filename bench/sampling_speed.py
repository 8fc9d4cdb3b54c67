"""Sampling speed, side by side in one run: our LCM vs the WebUI's, and 4 LCM steps vs 25 Euler a.

Part 1, always: a tiny SD-shaped UNet on the CPU (lib_lcm.standalone.speed_demo's, random weights), driven the way
the WebUI drives it (a k-diffusion denoiser with classifier-free guidance on one cond+uncond batch):
- "ours CFG 1": lib_lcm.sampling.schedule.sample_lcm, unconditional pass skipped (what the extension does);
- "WebUI LCM CFG 1": the WebUI's LCM algorithm (modules/sd_samplers_lcm.py: 50-step grid denoiser
  with the boundary scalings inside), computing cond and uncond as A1111's CFGDenoiser does;
- the same two at CFG 1.5 (both compute both passes: the goal is no overhead);
- "Euler a 25 @ CFG 7" (k-diffusion's sample_euler_ancestral maths) against ours at 4 steps, CFG 1.

Part 2, when WEBUI_URL is set: the same comparisons through a real WebUI's /sdapi/v1/txt2img, the
built-in run being the WebUI's "LCM" with the LoRA tag typed into the prompt and the accordion off,
plus the WebUI's own opt-in skip (skip_early_cond = 1) as the floor for the CFG-1 comparison. UNet
calls there are derived from the infotext (steps, and whether the uncond pass was skipped). Wall
times include what every image pays besides the UNet (text encoder, VAE decode), so on a CPU they
approach the UNet-only ratios only at large sizes.

Goals (issue #4): ours/WebUI at CFG 1 <= 0.50; at CFG 1.5 <= 1.02; Euler a 25 / ours 4 >= 12.

    .venv/bin/python bench/sampling_speed.py [--repeats 5] [--latent 32]
    WEBUI_URL=http://127.0.0.1:7860 [WEBUI_LORA_DIR=...] .venv/bin/python bench/sampling_speed.py --size 256
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from lib_lcm.sampling.samplers import sample_lcm  # noqa: E402
from lib_lcm.sampling.schedule import NoiseSchedule, boundary_scalings, lcm_timesteps  # noqa: E402
from lib_lcm.standalone.speed_demo import build_pipeline  # noqa: E402

GOALS = {"cfg1": ("<=", 0.50), "cfg15": ("<=", 1.02), "euler": (">=", 12.0), "own": ("<=", 0.50)}


@dataclass
class Timed:
    label: str
    seconds: float
    unet_calls: int
    unet_evaluations: int


class Counter:
    def __init__(self) -> None:
        self.calls = self.evaluations = 0


def denoiser(unet: torch.nn.Module, schedule: NoiseSchedule, cond: torch.Tensor, uncond: torch.Tensor, cfg: float,
             skip_uncond: bool, counter: Counter, snap: Callable[[float], int]) -> Callable[..., torch.Tensor]:
    """The WebUI's CFGDenoiser around CompVisDenoiser: one UNet call per step, cond (+ uncond) batched."""
    def model(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        t = snap(float(sigma[0]))
        s = sigma.view(-1, 1, 1, 1)
        x_in = x / (s**2 + 1) ** 0.5
        if skip_uncond:
            batch, context = x_in, cond
        else:
            batch, context = torch.cat([x_in, x_in]), torch.cat([cond, uncond])
        counter.calls += 1
        counter.evaluations += batch.shape[0]
        eps = unet(batch, t, encoder_hidden_states=context).sample
        copies = batch.shape[0] // x.shape[0]
        outputs = x.repeat(copies, 1, 1, 1) - s.repeat(copies, 1, 1, 1) * eps
        if skip_uncond:
            return outputs
        c, u = outputs.chunk(2)
        return u + (c - u) * cfg
    return model


def webui_lcm(model: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor, grid_t: Callable[[float], int],
              generator: torch.Generator) -> torch.Tensor:
    """modules/sd_samplers_lcm.py: the boundary scalings applied inside the denoiser, then x = denoised (+ noise)."""
    for i in range(len(sigmas) - 1):
        x0 = model(x, sigmas[i] * x.new_ones(x.shape[0]))
        c_skip, c_out = boundary_scalings(grid_t(float(sigmas[i])))
        x = c_out * x0 + c_skip * x
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * torch.randn(x.shape, generator=generator)
    return x


def euler_ancestral(model: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor,
                    generator: torch.Generator) -> torch.Tensor:
    """k-diffusion's sample_euler_ancestral with eta 1."""
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * x.new_ones(x.shape[0]))
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        sigma_up = min(s_next, (s_next**2 * (s**2 - s_next**2) / s**2) ** 0.5)
        sigma_down = (s_next**2 - sigma_up**2) ** 0.5
        x = x + (x - denoised) / s * (sigma_down - s)
        if s_next > 0:
            x = x + torch.randn(x.shape, generator=generator) * sigma_up
    return x


def tiny_runs(latent: int, repeats: int) -> dict[str, Timed]:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    unet = build_pipeline(latent * 8).unet.eval()
    schedule = NoiseSchedule.scaled_linear()
    table = schedule.sigmas
    nearest = lambda sigma: int((table.log() - torch.tensor(sigma).log()).abs().argmin())  # noqa: E731
    on_grid = lambda sigma: 19 + 20 * round((nearest(sigma) - 19) / 20)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(1, 77, 32, generator=g), torch.randn(1, 77, 32, generator=g)
    start = torch.randn(1, 4, latent, latent, generator=g)
    exact = schedule.sigmas_for(lcm_timesteps(4))
    karras_free = torch.cat([table[torch.linspace(999, 0, 25).round().long()], table.new_zeros(1)])

    def ours(cfg: float, counter: Counter) -> None:
        model = denoiser(unet, schedule, cond, uncond, cfg, cfg == 1.0, counter, nearest)
        sample_lcm(model, start * exact[0], exact, schedule=schedule,
                   noise_sampler=lambda s, n: torch.randn(start.shape, generator=torch.Generator().manual_seed(1)))

    def builtin(cfg: float, counter: Counter) -> None:
        webui_lcm(denoiser(unet, schedule, cond, uncond, cfg, False, counter, on_grid), start * exact[0], exact,
                  on_grid, torch.Generator().manual_seed(1))

    def euler(counter: Counter) -> None:
        euler_ancestral(denoiser(unet, schedule, cond, uncond, 7.0, False, counter, nearest),
                        start * karras_free[0], karras_free, torch.Generator().manual_seed(1))

    runs: dict[str, Callable[[Counter], None]] = {
        "ours CFG 1": lambda c: ours(1.0, c), "WebUI LCM CFG 1": lambda c: builtin(1.0, c),
        "ours CFG 1.5": lambda c: ours(1.5, c), "WebUI LCM CFG 1.5": lambda c: builtin(1.5, c),
        "Euler a 25 CFG 7": euler,
    }
    return measure(runs, repeats)


def measure(runs: dict[str, Callable[[Counter], None]], repeats: int,
            cleanup: Callable[[str], None] = lambda label: None) -> dict[str, Timed]:
    """Interleaved: every repeat runs each in turn, so drift hits all alike; the median is reported."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    counts: dict[str, Counter] = {}
    with torch.no_grad():
        for label, run in runs.items():  # untimed warm-up
            run(Counter())
            cleanup(label)
        for _ in range(repeats):
            for label, run in runs.items():
                counter = Counter()
                begin = time.perf_counter()
                run(counter)
                times[label].append(time.perf_counter() - begin)
                counts[label] = counter
                cleanup(label)
    return {label: Timed(label, statistics.median(times[label]), counts[label].calls, counts[label].evaluations)
            for label in runs}


def webui_runs(url: str, size: int, repeats: int, euler: bool = True) -> dict[str, Timed]:
    from e2e_support import Api

    api = Api(url)
    entry_name = ensure_lora(api)
    tag = f"<lora:{entry_name}:1>"
    base = {"prompt": "a cat", "negative_prompt": "blurry", "width": size, "height": size, "seed": 3,
            "save_images": False, "send_images": False}
    ours = lambda cfg: {**base, "alwayson_scripts": {"LCM-LoRA": {"args": [True, 1.0, 4, cfg]}}}  # noqa: E731
    builtin = lambda cfg: {**base, "prompt": f"a cat {tag}", "sampler_name": "LCM",  # noqa: E731
                           "scheduler": "SGM Uniform", "steps": 4, "cfg_scale": cfg}
    bodies = {"ours CFG 1": ours(1.0), "WebUI LCM CFG 1": builtin(1.0),
              # the WebUI's own opt-in skip (Settings: "Ignore negative prompt during early sampling" = 1)
              "WebUI LCM CFG 1 own": {**builtin(1.0), "override_settings": {"skip_early_cond": 1.0}},
              "ours CFG 1.5": ours(1.5),
              "WebUI LCM CFG 1.5": builtin(1.5),
              "Euler a 25 CFG 7": {**base, "prompt": f"a cat {tag}", "sampler_name": "Euler a",
                                   "scheduler": "Automatic", "steps": 25, "cfg_scale": 7.0}}
    if not euler:
        del bodies["Euler a 25 CFG 7"]
    infos: dict[str, str] = {}

    original_skip = api.get("/sdapi/v1/options")["skip_early_cond"]

    def call(label: str) -> Callable[[Counter], None]:
        def run(counter: Counter) -> None:
            info = json.loads(api.post("/sdapi/v1/txt2img", bodies[label])["info"])
            text = info["infotexts"][0]
            if label.startswith("ours") and "LCM-LoRA timesteps" not in text:
                raise SystemExit(f"the extension did not run in the WebUI: {text}")
            skipped = "LCM-LoRA uncond: skipped" in text or "Skip Early CFG" in text
            counter.calls += info["steps"]
            counter.evaluations += info["steps"] * (1 if skipped else 2)
            infos[label] = text
        return run

    def cleanup(label: str) -> None:
        if "override_settings" in bodies[label]:
            restore_skip_early_cond(api, original_skip)

    return measure({label: call(label) for label in bodies}, repeats, cleanup)


def restore_skip_early_cond(api: object, value: float) -> None:
    """A1111 restores an overridden setting only if config.json already held it (modules/processing.py
    process_images: stored_opts keeps keys found in opts.data), so an override of a built-in setting the
    user never saved stays in memory. Set it back with a 1-step generation that keeps its override
    (untimed; never through /sdapi/v1/options, which would write the user's config.json)."""
    api.post("/sdapi/v1/txt2img", {"prompt": "", "steps": 1, "width": 64, "height": 64, "save_images": False,
                                   "send_images": False, "override_settings": {"skip_early_cond": value},
                                   "override_settings_restore_afterwards": False})


def ensure_lora(api: object) -> str:
    from e2e_support import LAYOUTS, write_random_lora

    from lib_lcm.lora_files.header import detect_file
    from lib_lcm.rules import catalog
    from lib_lcm.rules.architecture import Architecture

    current = api.get("/sdapi/v1/options")["sd_model_checkpoint"]
    models = api.get("/sdapi/v1/sd-models")
    entry_model = next((m for m in models if current in (m["title"], m["model_name"])), models[0])
    architecture = detect_file(entry_model["filename"]).architecture
    entry = catalog.for_architecture(architecture) or catalog.for_architecture(Architecture.SD1)
    lora_dir = os.environ.get("WEBUI_LORA_DIR")
    if lora_dir and not (Path(lora_dir) / entry.local_filename).exists():
        write_random_lora(Path(lora_dir) / entry.local_filename, LAYOUTS[architecture])  # left for the next run
        api.post("/sdapi/v1/refresh-loras")
    if entry.local_name not in {item["name"] for item in api.get("/sdapi/v1/loras")}:
        raise SystemExit(f"{entry.local_filename} is not in the WebUI's Lora list; set WEBUI_LORA_DIR to write one")
    return entry.local_name


def report(title: str, results: dict[str, Timed]) -> None:
    print(f"\n{title}", flush=True)
    print(f"{'run':<20} {'UNet calls':>10} {'UNet evals':>10} {'median ms':>10}")
    for r in results.values():
        print(f"{r.label:<20} {r.unet_calls:>10} {r.unet_evaluations:>10} {r.seconds * 1000:>10.1f}")
    ratios = {
        "cfg1": ("ours CFG 1 / WebUI LCM CFG 1", results["ours CFG 1"].seconds / results["WebUI LCM CFG 1"].seconds),
        "cfg15": ("ours CFG 1.5 / WebUI LCM CFG 1.5",
                  results["ours CFG 1.5"].seconds / results["WebUI LCM CFG 1.5"].seconds),
    }
    if "WebUI LCM CFG 1 own" in results:
        ratios["own"] = ("WebUI own skip / WebUI LCM CFG 1",
                         results["WebUI LCM CFG 1 own"].seconds / results["WebUI LCM CFG 1"].seconds)
    if "Euler a 25 CFG 7" in results:
        ratios["euler"] = ("Euler a 25 CFG 7 / ours 4 CFG 1",
                           results["Euler a 25 CFG 7"].seconds / results["ours CFG 1"].seconds)
    for key, (label, value) in ratios.items():
        op, goal = GOALS[key]
        met = value <= goal if op == "<=" else value >= goal
        print(f"  {label:<34} {value:6.2f}  (goal {op} {goal:g}: {'met' if met else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latent", type=int, default=64,
                        help="latent side of the tiny UNet runs (64: SD 1.5 at 512x512)")
    parser.add_argument("--size", type=int, default=256, help="image side for the WebUI runs")
    parser.add_argument("--webui-only", action="store_true", help="skip the tiny UNet part")
    parser.add_argument("--no-euler", action="store_true", help="WebUI part: leave out the slow 25-step run")
    args = parser.parse_args()
    if not args.webui_only:
        report(f"Tiny UNet, latent {args.latent}x{args.latent}, CPU, {args.repeats} interleaved repeats",
               tiny_runs(args.latent, args.repeats))
    url = os.environ.get("WEBUI_URL", "").rstrip("/")
    if url:
        report(f"Real WebUI at {url}, {args.size}x{args.size}, {args.repeats} interleaved repeats (calls derived)",
               webui_runs(url, args.size, args.repeats, euler=not args.no_euler))
    else:
        print("\n(set WEBUI_URL to a running WebUI with --api to compare there too)")


if __name__ == "__main__":
    main()
