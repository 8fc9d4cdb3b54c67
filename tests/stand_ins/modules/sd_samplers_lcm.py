"""Mirrors modules/sd_samplers_lcm.py: the built-in "LCM" (alias k_lcm). Its denoiser snaps every
sigma to the 50-step grid t = 19, 39, ..., 999 and applies the boundary scalings itself;
"Automatic" spaces n points linearly in t from 999 down to 19."""
import torch
from k_diffusion.external import DiscreteEpsDDPMDenoiser
from k_diffusion.sampling import append_zero, default_noise_sampler

from modules import sd_samplers_cfg_denoiser, sd_samplers_common, sd_samplers_kdiffusion, shared


class LCMCompVisDenoiser(DiscreteEpsDDPMDenoiser):
    def __init__(self, model):
        self.skip_steps = 1000 // 50
        valid = torch.stack([model.alphas_cumprod[19 + 20 * i] for i in range(50)]).float()
        super().__init__(model, valid, quantize=None)

    def get_sigmas(self, n=None):
        t = torch.linspace(999, 19, n)
        return append_zero(self.t_to_sigma(t))

    def sigma_to_t(self, sigma, quantize=None):
        dists = sigma.log() - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape) * self.skip_steps + (self.skip_steps - 1)

    def t_to_sigma(self, timestep):
        t = torch.clamp(((timestep - (self.skip_steps - 1)) / self.skip_steps).float(), min=0, max=(len(self.sigmas) - 1))
        return super().t_to_sigma(t)

    def get_eps(self, *args, **kwargs):
        return self.inner_model.apply_model(*args, **kwargs)

    def forward(self, input, sigma, **kwargs):
        c_out, c_in = [x[:, None, None, None] for x in self.get_scalings(sigma)]
        t = self.sigma_to_t(sigma)
        eps = self.get_eps(input * c_in, t, **kwargs)
        scaled = t[:, None, None, None] * 10.0
        return scaled / (scaled ** 2 + 0.25) ** 0.5 * (input + eps * c_out) + 0.25 / (scaled ** 2 + 0.25) * input


def sample_lcm(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = default_noise_sampler(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': sigmas[i], 'sigma_hat': sigmas[i], 'denoised': denoised})
        x = denoised
        if sigmas[i + 1] > 0:
            x += sigmas[i + 1] * noise_sampler(sigmas[i], sigmas[i + 1])
    return x


class CFGDenoiserLCM(sd_samplers_cfg_denoiser.CFGDenoiser):
    @property
    def inner_model(self):
        if self.model_wrap is None:
            self.model_wrap = LCMCompVisDenoiser(shared.sd_model)
        return self.model_wrap


class LCMSampler(sd_samplers_kdiffusion.KDiffusionSampler):
    def __init__(self, funcname, sd_model, options=None):
        super().__init__(funcname, sd_model, options)
        self.model_wrap_cfg = CFGDenoiserLCM(self)
        self.model_wrap = self.model_wrap_cfg.inner_model


samplers_data_lcm = [
    sd_samplers_common.SamplerData('LCM', lambda model: LCMSampler(sample_lcm, model), ['k_lcm'], {}),
]
