"""The timesteps few-step samplers visit, exact to diffusers' LCMScheduler and TCDScheduler.

Pure torch, no WebUI import. :class:`NoiseSchedule` is the model's table of discrete noise levels;
:func:`lcm_timesteps` and :func:`explicit_timesteps` are ``set_timesteps`` of diffusers 0.35.2
(``schedulers/scheduling_lcm.py``, ``schedulers/scheduling_tcd.py``), :func:`pass_schedule` the
schedule of one WebUI pass (txt2img, img2img or hires), and :func:`boundary_scalings` the consistency
boundary condition the samplers (:mod:`lib_lcm.sampling.samplers`) and the distillation share.
``tests/test_sampling_oracle.py`` holds them to diffusers.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

NUM_TRAIN_TIMESTEPS = 1000
ORIGINAL_STEPS = 50  # the distillation grid: t = 19, 39, ..., 999 (LCM paper, "skipping step" k = 20)
TIMESTEP_SCALING = 10.0
SIGMA_DATA = 0.5


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


def _check_strength(strength: float) -> None:
    if not 0.0 < strength <= 1.0:
        raise ScheduleError(f"strength (denoising strength) must lie in (0, 1], got {strength}.")
