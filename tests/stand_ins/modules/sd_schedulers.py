"""Mirrors modules/sd_schedulers.py: schedulers and schedulers_map keyed by name and by label;
"Automatic" has no function (the sampler's default or the model's own sigmas are used)."""
from collections import namedtuple

import torch
from k_diffusion.sampling import append_zero

Scheduler = namedtuple("Scheduler", ["name", "label", "function"])


def karras(n, sigma_min, sigma_max, rho=7.0, **kwargs):
    ramp = torch.linspace(0, 1, n)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def sgm_uniform(n, sigma_min, sigma_max, inner_model, **kwargs):
    start, end = inner_model.sigma_to_t(torch.tensor(sigma_max)), inner_model.sigma_to_t(torch.tensor(sigma_min))
    sigs = [inner_model.t_to_sigma(ts) for ts in torch.linspace(start, end, n + 1)[:-1]]
    sigs += [0.0]
    return torch.FloatTensor(sigs)


schedulers = [Scheduler("automatic", "Automatic", None), Scheduler("karras", "Karras", karras),
              Scheduler("sgm_uniform", "SGM Uniform", sgm_uniform)]
schedulers_map = {**{x.name: x for x in schedulers}, **{x.label: x for x in schedulers}}
