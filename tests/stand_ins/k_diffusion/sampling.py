"""Imitates the parts of ``k_diffusion/sampling.py`` the WebUI and this extension touch.

- ``torch``: a module-level name on purpose. During a generation the WebUI rebinds
  ``k_diffusion.sampling.torch`` to an object whose ``randn_like`` draws the next seeded batch
  (``modules/sd_samplers_common.py`` TorchHijack), so any noise drawn here must be looked up
  through this global at call time.
- ``default_noise_sampler(x)``: a callable ``(sigma, sigma_next) -> noise shaped like x``.
- ``sample_euler``: a first-order sampler for the stand-in registry's built-in entries (the real
  one also has "churn" options, which nothing here uses).
"""
import itertools

import torch


def default_noise_sampler(x):
    def draw(sigma, sigma_next):
        return torch.randn_like(x)  # resolved at call time: the WebUI may have swapped ``torch``

    return draw


def sample_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """Plain Euler steps on the probability-flow ODE, dx/dsigma = (x - denoised) / sigma."""
    kwargs = extra_args or {}
    per_image = x.new_ones(len(x))
    for step, (now, after) in enumerate(itertools.pairwise(sigmas)):
        denoised = model(x, now * per_image, **kwargs)
        if callback is not None:
            callback({"i": step, "x": x, "sigma": now, "denoised": denoised})
        x = x + (after - now) * (x - denoised) / now
    return x
