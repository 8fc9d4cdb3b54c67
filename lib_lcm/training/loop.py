"""The distillation loop, on one process or many, through Hugging Face Accelerate.

``python -m lib_lcm distill …`` runs it as one process; ``accelerate launch -m lib_lcm distill …`` on
several GPUs or machines (data parallel). Per optimizer step:

1. every process draws the same global batch choice and the same :class:`~lib_lcm.training.distill.Draw`
   (noise, timestep indices, guidance w) from the one generator, so the generator stays identical
   everywhere and a run resumes with any process count;
2. each process trains on its rows of that batch, in ``accumulate`` micro-batches (gradient
   accumulation, through ``Accelerator.accumulate``), the trained pass through Accelerate's
   data-parallel wrapper, which averages the gradients: the step equals one process's step on the
   whole batch, up to the order of float sums;
3. every process takes the same optimizer step and EMA update; only the main process writes the
   resumable state and the LoRA, and shows the progress and the throughput.

Mixed precision is Accelerate's (``fp16`` with its gradient scaler, or ``bf16``) over a half-precision
teacher; the LoRA trains in float32.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from lib_lcm.training import distill
from lib_lcm.training.distill import (
    Batch,
    DDIMSolver,
    Distillation,
    DistillConfig,
    DistillError,
    Draw,
    LatentBatch,
    ema_update,
    lcd_loss,
    learning_rate,
    save_state,
)

Echo = Callable[[str], None]
MixedPrecision = Literal["no", "fp16", "bf16"]


class Feed(Protocol):
    """Where one optimizer step's batches come from, for this process."""

    def take(self, batch: int, generator: torch.Generator, shares: Sequence[slice]) -> list[Batch]:
        """This process's micro-batches: rows ``shares`` of the next global batch of ``batch`` samples."""
        ...


BatchSource = Callable[[int, torch.Generator], Batch]


class GlobalDraws:
    """A feed over a source that draws a whole global batch at random (the toy, data in memory).

    Every process draws the same batch and keeps its rows: one process on a batch of 8 and two on 4
    each train on the same samples.
    """

    def __init__(self, source: BatchSource) -> None:
        self.source = source

    def take(self, batch: int, generator: torch.Generator, shares: Sequence[slice]) -> list[Batch]:
        whole = self.source(batch, generator)
        return [_rows(whole, share) for share in shares]


def accelerator_for(device: str | None = None, mixed_precision: MixedPrecision = "no", accumulate: int = 1) -> Any:
    """Accelerate's view of the processes; on the CPU unless CUDA is there (or ``device`` says cpu)."""
    from accelerate import Accelerator

    cpu = (device or "").startswith("cpu") or not torch.cuda.is_available()
    # device_placement off: the callers put the teacher where it belongs (a single GPU's own index too)
    return Accelerator(cpu=cpu, mixed_precision="no" if cpu else mixed_precision,
                       gradient_accumulation_steps=accumulate, device_placement=False)


def shares(batch: int, processes: int, rank: int, accumulate: int = 1) -> list[slice]:
    """The rows of a global batch that process ``rank`` trains on, one slice per micro-batch."""
    parts = processes * accumulate
    if batch % parts:
        raise DistillError(f"--batch {batch} must split evenly over {processes} process(es) x {accumulate} "
                           f"accumulation step(s); use a multiple of {parts}.")
    size = batch // parts
    return [slice((micro * processes + rank) * size, (micro * processes + rank + 1) * size)
            for micro in range(accumulate)]


def my_shares(config: DistillConfig, accelerator: Any) -> list[slice]:
    """This process's rows of every global batch; raises at once when the batch does not split evenly."""
    return shares(config.batch, accelerator.num_processes, accelerator.process_index,
                  accelerator.gradient_accumulation_steps)


def train(run_state: Distillation, feed: Feed, alphas_cumprod: torch.Tensor, config: DistillConfig,
          accelerator: Any, out: Path | None = None, echo: Echo = print, progress: bool = True) -> list[float]:
    """Train from ``run_state.step`` to ``config.steps``; checkpoints into ``out``. Returns the losses."""
    solver = solver_for(run_state, alphas_cumprod, config)
    student, optimizer = accelerator.prepare(run_state.unet, run_state.optimizer)
    mine = my_shares(config, accelerator)
    main = accelerator.is_main_process
    losses: list[float] = []
    clock = _Throughput(config.batch)
    for _ in _progress(run_state.step, config.steps, progress and main, clock):
        batches = feed.take(config.batch, run_state.generator, mine)
        draw = Draw.sample((config.batch, *batches[0].latents.shape[1:]), solver, config, run_state.generator)
        loss = _step(run_state, student, optimizer, batches, draw, mine, solver, config, accelerator)
        losses.append(float(loss))
        clock.tick()
        if out is not None and main and (run_state.step % config.checkpoint_every == 0 or
                                         run_state.step == config.steps):
            save_state(run_state, config, out)
        if main and run_state.step % max(1, config.steps // 20) == 0:
            window = losses[-max(1, config.steps // 20):]
            echo(f"distill: step {run_state.step}/{config.steps}, loss {sum(window) / len(window):.5f}, "
                 f"{clock.images_per_second:.1f} images/s")
    if main and run_state.device.type == "cuda":
        echo(f"distill: peak GPU memory {torch.cuda.max_memory_allocated(run_state.device) / 2**30:.2f} GiB")
    accelerator.wait_for_everyone()
    return losses


def main_only(echo: Echo, accelerator: Any) -> Echo:
    """``echo`` on the main process; the others say nothing."""
    return echo if accelerator.is_main_process else _silent


def resume_or_start(run_state: Distillation, config: DistillConfig, out: Path, resume: bool, say: Echo) -> None:
    if resume and distill.resume(run_state, config, out):
        say(f"resuming from step {run_state.step} ({out / distill.STATE_FILE})")


def finish(accelerator: Any, run_state: Distillation, config: DistillConfig, path: Path) -> Path | None:
    """The main process writes the LoRA; every process waits for it, then the process group ends (a clean
    exit). Returns the file's path on the main process, None on the others."""
    main = accelerator.is_main_process
    if main:
        distill.save_lora(run_state.unet, config, path, lora=run_state.final_lora(config))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return path if main else None


def _silent(_: str) -> None:
    pass


def solver_for(run_state: Distillation, alphas_cumprod: torch.Tensor, config: DistillConfig) -> DDIMSolver:
    """The teacher's solver, on the device the LoRA trains on."""
    return DDIMSolver.build(alphas_cumprod.float().cpu(), config.ddim_steps).to(run_state.device)


def train_step(run_state: Distillation, batch: Batch, solver: DDIMSolver, config: DistillConfig,
               accelerator: Any = None) -> torch.Tensor:
    """One optimizer step of one process on one whole batch (what ``train`` does with no other process)."""
    accelerator = accelerator or accelerator_for("cpu")
    student, optimizer = accelerator.prepare(run_state.unet, run_state.optimizer)
    draw = Draw.sample(batch.latents.shape, solver, config, run_state.generator)
    whole = slice(0, batch.latents.shape[0])
    return _step(run_state, student, optimizer, [batch], draw, [whole], solver, config, accelerator)


def _step(run_state: Distillation, student: Any, optimizer: Any, batches: Sequence[Batch], draw: Draw,
          mine: Sequence[slice], solver: DDIMSolver, config: DistillConfig, accelerator: Any) -> torch.Tensor:
    """The micro-batches of one optimizer step; returns the loss averaged over every process."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(run_state.step, config)
    total = torch.zeros((), device=run_state.device)
    for batch, rows in zip(batches, mine, strict=True):
        with accelerator.accumulate(student):
            loss = lcd_loss(run_state.unet, run_state.ema, batch, draw.rows(rows), solver, config,
                            accelerator.autocast, student=student)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(list(run_state.lora().values()), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        total += loss.detach() / len(batches)
    ema_update(run_state.ema, run_state.lora(), config.ema_decay)
    run_state.step += 1
    reduced: torch.Tensor = accelerator.reduce(total, reduction="mean")
    return reduced


def _rows(batch: Batch, rows: slice) -> Batch:
    def cut(added: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
        return None if added is None else {k: v[rows] for k, v in added.items()}

    return LatentBatch(batch.latents[rows], batch.cond[rows], batch.uncond[rows], cut(batch.cond_added),
                       cut(batch.uncond_added))


class _Throughput:
    """Images per second of the whole run (every process's share), over the last steps."""

    def __init__(self, batch: int, window: int = 20) -> None:
        self.batch, self.window = batch, window
        self.times: list[float] = [time.perf_counter()]

    def tick(self) -> None:
        self.times = [*self.times[-self.window:], time.perf_counter()]

    @property
    def images_per_second(self) -> float:
        elapsed = self.times[-1] - self.times[0]
        return self.batch * (len(self.times) - 1) / elapsed if elapsed > 0 else 0.0


def _progress(done: int, total: int, enabled: bool, clock: _Throughput) -> Iterator[int]:
    if not enabled:
        yield from range(done, total)
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, initial=done, desc="distill", unit="step", mininterval=2.0) as bar:
        for step in range(done, total):
            yield step
            bar.set_postfix_str(f"{clock.images_per_second:.1f} images/s", refresh=False)
            bar.update(1)

