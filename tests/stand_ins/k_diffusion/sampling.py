"""Mirrors k_diffusion/sampling.py: the module-level ``torch`` name the WebUI hijacks for seeded
noise (modules/sd_samplers_common.py TorchHijack), default_noise_sampler and append_zero."""
import torch


def append_zero(x):
    return torch.cat([x, x.new_zeros([1])])


def default_noise_sampler(x):
    return lambda sigma, sigma_next: torch.randn_like(x)


def sample_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """A plain k-diffusion sampler, for the built-in samplers of the stand-in registry."""
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': sigmas[i], 'sigma_hat': sigmas[i], 'denoised': denoised})
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x
