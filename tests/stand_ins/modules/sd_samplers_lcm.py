"""Imitates ``modules/sd_samplers_lcm.py`` (A1111 1.10.1): the WebUI's own "LCM" sampler (alias
k_lcm), which this extension must leave alone unless its accordion asks for the exact schedule.

Behaviour reproduced:
- Its denoiser only knows the 50 timesteps of LCM's distillation grid, 19, 39, ..., 999: every
  sigma is snapped to the nearest grid sigma and the model is called at that grid timestep.
- Its "Automatic" schedule spaces n timesteps evenly from 999 down to 19 and snaps each to the grid
  (4 steps: 999, 679, 339, 19).
- The output gets LCM's boundary condition at the grid timestep t (sigma_data 0.5, t scaled by 10):
  c_skip * x + c_out * denoised.
- ``sample_lcm``: at each sigma take the denoised estimate, then add fresh noise at the next sigma
  unless it is the final 0.
"""
import torch
from k_diffusion import external
from k_diffusion.sampling import default_noise_sampler

from modules import sd_samplers_common
from modules.sd_samplers_cfg_denoiser import CFGDenoiser
from modules.sd_samplers_kdiffusion import KDiffusionSampler

STRIDE = 1000 // 50  # training timesteps between two grid points
FIRST = STRIDE - 1  # the grid's lowest timestep, 19


class LCMCompVisDenoiser(external.DiscreteEpsDDPMDenoiser):
    def __init__(self, model):
        grid = torch.arange(FIRST, 1000, STRIDE)
        super().__init__(model, model.alphas_cumprod[grid].float(), quantize=True)

    def sigma_to_t(self, levels, quantize=None):
        return super().sigma_to_t(levels, quantize=True) * STRIDE + FIRST

    def t_to_sigma(self, t):
        on_grid = ((t - FIRST) / STRIDE).float().clamp(0, len(self.sigmas) - 1)
        return super().t_to_sigma(on_grid)

    def get_sigmas(self, n):
        top = len(self.sigmas) * STRIDE - 1
        return torch.cat([self.t_to_sigma(torch.linspace(top, FIRST, n)), torch.zeros(1)])

    def get_eps(self, x, t, **kwargs):
        return self.inner_model.apply_model(x, t, **kwargs)

    def forward(self, x, sigma, **cond):
        denoised = super().forward(x, sigma, **cond)
        scaled_t = (self.sigma_to_t(sigma) * 10.0).reshape(-1, *([1] * (x.ndim - 1)))
        spread = scaled_t ** 2 + 0.5 ** 2
        return (0.5 ** 2 / spread) * x + (scaled_t / spread ** 0.5) * denoised


def sample_lcm(model, x, sigmas, extra_args=None, callback=None, disable=None):
    kwargs = extra_args or {}
    fresh_noise = default_noise_sampler(x)
    per_image = x.new_ones(len(x))
    for step in range(len(sigmas) - 1):
        now, after = sigmas[step], sigmas[step + 1]
        denoised = model(x, now * per_image, **kwargs)
        if callback is not None:
            callback({"i": step, "x": x, "sigma": now, "denoised": denoised})
        x = denoised + after * fresh_noise(now, after) if after > 0 else denoised
    return x


class CFGDenoiserLCM(CFGDenoiser):
    def wrap_model(self, sd_model):
        return LCMCompVisDenoiser(sd_model)


class LCMSampler(KDiffusionSampler):
    cfg_denoiser_class = CFGDenoiserLCM


samplers_data_lcm = [sd_samplers_common.SamplerData("LCM", lambda model: LCMSampler(sample_lcm, model), ["k_lcm"], {})]
