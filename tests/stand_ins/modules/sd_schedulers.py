"""Imitates ``modules/sd_schedulers.py`` (A1111 1.10.1): the "Schedule type" choices.

``schedulers_map`` finds a scheduler by its name or its label. "Automatic" has no function: the
sampler then uses its registry entry's default scheduler, or the denoiser's own ``get_sigmas``.
A scheduler function returns n descending sigmas followed by 0; those that work in timesteps are
marked ``need_inner_model`` and get the k-diffusion denoiser. Only three of the real list are kept.
"""
from collections.abc import Callable
from typing import NamedTuple

import torch


class Scheduler(NamedTuple):
    name: str
    label: str
    function: Callable | None
    need_inner_model: bool = False


def karras(n, sigma_min, sigma_max, rho=7.0, **_):
    """Karras et al. 2022: evenly spaced in sigma ** (1 / rho)."""
    ramp = torch.linspace(sigma_max ** (1 / rho), sigma_min ** (1 / rho), n)
    return torch.cat([ramp ** rho, torch.zeros(1)])


def sgm_uniform(n, sigma_min, sigma_max, inner_model, **_):
    """Timesteps evenly spaced from t(sigma_max) towards t(sigma_min), n of n + 1 points kept."""
    first = float(inner_model.sigma_to_t(torch.tensor(sigma_max)))
    last = float(inner_model.sigma_to_t(torch.tensor(sigma_min)))
    timesteps = torch.linspace(first, last, n + 1)[:n]
    return torch.cat([inner_model.t_to_sigma(timesteps), torch.zeros(1)])


schedulers = [
    Scheduler("automatic", "Automatic", None),
    Scheduler("karras", "Karras", karras),
    Scheduler("sgm_uniform", "SGM Uniform", sgm_uniform, need_inner_model=True),
]
schedulers_map = {key: s for s in schedulers for key in (s.name, s.label)}
