"""Oracle plumbing: a tiny random UNet, diffusers' scheduler loops, and a k-diffusion-style denoiser.

The denoiser mirrors k-diffusion's ``CompVisDenoiser`` (``k_diffusion/external.py``), which the
WebUI wraps around its UNet: input scaled by ``1/sqrt(sigma^2 + 1)``, sigma mapped to its
timestep, output ``x - sigma * eps``; classifier-free guidance combined on the denoised outputs
as ``modules/sd_samplers_cfg_denoiser.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers import LCMScheduler, TCDScheduler, UNet2DConditionModel

from lib_lcm.sampling.schedule import NoiseSchedule

SD15_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
LATENT = (2, 4, 8, 8)  # two images, so a batch mix-up cannot hide


def tiny_unet(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=8, norm_num_groups=8)
    return unet.eval()


@dataclass
class Conditioning:
    cond: torch.Tensor
    uncond: torch.Tensor
    scale: float = 1.0


def conditioning(seed: int = 1, scale: float = 1.0) -> Conditioning:
    g = torch.Generator().manual_seed(seed)
    return Conditioning(torch.randn(LATENT[0], 5, 16, generator=g), torch.randn(LATENT[0], 5, 16, generator=g), scale)


RESIDUAL = 0.1
ALPHAS_CUMPROD = torch.cumprod(1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2, 0)


@dataclass
class CountingUnet:
    """An epsilon model of SD's scale around the random UNet, counting calls and latents.

    A random UNet alone predicts noise unrelated to its input: at t = 999 that makes x0 about 15
    times its output, latents reach ±100, and fp32's own spacing there (7.6e-6 at 64) is the whole
    1e-5 budget. So the model is the exact noise predictor for unit-Gaussian latents,
    sqrt(1 - alpha_t) * x_t, plus the random UNet (prompt-dependent) scaled by 0.1: latents stay
    SD-sized while every UNet path still shapes the result. Both sides call this same function.
    """

    unet: UNet2DConditionModel
    calls: int = 0
    latents: int = 0
    timesteps: list[int] = field(default_factory=list)

    @torch.no_grad()
    def eps(self, x_vp: torch.Tensor, t: int, context: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.latents += x_vp.shape[0]
        self.timesteps.append(int(t))
        residual = self.unet(x_vp, t, encoder_hidden_states=context).sample
        return (1 - ALPHAS_CUMPROD[int(t)]).sqrt() * x_vp + RESIDUAL * residual

    def guided_eps(self, x_vp: torch.Tensor, t: int, c: Conditioning) -> torch.Tensor:
        if c.scale == 1.0:
            return self.eps(x_vp, t, c.cond)
        both = self.eps(torch.cat([x_vp, x_vp]), t, torch.cat([c.cond, c.uncond]))
        cond, uncond = both.chunk(2)
        return uncond + c.scale * (cond - uncond)


class KDiffusionStyleDenoiser:
    """``model(x, sigma, **extra)`` -> denoised, as the WebUI's CFG denoiser presents the UNet."""

    def __init__(self, unet: CountingUnet, schedule: NoiseSchedule, c: Conditioning) -> None:
        self.unet, self.schedule, self.c = unet, schedule, c

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        t = self.schedule.timestep(sigma[0])
        assert torch.equal(sigma, torch.full_like(sigma, float(self.schedule.sigma(t)))), "off-table sigma"
        s = sigma.view(-1, 1, 1, 1)
        x_vp = x / (s**2 + 1) ** 0.5
        if self.c.scale == 1.0:
            return x - s * self.unet.eps(x_vp, t, self.c.cond)
        both = self.unet.eps(torch.cat([x_vp, x_vp]), t, torch.cat([self.c.cond, self.c.uncond]))
        cond, uncond = (x - s * e for e in both.chunk(2))
        return uncond + (cond - uncond) * self.c.scale


def lcm_scheduler() -> LCMScheduler:
    return LCMScheduler(**SD15_BETAS)


def tcd_scheduler() -> TCDScheduler:
    return TCDScheduler(**SD15_BETAS)


def schedule_of(scheduler: LCMScheduler | TCDScheduler) -> NoiseSchedule:
    assert torch.equal(scheduler.alphas_cumprod, ALPHAS_CUMPROD)
    return NoiseSchedule(scheduler.alphas_cumprod.clone())


def diffusers_loop(scheduler: LCMScheduler | TCDScheduler, unet: CountingUnet, latents: torch.Tensor,
                   c: Conditioning, seed: int, **step_kwargs: float) -> torch.Tensor:
    """The denoising loop of diffusers' LCM pipelines (``pipeline_latent_consistency_*.py``)."""
    generator = torch.Generator().manual_seed(seed)
    denoised = latents
    for t in scheduler.timesteps:
        eps = unet.guided_eps(latents, int(t), c)
        latents, denoised = scheduler.step(eps, t, latents, generator=generator, return_dict=False, **step_kwargs)
    return denoised if isinstance(scheduler, LCMScheduler) else latents


def seeded_noise(shape: torch.Size, seed: int):
    """Draws as ``randn_tensor(shape, generator=...)`` does on the CPU, in the same order."""
    generator = torch.Generator().manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(shape, generator=generator)
