"""Imitates the denoiser wrappers of ``k_diffusion/external.py`` that the WebUI puts around an
epsilon-predicting model: ``DiscreteEpsDDPMDenoiser`` and its ``CompVisDenoiser`` flavour.

Behaviour reproduced:
- The noise table: one sigma per training timestep, sigma_t = sqrt((1 - alphabar_t) / alphabar_t),
  ascending, kept as ``sigmas`` (and its logarithm).
- ``sigma_to_t``: a sigma's fractional timestep, linear in log-sigma between its two neighbouring
  table entries (clamped to the table's ends); with ``quantize``, the nearest entry's index.
  A sigma taken from the table maps back to its own whole timestep.
- ``t_to_sigma``: the inverse, log-sigma interpolated between floor(t) and ceil(t).
- ``get_sigmas(n)``: n timesteps spaced evenly from the last to the first, as sigmas, then 0.
- Calling the wrapper on (x, sigma): the model sees x / sqrt(sigma^2 + 1) at t(sigma) and predicts
  eps; the result is the denoised estimate x - sigma * eps. ``CompVisDenoiser`` reads
  ``alphas_cumprod`` from the model and calls ``model.apply_model(x, t, cond=...)``.
"""
import torch
from torch import nn


def _per_image(values, like):
    """Shape a per-image vector to broadcast over an image batch."""
    return values.reshape(-1, *([1] * (like.ndim - 1)))


class DiscreteEpsDDPMDenoiser(nn.Module):
    def __init__(self, inner_model, alphas_cumprod, quantize):
        super().__init__()
        self.inner_model = inner_model
        self.quantize = quantize
        table = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.register_buffer("sigmas", table)
        self.register_buffer("log_sigmas", torch.log(table))

    def sigma_to_t(self, levels, quantize=None):
        logs = self.log_sigmas
        wanted = torch.log(levels).reshape(-1)
        nearest_only = self.quantize if quantize is None else quantize
        if nearest_only:
            return (wanted[None, :] - logs[:, None]).abs().argmin(dim=0).reshape(levels.shape)
        # index of the last entry not above the wanted value, kept one short of the end
        below = (torch.searchsorted(logs, wanted, right=True) - 1).clamp(0, len(logs) - 2)
        step = logs[below + 1] - logs[below]
        fraction = ((wanted - logs[below]) / step).clamp(0, 1)
        return (below + fraction).reshape(levels.shape)

    def t_to_sigma(self, t):
        t = t.float()
        under, over = t.floor(), t.ceil()
        logs = self.log_sigmas
        return torch.lerp(logs[under.long()], logs[over.long()], t - under).exp()

    def get_sigmas(self, n):
        timesteps = torch.linspace(len(self.sigmas) - 1, 0, n)
        return torch.cat([self.t_to_sigma(timesteps), torch.zeros(1)])

    def get_eps(self, x, t, **kwargs):
        return self.inner_model(x, t, **kwargs)

    def forward(self, x, sigma, **cond):
        s = _per_image(sigma, x)
        eps = self.get_eps(x * (s * s + 1) ** -0.5, self.sigma_to_t(sigma), **cond)
        return x - s * eps


class CompVisDenoiser(DiscreteEpsDDPMDenoiser):
    """For ldm's LatentDiffusion: the table comes from the model, eps from ``apply_model``."""

    def __init__(self, model, quantize=False, device="cpu"):
        super().__init__(model, model.alphas_cumprod, quantize)

    def get_eps(self, x, t, **kwargs):
        return self.inner_model.apply_model(x, t, **kwargs)
