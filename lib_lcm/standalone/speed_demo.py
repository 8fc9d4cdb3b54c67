"""``python -m lib_lcm demo``: the offline showcase, LCM and TCD at 4 steps beside a 25-step baseline.

No Stable Diffusion weights exist offline, so the pipeline is SD-shaped (UNet2DConditionModel,
AutoencoderKL with an 8x latent, CLIP text encoder, SD 1.5's scaled-linear schedule) but tiny and
random. Its pictures are noise; what is real is the work: the UNet calls, the wall time, and the
plan the WebUI extension would apply. Needs torch, diffusers and transformers (not the WebUI).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.catalog import TCD_GAMMA
from lib_lcm.rules.choice import Choice
from lib_lcm.rules.planning import Plan, Request, make_plan
from lib_lcm.standalone.model_loading import reference_scheduler


@dataclass(frozen=True)
class RunSpec:
    label: str
    scheduler: Literal["dpm", "lcm", "tcd"]
    steps: int
    cfg: float


BASELINE = RunSpec("DPM-Solver++ baseline", "dpm", 25, 7.5)
LCM = RunSpec("LCM (the extension's recipe)", "lcm", 4, 1.0)
TCD = RunSpec(f"TCD, gamma {TCD_GAMMA:g}", "tcd", 4, 1.0)
RUNS = (BASELINE, LCM, TCD)


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    unet_calls: int
    unet_evaluations: int  # latents pushed through the UNet: calls x batch (2 per call with CFG)
    seconds: float
    images: list[Any]


def build_pipeline(image_size: int = 128, seed: int = 0) -> Any:
    """A tiny StableDiffusionPipeline built from configs, with random weights."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=image_size // 8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=8, sample_size=image_size)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=_VOCAB_SIZE, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=_VOCAB_SIZE - 2,
        eos_token_id=_VOCAB_SIZE - 1, pad_token_id=_VOCAB_SIZE - 1))
    pipe: Any = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=_byte_level_clip_tokenizer(), unet=unet,
        scheduler=reference_scheduler("dpm"), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


_VOCAB_SIZE = 514  # 256 byte symbols, the same with the end-of-word mark, start and end tokens


def _byte_level_clip_tokenizer() -> Any:
    """A CLIPTokenizer over bytes alone (no merges), written to a temp folder: no download."""
    from transformers import CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(tempfile.mkdtemp(prefix="lcm-demo-tokenizer-"))
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77,
                         pad_token="<|endoftext|>")


def run(pipe: Any, spec: RunSpec, prompt: str, seeds: list[int], repeats: int = 3) -> RunResult:
    """Generate one image per seed, ``repeats`` times; report the median wall time of a whole pass."""
    import torch

    pipe.scheduler = reference_scheduler(spec.scheduler)
    # TCD's gamma is the pipeline's eta, which it would otherwise pass as 0.0
    extra = {"eta": TCD_GAMMA} if spec.scheduler == "tcd" else {}
    generate = lambda seed: pipe(prompt, num_inference_steps=spec.steps, guidance_scale=spec.cfg,  # noqa: E731
                                 height=pipe.unet.config.sample_size * 8, width=pipe.unet.config.sample_size * 8,
                                 generator=torch.Generator().manual_seed(seed), **extra).images[0]
    generate(seeds[0])  # untimed warm-up: the first call pays for kernel selection and allocation
    counter = _UnetCounter(pipe.unet)
    times, images = [], []
    for _ in range(repeats):
        counter.reset()
        start = time.perf_counter()
        images = [generate(seed) for seed in seeds]
        times.append(time.perf_counter() - start)
    counter.remove()
    return RunResult(spec, counter.calls // len(seeds), counter.evaluations // len(seeds),
                     statistics.median(times), images)


class _UnetCounter:
    def __init__(self, unet: Any) -> None:
        self.calls = self.evaluations = 0
        self._handle = unet.register_forward_pre_hook(self._count)

    def _count(self, module: Any, args: tuple[Any, ...]) -> None:
        self.calls += 1
        self.evaluations += int(args[0].shape[0])

    def reset(self) -> None:
        self.calls = self.evaluations = 0

    def remove(self) -> None:
        self._handle.remove()


def example_plan() -> Plan:
    """What the WebUI extension does to a typical txt2img request on an SD 1.5 checkpoint."""
    entry = catalog.for_architecture(Architecture.SD1)
    assert entry is not None
    request = Request(prompts=("a cat in a hat",), main_prompt="a cat in a hat", steps=20, cfg_scale=7.0,
                      negative_prompts=("",), sampler_name="Euler a", scheduler="Automatic")
    return make_plan(request, Choice(enabled=True), entry, entry.local_name)


def format_table(results: list[RunResult]) -> str:
    base = results[0]
    rows = [f"{'run':<30} {'steps':>5} {'CFG':>5} {'UNet calls':>10} {'UNet evals':>10} {'wall ms':>9} {'speed-up':>9}"]
    for r in results:
        rows.append(f"{r.spec.label:<30} {r.spec.steps:>5} {r.spec.cfg:>5g} {r.unet_calls:>10} "
                    f"{r.unet_evaluations:>10} {r.seconds * 1000 / len(r.images):>9.1f} "
                    f"{base.seconds / r.seconds:>8.1f}x")
    return "\n".join(rows)


def save_grid(results: list[RunResult], path: Path) -> Path:
    """One row per run, one column per seed, each row labelled."""
    from PIL import Image, ImageDraw

    size = results[0].images[0].width
    label_width = 220
    grid = Image.new("RGB", (label_width + size * len(results[0].images), size * len(results)), "white")
    draw = ImageDraw.Draw(grid)
    for row, result in enumerate(results):
        draw.text((6, row * size + 6), f"{result.spec.label}\n{result.spec.steps} steps, CFG {result.spec.cfg:g}\n"
                                      f"{result.unet_evaluations} UNet evals", fill="black")
        for column, image in enumerate(result.images):
            grid.paste(image, (label_width + column * size, row * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


def main(out_dir: Path, seeds: list[int], image_size: int = 128, repeats: int = 3,
         echo: Callable[[str], None] = print) -> list[RunResult]:
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    plan = example_plan()
    echo("What the WebUI extension does to 'a cat in a hat', 20 steps, Euler a, CFG 7 on an SD 1.5 checkpoint:")
    echo(f"  prompt    -> {plan.prompts[0]}")
    echo(f"  sampler   -> {plan.sampler_name} ({plan.scheduler}), {plan.steps} steps, CFG {plan.cfg_scale:g}")
    echo(f"  infotext  -> {', '.join(f'{k}: {v}' for k, v in plan.infotext.items())}")
    echo("")
    pipe = build_pipeline(image_size)
    params = sum(p.numel() for p in pipe.unet.parameters())
    echo(f"Tiny SD-shaped pipeline on the CPU: {image_size}x{image_size}, UNet {params / 1e6:.2f}M parameters, "
         "random weights (the pictures are noise; calls and times are real).")
    results = [run(pipe, spec, "a cat in a hat", seeds, repeats) for spec in RUNS]
    echo(format_table(results))
    grid = save_grid(results, out_dir / "lcm-demo.png")
    echo(f"Wrote {grid}")
    return results
