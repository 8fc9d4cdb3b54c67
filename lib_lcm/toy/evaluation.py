"""Sampling and judging the toy model: the table that shows what the LCM-LoRA adds.

Each row samples the same seeds and labels (digit i % 10 for image i) with one model, sampler,
step count and CFG, decodes with the toy autoencoder and is judged by the toy classifier:
accuracy against the requested digit, and the Fréchet distance of its 64-d features to those of
the 1797 real digits (lower is better). "UNet evals" counts latents through the UNet per image
(CFG > 1 costs two per step, as the teacher's cond and uncond passes).

Two implementations drive the samplers: diffusers' schedulers (the reference), and for LCM and TCD
also the project's own pure-torch ``lib_lcm.sampling`` functions, through the k-diffusion
denoiser convention the WebUI uses.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch

from lib_lcm.rules.catalog import TCD_GAMMA
from lib_lcm.sampling.samplers import sample_lcm, sample_tcd
from lib_lcm.sampling.schedule import NoiseSchedule, lcm_timesteps
from lib_lcm.standalone.model_loading import reference_scheduler
from lib_lcm.toy import digits as toy
from lib_lcm.toy import files

TEACHER_CFG = 2.5  # 1 + w at the middle of the distillation's w range [0.5, 2.5]

# who samples the LCM and TCD rows: diffusers' schedulers, or lib_lcm.sampling as the WebUI drives it
Implementation = Literal["diffusers", "lib_lcm"]


@dataclass(frozen=True)
class RowSpec:
    label: str
    model: Literal["teacher", "student"]  # the student: the teacher + the LCM-LoRA
    sampler: Literal["ddim", "dpm", "lcm", "tcd"]
    steps: int
    cfg: float
    implementation: Implementation = "diffusers"

    @property
    def unet_evals(self) -> int:
        return self.steps * (2 if self.cfg > 1 else 1)


DEMO_ROWS = (
    RowSpec("teacher, 50 DDIM steps", "teacher", "ddim", 50, TEACHER_CFG),
    RowSpec("teacher, 4 DDIM steps", "teacher", "ddim", 4, TEACHER_CFG),
    RowSpec("teacher, 4 DPM-Solver++ steps", "teacher", "dpm", 4, TEACHER_CFG),
    RowSpec("teacher, 2 DDIM steps", "teacher", "ddim", 2, TEACHER_CFG),
    RowSpec("teacher, 2 DPM-Solver++ steps", "teacher", "dpm", 2, TEACHER_CFG),
    RowSpec("teacher, 1 LCM step, no LoRA", "teacher", "lcm", 1, 1.0),
    RowSpec("teacher, 2 LCM steps, no LoRA", "teacher", "lcm", 2, 1.0),
    RowSpec("teacher, 4 LCM steps, no LoRA", "teacher", "lcm", 4, 1.0),
    RowSpec("student, 1 LCM step", "student", "lcm", 1, 1.0),
    RowSpec("student, 2 LCM steps", "student", "lcm", 2, 1.0),
    RowSpec("student, 4 LCM steps", "student", "lcm", 4, 1.0),
    RowSpec("student, 8 LCM steps", "student", "lcm", 8, 1.0),
    RowSpec("student, 4 TCD steps", "student", "tcd", 4, 1.0),
)


@dataclass(frozen=True)
class RowResult:
    spec: RowSpec
    seed: int
    accuracy: float
    frechet: float
    ms_per_image: float
    images: torch.Tensor  # [N, 1, 32, 32] in [-1, 1]


@dataclass
class ToyModels:
    teacher: toy.Teacher
    student_unet: Any  # the teacher's UNet with the LCM-LoRA fused
    autoencoder: toy.Autoencoder
    classifier: toy.DigitClassifier
    real_features: torch.Tensor

    def unet(self, model: Literal["teacher", "student"]) -> Any:
        return self.student_unet if model == "student" else self.teacher.unet


def load_models(folder: Path = files.WEIGHTS_DIR, lora: Path | None = None) -> ToyModels:
    """The shipped teacher, its LCM-LoRA fused through the standalone LoRA path, and the judges."""
    import copy

    teacher = toy.load_teacher(folder / files.TEACHER_FILE)
    student = copy.deepcopy(teacher.unet)
    fuse_lora(student, lora or folder / files.STUDENT_LORA_FILE)
    classifier = toy.load_classifier(folder)
    real, _ = toy.real_digits()
    with torch.no_grad():
        features = classifier.features(real)
    return ToyModels(teacher, student, toy.load_autoencoder(folder), classifier, features)


def fuse_lora(unet: Any, path: Path, weight: float = 1.0) -> list[str]:
    """Apply a kohya LoRA file to a toy UNet with ``lora_fusion.apply_loras``, the generate command's path."""
    # The toy UNet has SD 1.x's block structure (cross-attention in every down block but the last),
    # which is how the extension's header detector classifies its LoRA (architecture.py's fallback).
    from diffusers.utils import logging

    from lib_lcm.rules.architecture import Architecture
    from lib_lcm.standalone.lora_fusion import LoraFile, apply_loras

    quiet = logging.get_verbosity()
    logging.set_verbosity_error()  # "No LoRA keys associated to NoneType": there is no text encoder
    try:
        return apply_loras(ToyPipeline(unet), [LoraFile(path, weight, "acceleration")], Architecture.SD1)
    finally:
        logging.set_verbosity(quiet)


def _toy_pipeline_class() -> type:
    from diffusers.loaders import StableDiffusionLoraLoaderMixin

    class _ToyPipeline(StableDiffusionLoraLoaderMixin):
        """Just enough pipeline for diffusers' LoRA loader: a UNet and no text encoder."""

        # diffusers' SD loader fuses both names; the text encoder is None (the toy's is a label table)
        _lora_loadable_modules = ["unet", "text_encoder"]  # noqa: RUF012 (read as a class attribute)

        hf_device_map = None  # read by diffusers' offload check (loaders/lora_base.py)

        def __init__(self, unet: Any) -> None:
            self.unet = unet
            self.text_encoder = None

        @property
        def components(self) -> dict[str, Any]:
            return {"unet": self.unet}

    return _ToyPipeline


def ToyPipeline(unet: Any) -> Any:
    return _toy_pipeline_class()(unet)


# ---------------------------------------------------------------- sampling

def conditioning(teacher: toy.Teacher, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return teacher.labels(labels), teacher.labels(torch.full_like(labels, toy.NULL_LABEL))


def sample(models: ToyModels, spec: RowSpec, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Latents for ``labels`` from the noise of ``seed`` (one batch)."""
    unet = models.unet(spec.model)
    cond, uncond = conditioning(models.teacher, labels)
    noise = torch.randn(len(labels), toy.LATENT_CHANNELS, toy.LATENT_SIZE, toy.LATENT_SIZE,
                        generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        if spec.implementation == "lib_lcm":
            return _sample_lib_lcm(unet, spec, noise, cond, uncond, seed)
        return _sample_diffusers(unet, spec, noise, cond, uncond, seed)


def _guided_eps(unet: Any, x: torch.Tensor, t: Any, cond: torch.Tensor, uncond: torch.Tensor,
                cfg: float) -> torch.Tensor:
    if cfg == 1.0:
        return unet(x, t, encoder_hidden_states=cond).sample
    both = unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([cond, uncond])).sample
    c, u = both.chunk(2)
    return u + cfg * (c - u)


def _sample_diffusers(unet: Any, spec: RowSpec, noise: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor,
                      seed: int) -> torch.Tensor:
    """The denoising loop of diffusers' SD / LCM pipelines (noise for LCM and TCD from ``seed + 1``)."""
    chosen = reference_scheduler(spec.sampler)
    chosen.set_timesteps(spec.steps)
    generator = torch.Generator().manual_seed(seed + 1)
    extra: dict[str, Any] = {"eta": TCD_GAMMA} if spec.sampler == "tcd" else {}
    if spec.sampler in ("lcm", "tcd"):
        extra["generator"] = generator
    latents = noise * chosen.init_noise_sigma
    for t in chosen.timesteps:
        eps = _guided_eps(unet, chosen.scale_model_input(latents, t), t, cond, uncond, spec.cfg)
        output = chosen.step(eps, t, latents, return_dict=False, **extra)
        latents = output[0]
    return output[1] if spec.sampler == "lcm" else latents


def _sample_lib_lcm(unet: Any, spec: RowSpec, noise: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor,
                    seed: int) -> torch.Tensor:
    """``lib_lcm.sampling.samplers.sample_lcm``/``sample_tcd`` as the WebUI drives them (k-diffusion convention)."""
    if spec.sampler not in ("lcm", "tcd"):
        raise ValueError(f"lib_lcm implements lcm and tcd, not {spec.sampler}")
    schedule = NoiseSchedule.scaled_linear()
    sigmas = schedule.sigmas_for(lcm_timesteps(spec.steps))
    generator = torch.Generator().manual_seed(seed + 1)

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.view(-1, 1, 1, 1)
        return x - s * _guided_eps(unet, x / (s**2 + 1) ** 0.5, schedule.timestep(sigma[0]), cond, uncond, spec.cfg)

    x = noise * (1 + sigmas[0] ** 2) ** 0.5  # diffusers' unit-variance start, in the k-diffusion scale
    noise_sampler = lambda sigma, sigma_next: torch.randn(noise.shape, generator=generator)  # noqa: E731
    if spec.sampler == "tcd":
        return sample_tcd(denoiser, x, sigmas, noise_sampler=noise_sampler, schedule=schedule,
                                   gamma=TCD_GAMMA)
    return sample_lcm(denoiser, x, sigmas, noise_sampler=noise_sampler, schedule=schedule)


# ---------------------------------------------------------------- judging

def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), in float64."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def judge(models: ToyModels, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy against the requested digits, Fréchet distance to the real digits)."""
    with torch.no_grad():
        features = models.classifier.features(images)
        predicted = models.classifier.head(features).argmax(1)
    return float((predicted == labels).float().mean()), frechet_distance(features, models.real_features)


def run_row(models: ToyModels, spec: RowSpec, count: int, seed: int) -> RowResult:
    labels = torch.arange(count) % 10
    started = time.perf_counter()
    latents = sample(models, spec, labels, seed)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        images = models.autoencoder.decode(latents)
    accuracy, frechet = judge(models, images, labels)
    return RowResult(spec, seed, accuracy, frechet, seconds * 1000 / count, images)


def run_table(models: ToyModels, rows: Sequence[RowSpec] = DEMO_ROWS, count: int = 500,
              seeds: Sequence[int] = (0, 1), implementation: Implementation = "diffusers") -> list[list[RowResult]]:
    """One list of per-seed results per row."""
    chosen = [replace(r, implementation=implementation) if r.sampler in ("lcm", "tcd") else r for r in rows]
    return [[run_row(models, spec, count, seed) for seed in seeds] for spec in chosen]


def format_table(table: list[list[RowResult]]) -> str:
    seeds = ", ".join(str(r.seed) for r in table[0])
    lines = [f"{'run':<34} {'CFG':>4} {'UNet evals':>10} {'accuracy':>9} {'Fréchet':>8} {'ms/image':>9}   "
             f"(mean over seeds {seeds}; {len(table[0][0].images)} images each)"]
    for results in table:
        spec = results[0].spec
        accuracy = sum(r.accuracy for r in results) / len(results)
        frechet = sum(r.frechet for r in results) / len(results)
        ms = sum(r.ms_per_image for r in results) / len(results)
        lines.append(f"{spec.label:<34} {spec.cfg:>4g} {spec.unet_evals:>10} {accuracy:>9.3f} {frechet:>8.2f} "
                     f"{ms:>9.2f}")
    return "\n".join(lines)


def save_grid(table: list[list[RowResult]], path: Path, columns: int = 20) -> Path:
    """One labelled row per run: the first ``columns`` images of the first seed (digits 0-9 twice)."""
    from PIL import Image, ImageDraw

    size, label_width = toy.IMAGE_SIZE * 2, 300
    grid = Image.new("L", (label_width + columns * size, len(table) * size), 255)
    draw = ImageDraw.Draw(grid)
    for row, results in enumerate(table):
        spec = results[0].spec
        draw.text((6, row * size + 8), f"{spec.label}\nCFG {spec.cfg:g}, {spec.unet_evals} UNet evals", fill=0)
        pixels = ((1 - results[0].images[:columns, 0]) * 127.5).round().clamp(0, 255).to(torch.uint8)
        for column, tile in enumerate(pixels):
            image = Image.fromarray(tile.numpy(), "L").resize((size, size), Image.Resampling.NEAREST)
            grid.paste(image, (label_width + column * size, row * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path
