"""Latent Consistency Distillation of a LoRA (LCM paper Algorithm 1, as LCM-LoRA trains it).

For a teacher ``UNet2DConditionModel`` (epsilon prediction) and batches of (latents, conditional
embeddings, unconditional embeddings), each step:

1. picks an index n of the 50-step distillation grid (t_{n+k} = 19, 39, ..., 999; skipping step
   k = 20) and the earlier timestep t_n = t_{n+k} - 20 (clamped at 0), noises the latents to t_{n+k};
2. the student (teacher + LoRA) predicts x0 there and applies the boundary condition
   ``c_skip * x + c_out * x0`` (timestep scaling 10, sigma_data 0.5): the consistency function f;
3. the teacher (LoRA off) makes one DDIM step of the *guided* probability-flow ODE from t_{n+k} to
   t_n, with the classifier-free target ``(1 + w) * cond - w * uncond``, w ~ U[w_min, w_max];
4. the target network (teacher + an EMA of the LoRA; decay 0 is LCM-LoRA's "no target network")
   evaluates f at that point, without gradient;
5. the loss is the Huber (or L2) distance between the two f values.

The LoRA is saved in the kohya layout of the published LCM-LoRA files (``lora_unet_<module path>``,
``.lora_down.weight``, ``.lora_up.weight``, ``.alpha``, float16) on the same 14 module kinds.
Deterministic for a seed (one CPU generator draws everything); resumable from ``distill-state.pt``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch.nn import functional as F

from lib_lcm.sampling.schedule import ORIGINAL_STEPS, SIGMA_DATA, TIMESTEP_SCALING

# The module kinds the published LCM-LoRA files adapt (../shared/lora-layouts, diffusers' training script).
LCM_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                    "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj")
STATE_FILE = "distill-state.pt"

Echo = Callable[[str], None]
Loss = Literal["huber", "l2"]
Optimizer = Literal["adamw", "adamw8bit"]


class DistillError(ValueError):
    """A setting the distillation cannot run with; the message says what to change."""


@dataclass(frozen=True)
class DistillConfig:
    steps: int = 2000
    batch: int = 64
    learning_rate: float = 1e-3
    warmup: int = 100
    rank: int = 16
    alpha: float = 16.0
    w_min: float = 0.5  # guidance w of the target (1 + w) * cond - w * uncond; CFG scale = 1 + w
    w_max: float = 2.5
    ddim_steps: int = ORIGINAL_STEPS
    ema_decay: float = 0.95
    loss: Loss = "huber"
    huber_c: float = 0.001
    timestep_scaling: float = TIMESTEP_SCALING
    seed: int = 0
    checkpoint_every: int = 250
    optimizer: Optimizer = "adamw"  # "adamw8bit": bitsandbytes' 8-bit AdamW, a quarter of the optimizer memory

    def check(self) -> None:
        if self.loss not in ("huber", "l2"):
            raise DistillError(f"loss must be 'huber' or 'l2', got {self.loss!r}.")
        if not 0 <= self.w_min <= self.w_max:
            raise DistillError(f"need 0 <= w_min <= w_max, got {self.w_min} and {self.w_max}.")
        if not 0 <= self.ema_decay < 1:
            raise DistillError(f"ema_decay must lie in [0, 1), got {self.ema_decay}.")
        if self.steps < 1 or self.batch < 1 or self.rank < 1:
            raise DistillError("steps, batch and rank must be at least 1.")
        if self.optimizer not in ("adamw", "adamw8bit"):
            raise DistillError(f"optimizer must be 'adamw' or 'adamw8bit', got {self.optimizer!r}.")


class Batch(Protocol):
    """What the distillation needs from a dataset: clean latents and both embeddings.

    ``cond_added``/``uncond_added`` are the UNet's ``added_cond_kwargs`` (SDXL: pooled text embeddings
    and size ids), per sample; None for SD 1.5 and the toy.
    """

    latents: torch.Tensor
    cond: torch.Tensor
    uncond: torch.Tensor
    cond_added: dict[str, torch.Tensor] | None
    uncond_added: dict[str, torch.Tensor] | None


@dataclass
class LatentBatch:
    latents: torch.Tensor
    cond: torch.Tensor
    uncond: torch.Tensor
    cond_added: dict[str, torch.Tensor] | None = None
    uncond_added: dict[str, torch.Tensor] | None = None


def _conditioning(hidden: torch.Tensor, added: dict[str, torch.Tensor] | None) -> dict[str, Any]:
    return {"encoder_hidden_states": hidden} | ({"added_cond_kwargs": added} if added is not None else {})


def _both(batch: Batch) -> dict[str, Any]:
    """cond and uncond stacked into one call (cond first)."""
    added = None
    if batch.cond_added is not None and batch.uncond_added is not None:
        added = {k: torch.cat([v, batch.uncond_added[k]]) for k, v in batch.cond_added.items()}
    return _conditioning(torch.cat([batch.cond, batch.uncond]), added)


BatchSource = Callable[[int, torch.Generator], Batch]


# ---------------------------------------------------------------- the pieces of the loss (pure tensors)

@dataclass(frozen=True)
class DDIMSolver:
    """The teacher's ODE solver on the skipping grid: one DDIM step from t_{n+k} to t_n."""

    alphas_cumprod: torch.Tensor
    timesteps: torch.Tensor  # t_{n+k}: 19, 39, ..., 999 for 50 steps of 1000
    alphas: torch.Tensor  # alpha_cumprod at t_{n+k}
    alphas_prev: torch.Tensor  # alpha_cumprod at t_n (alpha_cumprod[0] for the first)

    @classmethod
    def build(cls, alphas_cumprod: torch.Tensor, ddim_steps: int = ORIGINAL_STEPS) -> DDIMSolver:
        ratio = len(alphas_cumprod) // ddim_steps
        timesteps = (torch.arange(1, ddim_steps + 1) * ratio).round().long() - 1
        alphas = alphas_cumprod[timesteps]
        alphas_prev = torch.cat([alphas_cumprod[:1], alphas_cumprod[timesteps[:-1]]])
        return cls(alphas_cumprod, timesteps, alphas, alphas_prev)

    def to(self, device: torch.device | str) -> DDIMSolver:
        """The tables on the training device, where the per-sample indices live (CUDA refuses a CPU table)."""
        return DDIMSolver(*(t.to(device) for t in (self.alphas_cumprod, self.timesteps, self.alphas,
                                                   self.alphas_prev)))

    @property
    def skip(self) -> int:
        return len(self.alphas_cumprod) // len(self.timesteps)

    def step(self, x0: torch.Tensor, eps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        a_prev = _per_sample(self.alphas_prev[index], x0)
        return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps


def predicted_x0(eps: torch.Tensor, x: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """x0 of an epsilon prediction at the per-sample alpha_cumprod: (x - sqrt(1 - a) eps) / sqrt(a)."""
    a = _per_sample(alphas, x)
    return (x - (1 - a).sqrt() * eps) / a.sqrt()


def guided(cond: torch.Tensor, uncond: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The classifier-free-guided prediction (1 + w) * cond - w * uncond, per-sample w."""
    return cond + _per_sample(w, cond) * (cond - uncond)


def boundary_scalings(timesteps: torch.Tensor, timestep_scaling: float = TIMESTEP_SCALING,
                      sigma_data: float = SIGMA_DATA) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) per sample; the same formula as :func:`lib_lcm.sampling.schedule.boundary_scalings`."""
    scaled = timesteps.double() * timestep_scaling
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2).sqrt()
    return c_skip.float(), c_out.float()


def consistency(x: torch.Tensor, x0: torch.Tensor, timesteps: torch.Tensor,
                timestep_scaling: float = TIMESTEP_SCALING) -> torch.Tensor:
    """f(x, t) = c_skip(t) x + c_out(t) x0: exactly x at t = 0, the x0 prediction far from it."""
    c_skip, c_out = boundary_scalings(timesteps, timestep_scaling)
    return _per_sample(c_skip, x) * x + _per_sample(c_out, x) * x0


def distance(a: torch.Tensor, b: torch.Tensor, loss: Loss = "huber", huber_c: float = 0.001) -> torch.Tensor:
    if loss == "l2":
        return F.mse_loss(a.float(), b.float())
    return (((a.float() - b.float()) ** 2 + huber_c**2).sqrt() - huber_c).mean()


@torch.no_grad()
def ema_update(target: dict[str, torch.Tensor], online: dict[str, torch.Tensor], decay: float) -> None:
    """target <- decay * target + (1 - decay) * online, in place."""
    for name, value in online.items():
        target[name].mul_(decay).add_(value.detach().to(target[name].dtype), alpha=1 - decay)


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


# ---------------------------------------------------------------- one step

@dataclass
class Draw:
    """The random choices of one step (drawn on the CPU generator so runs repeat exactly).

    Drawn for the whole (global) batch, whichever share of it this process trains on: every process
    draws the same, so the generator stays the same everywhere and a run resumes with any process count.
    """

    index: torch.Tensor
    noise: torch.Tensor
    w: torch.Tensor

    @classmethod
    def sample(cls, shape: Sequence[int], solver: DDIMSolver, config: DistillConfig,
               generator: torch.Generator) -> Draw:
        """For latents of ``shape`` (the first dimension is the batch)."""
        n = shape[0]
        index = torch.randint(0, len(solver.timesteps), (n,), generator=generator)
        noise = torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
        w = config.w_min + (config.w_max - config.w_min) * torch.rand(n, generator=generator)
        return cls(index, noise, w)

    def rows(self, rows: slice) -> Draw:
        return Draw(self.index[rows], self.noise[rows], self.w[rows])


def lcd_loss(unet: Any, target_lora: dict[str, torch.Tensor], batch: Batch, draw: Draw, solver: DDIMSolver,
             config: DistillConfig, autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
             student: Any = None) -> torch.Tensor:
    """The consistency distillation loss of one batch (Algorithm 1, lines 5-8).

    ``student`` is the module the trained forward pass goes through (with several processes, the
    data-parallel wrapper of ``unet``, which averages the gradients); the teacher and the target passes
    use ``unet`` itself.
    """
    student = unet if student is None else student
    device = batch.latents.device
    index = draw.index.to(device)
    start = solver.timesteps.to(device)[index]  # t_{n+k}
    end = (start - solver.skip).clamp(min=0)  # t_n
    latents = batch.latents.float()
    a_start = solver.alphas.to(device)[index]
    noisy = _per_sample(a_start, latents).sqrt() * latents + (1 - _per_sample(a_start, latents)).sqrt() * \
        draw.noise.to(device)
    with autocast():
        eps = student(noisy.to(unet.dtype), start, **_conditioning(batch.cond, batch.cond_added)).sample.float()
    student = consistency(noisy, predicted_x0(eps, noisy, a_start), start, config.timestep_scaling)
    with torch.no_grad():
        x_prev = _teacher_ddim_step(unet, noisy, start, index, batch, draw.w.to(device), solver, autocast)
        with autocast():
            eps_target = torch.func.functional_call(
                unet, target_lora, (x_prev.to(unet.dtype), end), _conditioning(batch.cond, batch.cond_added),
                strict=False).sample.float()
        a_end = solver.alphas_cumprod.to(device)[end]
        target = consistency(x_prev, predicted_x0(eps_target, x_prev, a_end), end, config.timestep_scaling)
    return distance(student, target, config.loss, config.huber_c)


def _teacher_ddim_step(unet: Any, noisy: torch.Tensor, start: torch.Tensor, index: torch.Tensor, batch: Batch,
                       w: torch.Tensor, solver: DDIMSolver,
                       autocast: Callable[[], AbstractContextManager[Any]]) -> torch.Tensor:
    """The guided DDIM step of the teacher (the LoRA switched off), cond and uncond in one call."""
    unet.disable_adapters()
    try:
        with autocast():
            both = unet(torch.cat([noisy, noisy]).to(unet.dtype), torch.cat([start, start]), **_both(batch)).sample
        both = both.float()
    finally:
        unet.enable_adapters()
    cond_eps, uncond_eps = both.chunk(2)
    a_start = solver.alphas.to(noisy.device)[index]
    x0 = guided(predicted_x0(cond_eps, noisy, a_start), predicted_x0(uncond_eps, noisy, a_start), w)
    eps = guided(cond_eps, uncond_eps, w)
    return solver.step(x0, eps, index)


# ---------------------------------------------------------------- the state that resumes

@dataclass
class Distillation:
    """A UNet with its LoRA adapter, the EMA target, the optimizer and the generator: all that resumes."""

    unet: Any
    ema: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int = 0

    def lora(self) -> dict[str, torch.Tensor]:
        return {name: p for name, p in self.unet.named_parameters() if p.requires_grad}

    @property
    def device(self) -> torch.device:
        return next(iter(self.lora().values())).device

    def final_lora(self, config: DistillConfig) -> dict[str, torch.Tensor]:
        """The EMA target network's LoRA (as LCM ships its target UNet); the online one without EMA."""
        return self.ema if config.ema_decay > 0 else self.lora()


def start(unet: Any, config: DistillConfig) -> Distillation:
    """Add the LoRA (zero-initialised up matrices: the student starts as the teacher)."""
    from peft import LoraConfig

    config.check()
    torch.manual_seed(config.seed)  # peft draws the lora_down init from the global generator
    unet.requires_grad_(False)
    # peft annotates lora_alpha as int but scales by lora_alpha / r, so a fractional alpha works as intended
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, target_modules=list(LCM_LORA_TARGETS))  # type: ignore[arg-type]
    unet.add_adapter(lora)
    trainable = [p for p in unet.parameters() if p.requires_grad]
    for p in trainable:
        p.data = p.data.float()  # the LoRA trains in float32 even over a float16/bfloat16 teacher
    optimizer = _optimizer(config, trainable)
    ema = {name: p.detach().clone() for name, p in unet.named_parameters() if p.requires_grad}
    return Distillation(unet, ema, optimizer, torch.Generator().manual_seed(config.seed))


def _optimizer(config: DistillConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    try:
        import bitsandbytes
    except ImportError as error:
        raise DistillError(f"--optimizer adamw8bit needs bitsandbytes ({error}): pip install bitsandbytes, or use "
                           "--optimizer adamw.") from None
    optimizer: torch.optim.Optimizer = bitsandbytes.optim.AdamW8bit(params, lr=config.learning_rate,
                                                                    weight_decay=0.0)
    return optimizer


def save_state(run_state: Distillation, config: DistillConfig, out: Path) -> Path:
    """Everything needed to continue bit for bit; written atomically (never a half file)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / STATE_FILE
    partial = path.with_suffix(".partial")
    torch.save({"step": run_state.step, "config": asdict(config), "lora": {k: v.detach().cpu() for k, v in
                run_state.lora().items()}, "ema": {k: v.cpu() for k, v in run_state.ema.items()},
                "optimizer": run_state.optimizer.state_dict(), "generator": run_state.generator.get_state()},
               partial)
    partial.replace(path)
    return path


def resume(run_state: Distillation, config: DistillConfig, out: Path) -> bool:
    """Continue from ``out/distill-state.pt`` if it exists; refuse one made with other settings."""
    path = out / STATE_FILE
    if not path.is_file():
        return False
    saved = torch.load(path, map_location="cpu", weights_only=True)
    differences = {k: (v, getattr(config, k)) for k, v in saved["config"].items()
                   if k not in ("steps", "checkpoint_every") and getattr(config, k) != v}
    if differences:
        listed = ", ".join(f"{k}: {a} there, {b} now" for k, (a, b) in differences.items())
        raise DistillError(f"{path} was made with other settings ({listed}); use the same settings or another "
                           "output folder.")
    params = run_state.lora()
    with torch.no_grad():
        for name, value in saved["lora"].items():
            params[name].copy_(value)
        for name, value in saved["ema"].items():
            run_state.ema[name].copy_(value)
    run_state.optimizer.load_state_dict(saved["optimizer"])
    run_state.generator.set_state(saved["generator"])
    run_state.step = int(saved["step"])
    return True


# ---------------------------------------------------------------- the file

def kohya_key(peft_name: str) -> tuple[str, str]:
    """peft's ``<path>.lora_A.default.weight`` -> (``lora_unet_<path with _>``, ``lora_down.weight``); B is up."""
    module, _, kind = peft_name.rpartition(".lora_")
    role = {"A.default.weight": "lora_down.weight", "B.default.weight": "lora_up.weight"}.get(kind)
    if role is None or not module:
        raise DistillError(f"{peft_name} is not a peft LoRA weight of the default adapter")
    return "lora_unet_" + module.replace(".", "_"), role


def kohya_state_dict(unet: Any, alpha: float, dtype: torch.dtype = torch.float16,
                     lora: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The LoRA in the published files' layout: ``.lora_down.weight``, ``.lora_up.weight``, ``.alpha``."""
    lora = lora if lora is not None else {k: v for k, v in unet.named_parameters() if "lora_" in k}
    tensors: dict[str, torch.Tensor] = {}
    for name, value in lora.items():
        module, role = kohya_key(name)
        tensors[f"{module}.{role}"] = value.detach().to("cpu", dtype).contiguous()
        tensors[f"{module}.alpha"] = torch.tensor(alpha, dtype=dtype)
    return tensors


def save_lora(unet: Any, config: DistillConfig, path: Path, lora: dict[str, torch.Tensor] | None = None) -> Path:
    """The LoRA as the published files are: kohya keys, float16, metadata {"format": "pt"}."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file(kohya_state_dict(unet, config.alpha, lora=lora), str(partial), metadata={"format": "pt"})
    partial.replace(path)
    return path


# ---------------------------------------------------------------- helpers

def learning_rate(step: int, config: DistillConfig) -> float:
    """Linear warm-up, then a cosine decay to a tenth of the peak at the last step."""
    if step < config.warmup:
        return config.learning_rate * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.learning_rate * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))
