"""LCM and TCD sampling in k-diffusion's calling convention, step for step as diffusers' schedulers.

Pure torch, no WebUI import. The samplers use the convention that the WebUI's ``KDiffusionSampler``
(``modules/sd_samplers_kdiffusion.py``) drives:

- ``model(x, sigma, **extra_args)`` returns the *denoised* latent (the x0 prediction of an
  epsilon model: ``x - sigma * eps``), with ``x`` in the variance-exploding scale
  ``x = x_vp / sqrt(alpha_cumprod)``;
- ``sigmas`` is descending and ends with 0; ``noise_sampler(sigma, sigma_next)`` draws the
  re-injected noise, so the WebUI's seeded generator reproduces images;
- ``callback({"x", "i", "sigma", "sigma_hat", "denoised"})`` after each model call.

Each sigma is snapped to the nearest of the model's discrete timesteps, and the model is called
with that timestep's exact sigma, so any scheduler's sigmas work; the exact reference schedules
come from :mod:`lib_lcm.sampling.schedule` through :meth:`NoiseSchedule.sigmas_for`. The step maths
mirror ``LCMScheduler.step`` and ``TCDScheduler.step`` of diffusers 0.35.2;
``tests/test_sampling_oracle.py`` holds them to 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lib_lcm.rules.catalog import TCD_GAMMA
from lib_lcm.sampling.schedule import NoiseSchedule, ScheduleError, boundary_scalings

Denoiser = Callable[..., torch.Tensor]
NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict[str, Any]], None]


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
