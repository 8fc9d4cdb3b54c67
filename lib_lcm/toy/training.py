"""Training of the toy world (``python -m lib_lcm toy-train``): autoencoder, judge, then the teacher.

The teacher is trained as SD was: epsilon prediction, SD 1.5's scaled-linear betas (0.00085 to
0.012 over 1000 steps), uniform timesteps, and 10% of the labels dropped to the empty token so that
classifier-free guidance works. Its shipped weights are an exponential moving average, as SD's.
Deterministic for a seed on one machine (CPU float32).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from lib_lcm.sampling.schedule import NoiseSchedule
from lib_lcm.toy import digits as toy
from lib_lcm.toy import files
from lib_lcm.training import distill, loop

Echo = Callable[[str], None]


@dataclass(frozen=True)
class TeacherRecipe:
    steps: int = 2500
    batch: int = 128
    learning_rate: float = 2e-3
    warmup: int = 100
    label_dropout: float = 0.1
    ema_decay: float = 0.999
    copies: int = 16  # augmented copies of each digit encoded once into the latent training set


def train_autoencoder(images: torch.Tensor, steps: int = 1500, seed: int = 0, echo: Echo = print) -> toy.Autoencoder:
    """Reconstruction (L1 + L2) with a little latent noise so the decoder tolerates imperfect samples."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = toy.Autoencoder()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    for step in range(steps):
        batch = toy.augment(images[_indices(len(images), 128, generator)], generator)
        latents = model.encoder(batch)
        noisy = latents + 0.05 * latents.detach().std() * torch.randn(latents.shape, generator=generator)
        decoded = model.decoder(noisy)
        loss = F.l1_loss(decoded, batch) + F.mse_loss(decoded, batch) + 1e-4 * latents.pow(2).mean()
        _step(optimizer, loss, _cosine(step, steps, 2e-3, 50))
        _report(echo, "autoencoder", step, steps, loss)
    with torch.no_grad():
        model.scaling_factor.fill_(1.0 / float(model.encoder(images).std()))
    return model.eval().requires_grad_(False)


def train_classifier(images: torch.Tensor, labels: torch.Tensor, steps: int = 1500, seed: int = 0,
                     echo: Echo = print) -> tuple[toy.DigitClassifier, float]:
    """Trained on 80% of the digits (augmented, with noise); returns it and its accuracy on the other 20%."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator)
    train, held_out = order[: len(order) * 4 // 5], order[len(order) * 4 // 5:]
    model = toy.DigitClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for step in range(steps):
        pick = train[_indices(len(train), 128, generator)]
        batch = toy.augment(images[pick], generator, shift=2.0, degrees=12.0, scale=0.12)
        batch = batch + 0.1 * torch.rand(()) * torch.randn(batch.shape, generator=generator)
        loss = F.cross_entropy(model(batch), labels[pick])
        _step(optimizer, loss, _cosine(step, steps, 2e-3, 50))
        _report(echo, "classifier", step, steps, loss)
    model.eval().requires_grad_(False)
    accuracy = float((model(images[held_out]).argmax(1) == labels[held_out]).float().mean())
    return model, accuracy


def training_latents(autoencoder: toy.Autoencoder, images: torch.Tensor, labels: torch.Tensor, copies: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented copies of every digit, encoded once (the teacher's dataset)."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        latents = [autoencoder.encode(toy.augment(images, generator)) for _ in range(copies)]
    return torch.cat(latents), labels.repeat(copies)


def train_teacher(latents: torch.Tensor, labels: torch.Tensor, recipe: TeacherRecipe | None = None,
                  seed: int = 0, echo: Echo = print) -> toy.Teacher:
    """Epsilon-prediction training on SD's schedule; returns the EMA weights."""
    recipe = recipe or TeacherRecipe()
    teacher = toy.new_teacher(seed)
    ema = copy.deepcopy(teacher)
    generator = torch.Generator().manual_seed(seed)
    alphas = NoiseSchedule.scaled_linear().alphas_cumprod
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=recipe.learning_rate, weight_decay=0.0)
    for step in range(recipe.steps):
        pick = _indices(len(latents), recipe.batch, generator)
        x0, label = latents[pick], labels[pick].clone()
        label[torch.rand(len(label), generator=generator) < recipe.label_dropout] = toy.NULL_LABEL
        t = torch.randint(0, len(alphas), (len(pick),), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        prediction = teacher.unet(noisy, t, encoder_hidden_states=teacher.labels(label)).sample
        loss = F.mse_loss(prediction, noise)
        _step(optimizer, loss, _cosine(step, recipe.steps, recipe.learning_rate, recipe.warmup))
        distill.ema_update(_named(ema), _named(teacher), min(recipe.ema_decay, (1 + step) / (10 + step)))
        _report(echo, "teacher", step, recipe.steps, loss)
    ema.unet.eval().requires_grad_(False)
    ema.labels.eval().requires_grad_(False)
    return ema


def train_all(out: Path, recipe: TeacherRecipe | None = None, seed: int = 0, echo: Echo = print) -> None:
    """Autoencoder, classifier and teacher into ``out`` (float16 safetensors, a few MB)."""
    images, labels = toy.real_digits()
    started = time.perf_counter()
    autoencoder = train_autoencoder(images, seed=seed, echo=echo)
    toy.save_module(autoencoder, out / files.AUTOENCODER_FILE)
    classifier, accuracy = train_classifier(images, labels, seed=seed, echo=echo)
    toy.save_module(classifier, out / files.CLASSIFIER_FILE)
    echo(f"classifier accuracy on held-out real digits: {accuracy:.3f}")
    train_teacher_in(out, recipe, seed, echo)
    echo(f"wrote {out}/{{{files.AUTOENCODER_FILE},{files.CLASSIFIER_FILE},{files.TEACHER_FILE}}} "
         f"in {time.perf_counter() - started:.0f} s")


def train_teacher_in(out: Path, recipe: TeacherRecipe | None = None, seed: int = 0, echo: Echo = print) -> None:
    """The teacher stage alone, on the autoencoder already in ``out``."""
    recipe = recipe or TeacherRecipe()
    images, labels = toy.real_digits()
    latents, latent_labels = training_latents(toy.load_autoencoder(out), images, labels, recipe.copies, seed)
    teacher = train_teacher(latents, latent_labels, recipe, seed=seed, echo=echo)
    toy.save_teacher(teacher, out / files.TEACHER_FILE)


def _indices(n: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, n, (batch,), generator=generator)


def _cosine(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _named(teacher: toy.Teacher) -> dict[str, torch.Tensor]:
    return {f"unet.{k}": v for k, v in teacher.unet.named_parameters()} | {
        f"labels.{k}": v for k, v in teacher.labels.named_parameters()}


def _report(echo: Echo, what: str, step: int, steps: int, loss: torch.Tensor) -> None:
    if step == 0 or (step + 1) % max(1, steps // 20) == 0:
        echo(f"{what}: step {step + 1}/{steps}, loss {float(loss.detach()):.4f}")


def digit_batches(teacher: toy.Teacher, latents: torch.Tensor, labels: torch.Tensor) -> distill.BatchSource:
    """Random training latents with their digit tokens and the empty-prompt token."""
    null = teacher.labels(torch.tensor([toy.NULL_LABEL])).detach()

    def draw(batch: int, generator: torch.Generator) -> distill.LatentBatch:
        pick = _indices(len(latents), batch, generator)
        with torch.no_grad():
            cond = teacher.labels(labels[pick])
        return distill.LatentBatch(latents[pick], cond, null.expand(batch, -1, -1))

    return draw


def distill_toy(out: Path, config: distill.DistillConfig | None = None, folder: Path = files.WEIGHTS_DIR,
                resume: bool = True, echo: Echo = print, progress: bool = True, accumulate: int = 1) -> Path | None:
    """Distill the LCM-LoRA of the toy teacher in ``folder``; state and LoRA go to ``out`` (its path on the
    main process, None on the others).

    On the CPU, on one process or several (``accelerate launch``): every process draws the same global
    batch and trains on its rows, so the result does not depend on the process count.
    """
    config = config or distill.DistillConfig()
    accelerator = loop.accelerator_for("cpu", accumulate=accumulate)
    loop.my_shares(config, accelerator)  # a batch that does not split is refused before the slow part
    say = loop.main_only(echo, accelerator)
    teacher = toy.load_teacher(folder / files.TEACHER_FILE)
    images, labels = toy.real_digits()
    latents, latent_labels = training_latents(toy.load_autoencoder(folder), images, labels, TeacherRecipe().copies,
                                              config.seed)
    state = distill.start(teacher.unet, config)
    loop.resume_or_start(state, config, out, resume, say)
    feed = loop.GlobalDraws(digit_batches(teacher, latents, latent_labels))
    loop.train(state, feed, NoiseSchedule.scaled_linear().alphas_cumprod, config, accelerator, out, say, progress)
    return loop.finish(accelerator, state, config, out / files.STUDENT_LORA_FILE)
