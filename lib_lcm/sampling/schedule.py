"""Few-step samplers for consistency-distilled models, exact to diffusers' schedulers.

Pure torch, no WebUI import. The samplers use the k-diffusion calling convention that the WebUI's
``KDiffusionSampler`` (``modules/sd_samplers_kdiffusion.py``) drives:

- ``model(x, sigma, **extra_args)`` returns the *denoised* latent (the x0 prediction of an
  epsilon model: ``x - sigma * eps``), with ``x`` in the variance-exploding scale
  ``x = x_vp / sqrt(alpha_cumprod)``;
- ``sigmas`` is descending and ends with 0; ``noise_sampler(sigma, sigma_next)`` draws the
  re-injected noise, so the WebUI's seeded generator reproduces images;
- ``callback({"x", "i", "sigma", "sigma_hat", "denoised"})`` after each model call.

Each sigma is snapped to the nearest of the model's discrete timesteps, and the model is called
with that timestep's exact sigma, so any scheduler's sigmas work; the exact reference schedules
come from :func:`lcm_timesteps` and :func:`explicit_timesteps` through
:meth:`NoiseSchedule.sigmas_for`. The step maths mirror ``LCMScheduler.step`` and
``TCDScheduler.step`` of diffusers 0.35.2 (``schedulers/scheduling_lcm.py``,
``schedulers/scheduling_tcd.py``); ``tests/test_sampling_oracle.py`` holds them to 1e-5.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lib_lcm.rules.catalog import TCD_GAMMA

NUM_TRAIN_TIMESTEPS = 1000
ORIGINAL_STEPS = 50  # the distillation grid: t = 19, 39, ..., 999 (LCM paper, "skipping step" k = 20)
TIMESTEP_SCALING = 10.0
SIGMA_DATA = 0.5

Denoiser = Callable[..., torch.Tensor]
NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict[str, Any]], None]


class ScheduleError(ValueError):
    """A step count, strength or timestep list that no schedule can satisfy; the message says what to change."""


@dataclass(frozen=True)
class NoiseSchedule:
    """The model's discrete noise levels: ``alphas_cumprod[t]`` for t = 0 … 999."""

    alphas_cumprod: torch.Tensor
    table: torch.Tensor | None = None  # the model's own sigma table, when built from one

    @classmethod
    def scaled_linear(cls, beta_start: float = 0.00085, beta_end: float = 0.012,
                      timesteps: int = NUM_TRAIN_TIMESTEPS) -> NoiseSchedule:
        """Stable Diffusion's betas, computed as diffusers does (float32 linspace of square roots)."""
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, timesteps, dtype=torch.float32) ** 2
        return cls(torch.cumprod(1.0 - betas, dim=0))

    @classmethod
    def from_sigmas(cls, sigmas: torch.Tensor) -> NoiseSchedule:
        """From a k-diffusion sigma table (ascending, one per timestep): alpha = 1 / (1 + sigma^2).

        The table itself is kept, so the sigmas handed back to the model are its own values, bit
        for bit, and its sigma-to-timestep mapping lands on whole timesteps.
        """
        table = sigmas.detach().cpu()
        return cls(1.0 / (1.0 + table.double() ** 2), table)

    @functools.cached_property
    def sigmas(self) -> torch.Tensor:
        """Ascending sigma per timestep, computed as k-diffusion's ``DiscreteSchedule`` does."""
        if self.table is not None:
            return self.table
        return ((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5

    def sigma(self, timestep: int) -> torch.Tensor:
        return self.sigmas[timestep]

    def timestep(self, sigma: torch.Tensor | float) -> int:
        """The discrete timestep whose sigma is nearest in log space (exact for table values)."""
        log_sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(()).log()
        return int((self._log_sigmas - log_sigma).abs().argmin())

    @functools.cached_property
    def _log_sigmas(self) -> torch.Tensor:
        return self.sigmas.double().log()

    def sigmas_for(self, timesteps: Sequence[int]) -> torch.Tensor:
        """The sigmas a k-diffusion sampler needs to visit exactly these timesteps (0 appended)."""
        table = self.sigmas
        return torch.cat([table[list(timesteps)], table.new_zeros(1)])


def lcm_timesteps(steps: int, strength: float = 1.0, original_steps: int = ORIGINAL_STEPS,
                  train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> tuple[int, ...]:
    """The timesteps of diffusers' ``LCMScheduler.set_timesteps(steps, strength=strength)``.

    The same rule as ``TCDScheduler``. img2img keeps every requested step: strength shortens the
    distillation grid the steps are spread over (``pipeline_latent_consistency_img2img.py``).
    """
    _check_strength(strength)
    if steps < 1:
        raise ScheduleError(f"steps must be at least 1, got {steps}.")
    k = train_timesteps // original_steps
    grid = [(i + 1) * k - 1 for i in range(int(original_steps * strength))]
    if len(grid) < steps:
        raise ScheduleError(
            f"{steps} steps do not fit in strength {strength:g}: it leaves {len(grid)} of the {original_steps} "
            f"distillation timesteps; use at most {len(grid)} steps or a strength of at least "
            f"{steps / original_steps:g}.")
    grid.reverse()
    # 1. Spread the steps over the grid by index: numpy's floor(linspace(0, n, steps, endpoint=False))
    #    is i * (n / steps) in float64, which Python floats reproduce bit for bit.
    step = len(grid) / steps
    return tuple(grid[math.floor(i * step)] for i in range(steps))


def explicit_timesteps(timesteps: Sequence[int], strength: float = 1.0,
                       train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> tuple[int, ...]:
    """``LCMScheduler.set_timesteps(timesteps=...)`` (DMD2: 999, 749, 499, 249), strength keeping the tail."""
    _check_strength(strength)
    ts = [int(t) for t in timesteps]
    if not ts:
        raise ScheduleError("explicit timesteps: give at least one timestep, e.g. 999,749,499,249.")
    if any(b >= a for a, b in itertools.pairwise(ts)):
        raise ScheduleError(f"explicit timesteps must be strictly descending, got {ts}.")
    if ts[0] >= train_timesteps or ts[-1] < 0:
        raise ScheduleError(f"explicit timesteps must lie in 0..{train_timesteps - 1}, got {ts}.")
    keep = min(int(len(ts) * strength), len(ts))
    if keep < 1:
        raise ScheduleError(f"strength {strength:g} keeps none of the {len(ts)} explicit timesteps; "
                            f"use a strength of at least {1 / len(ts):g}.")
    return tuple(ts[len(ts) - keep:])


def steps_fitting_strength(steps: int, strength: float, original_steps: int = ORIGINAL_STEPS) -> int:
    """The most of ``steps`` that :func:`lcm_timesteps` accepts at this strength (at least 1)."""
    return max(1, min(int(steps), int(original_steps * min(max(strength, 0.0), 1.0))))


@dataclass(frozen=True)
class PassSchedule:
    """The timesteps one sampling pass visits, and why it visits fewer than asked (if it does)."""

    timesteps: tuple[int, ...]
    note: str = ""


def pass_schedule(steps: int, strength: float = 1.0, explicit: Sequence[int] | None = None) -> PassSchedule:
    """The reference schedule for one txt2img, img2img or hires pass; never raises for WebUI input.

    Where diffusers would refuse (more steps than a low strength leaves), run the steps that fit.
    """
    strength = min(max(float(strength), 1.0 / ORIGINAL_STEPS), 1.0)
    if explicit:
        # explicit_timesteps(explicit, strength) would raise below 1/len; keep at least the last one
        keep = max(1, min(int(len(explicit) * strength), len(explicit)))
        return PassSchedule(explicit_timesteps(explicit)[-keep:])
    fitting = steps_fitting_strength(steps, strength)
    note = "" if fitting == steps else (
        f"denoising strength {strength:g} leaves {int(ORIGINAL_STEPS * strength)} of the {ORIGINAL_STEPS} "
        f"distillation timesteps, so {fitting} of {steps} steps ran")
    return PassSchedule(lcm_timesteps(fitting, strength), note)


def parse_timesteps(text: str) -> tuple[int, ...]:
    """``"999, 749, 499, 249"`` -> (999, 749, 499, 249); empty -> (); anything else raises ScheduleError."""
    parts = [part for part in text.replace(",", " ").split() if part]
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise ScheduleError(f"explicit timesteps must be whole numbers separated by commas, got {text!r}.") from None
    return explicit_timesteps(values) if values else ()


def boundary_scalings(timestep: int, timestep_scaling: float = TIMESTEP_SCALING,
                      sigma_data: float = SIGMA_DATA) -> tuple[float, float]:
    """``(c_skip, c_out)`` of the consistency boundary condition at a discrete timestep."""
    scaled = timestep * timestep_scaling
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


def sample_lcm(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict[str, Any] | None = None,
               callback: Callback | None = None, disable: bool | None = None,
               noise_sampler: NoiseSampler | None = None, *, schedule: NoiseSchedule) -> torch.Tensor:
    """Multistep consistency sampling (LCM paper, Algorithm 3), step for step as ``LCMScheduler.step``."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or _gaussian(x)
    timesteps = _snap(schedule, sigmas)
    for i, t in enumerate(timesteps):
        sigma = schedule.sigma(t).to(x)
        # 1. Model call at the exact discrete timestep: the x0 prediction of the epsilon model.
        predicted_x0 = model(x, sigma * x.new_ones([x.shape[0]]), **extra_args)
        # 2. Boundary condition: c_skip applies to the variance-preserving sample x * sqrt(alpha_t).
        c_skip, c_out = boundary_scalings(t)
        denoised = c_out * predicted_x0 + c_skip * (x * schedule.alphas_cumprod[t].to(x).sqrt())
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})
        # 3. Re-noise to the next timestep, except after the last one.
        if i == len(timesteps) - 1:
            return denoised
        sigma_next = schedule.sigma(timesteps[i + 1]).to(x)
        x = denoised + sigma_next * noise_sampler(sigma, sigma_next)
    return x


def sample_tcd(model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict[str, Any] | None = None,
               callback: Callback | None = None, disable: bool | None = None,
               noise_sampler: NoiseSampler | None = None, *, schedule: NoiseSchedule,
               gamma: float = TCD_GAMMA) -> torch.Tensor:
    """Trajectory consistency sampling (TCD paper, strategic stochastic sampling), as ``TCDScheduler.step``.

    ``gamma`` is diffusers' ``eta``: 0 is deterministic, 1 re-noises fully like LCM. It is not called
    ``eta`` so the WebUI does not feed it its ancestral eta setting (``Sampler.initialize``).
    """
    if not 0.0 <= gamma <= 1.0:
        raise ScheduleError(f"TCD gamma must lie in 0..1, got {gamma}.")
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or _gaussian(x)
    timesteps = _snap(schedule, sigmas)
    for i, t in enumerate(timesteps):
        last = i == len(timesteps) - 1
        sigma = schedule.sigma(t).to(x)
        # 1. Model call, then the epsilon it implies.
        predicted_x0 = model(x, sigma * x.new_ones([x.shape[0]]), **extra_args)
        epsilon = (x - predicted_x0) / sigma
        # 2. Jump along the trajectory to s = floor((1 - gamma) * t_prev), in float32 like diffusers.
        t_prev = 0 if last else timesteps[i + 1]
        s = int(torch.floor((1 - gamma) * torch.tensor(t_prev, dtype=torch.long)))
        sigma_s = schedule.sigma(s).to(x)
        x_s = predicted_x0 + sigma_s * epsilon
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": predicted_x0})
        if last:
            # 3a. diffusers returns the t=0-noised sample in its variance-preserving scale.
            return x_s * schedule.alphas_cumprod[s].to(x).sqrt()
        # 3b. Add noise from s back up to t_prev (nothing when gamma is 0, where s == t_prev).
        sigma_prev = schedule.sigma(t_prev).to(x)
        x = x_s
        if gamma > 0:  # drawn even when s == t_prev, as diffusers does, so seeds stay aligned
            x = x_s + (sigma_prev**2 - sigma_s**2).clamp(min=0).sqrt() * noise_sampler(sigma, sigma_prev)
    return x


def _snap(schedule: NoiseSchedule, sigmas: torch.Tensor) -> list[int]:
    """Timesteps for every sigma but the final 0."""
    values = [s for s in sigmas.tolist() if s > 0]
    if not values:
        raise ScheduleError("the sampler needs at least one sigma above 0.")
    return [schedule.timestep(s) for s in values]


def _gaussian(x: torch.Tensor) -> NoiseSampler:
    return lambda sigma, sigma_next: torch.randn_like(x)


def _check_strength(strength: float) -> None:
    if not 0.0 < strength <= 1.0:
        raise ScheduleError(f"strength (denoising strength) must lie in (0, 1], got {strength}.")
