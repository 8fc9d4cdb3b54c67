"""Imitates the helpers of ``modules/sd_samplers_common.py`` (A1111 1.10.1) that samplers share:

- ``SamplerData(name, constructor, aliases, options)``: a registry entry; ``total_steps`` counts
  two model evaluations per step for entries whose options say ``second_order``.
- ``setup_img2img_steps(p, steps=None)``: returns (schedule length, t_enc); img2img samples the
  last t_enc + 1 sigmas of that schedule. By default the schedule is p.steps long and t_enc is
  int(strength * p.steps), strength capped at 0.999, so fewer steps run than were asked for. With
  the "img2img_fix_steps" setting, or when a step count is passed (the hires pass, and our exact
  sampler), exactly that many steps run, at the end of a schedule stretched to count / strength.
- ``InterruptedException``: raised inside the model call to stop sampling early.
- ``TorchHijack``: what the WebUI installs as ``k_diffusion.sampling.torch`` so that sampler noise
  comes from the generation's seeded random source (``p.rng``) instead of the global generator.

Settings are read as ``shared.opts.<name>`` at call time (the real module binds ``opts`` at import)
so that tests may replace the settings object.
"""
from collections import namedtuple

import torch

from modules import shared


class SamplerData(namedtuple("SamplerData", "name constructor aliases options")):
    def total_steps(self, steps):
        return steps * 2 if self.options.get("second_order") else steps


def setup_img2img_steps(p, steps=None):
    strength = min(p.denoising_strength, 0.999)
    if steps is None and not shared.opts.img2img_fix_steps:
        return p.steps, int(strength * p.steps)
    wanted = steps or p.steps
    stretched = int(wanted / strength) if p.denoising_strength > 0 else 0
    return stretched, wanted - 1


class InterruptedException(BaseException):
    pass


class TorchHijack:
    """torch itself, except that ``randn_like`` hands out the next batch of the seeded noise."""

    def __init__(self, p):
        self.rng = p.rng

    def randn_like(self, x):
        return self.rng.next()

    def __getattr__(self, name):  # only reached for names this class does not define
        return getattr(torch, name)
