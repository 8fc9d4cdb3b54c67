"""LCM and TCD in the WebUI's sampler registry, and the swap to our exact sampler when the accordion is on.

- ``register_samplers()`` adds "TCD", and "LCM" only where the WebUI has none, to the registry
  of ``modules/sd_samplers.py`` (guide section 8: append, map, ``set_samplers()``, clear the
  ``get_sampler_and_scheduler`` cache). It runs from the scripts/ file body, so Reload UI repeats
  it; repeating changes nothing.
- ``use_exact_sampler(p)`` (``process_before_every_sampling``) swaps the WebUI's own "LCM"
  sampler object for our exact twin when the accordion is on; ``p.sampler_name`` stays "LCM".
- The sampler class itself is :class:`lib_lcm.webui.exact_sampler.ExactSampler`, imported when the
  WebUI first creates one of ours.
"""

from __future__ import annotations

import functools
from typing import Any

from lib_lcm.rules.catalog import LCM_SAMPLER as LCM
from lib_lcm.rules.catalog import TCD_SAMPLER as TCD
from lib_lcm.webui.attributes import EXACT_ATTR

_MARK = "lcm_lora"  # key in SamplerData.options that marks our registrations
_ALIASES = {LCM: ["k_lcm"], TCD: ["k_tcd"]}


def register_samplers() -> list[str]:
    """Make "TCD" (and "LCM" where missing) selectable; returns the names that are ours."""
    from modules import sd_samplers

    ours = []
    for name in (LCM, TCD):
        existing = sd_samplers.all_samplers_map.get(name)
        if existing is not None and not is_ours(existing):
            continue  # the WebUI's own LCM (A1111 >= 1.8, Forge) or another extension's sampler
        _put(sd_samplers, sampler_data(name))
        ours.append(name)
    sd_samplers.set_samplers()
    # get_sampler_and_scheduler is cached; it resolved unknown names to samplers[0] before we existed
    clear = getattr(getattr(sd_samplers, "get_sampler_and_scheduler", None), "cache_clear", None)
    if callable(clear):
        clear()
    return ours


def sampler_data(name: str) -> Any:
    from modules import sd_samplers_common

    return sd_samplers_common.SamplerData(name, functools.partial(_construct, name), list(_ALIASES[name]),
                                          {_MARK: True})


def is_ours(data: Any) -> bool:
    return bool(getattr(data, "options", {}).get(_MARK))


def use_exact_sampler(p: Any) -> None:
    """Replace the WebUI's "LCM" sampler object by ours just before it samples (accordion on only)."""
    sampler = getattr(p, "sampler", None)
    config = getattr(sampler, "config", None)
    if not getattr(p, EXACT_ATTR, False) or sampler is None or is_ours(config):
        return
    if getattr(config, "name", None) != LCM:
        return
    twin = _construct(LCM, p.sd_model)
    twin.config = sampler_data(LCM)
    p.sampler = twin


def _put(sd_samplers: Any, data: Any) -> None:
    names = [s.name for s in sd_samplers.all_samplers]
    if data.name in names:  # our own entry from before a Reload UI
        sd_samplers.all_samplers[names.index(data.name)] = data
    else:
        sd_samplers.all_samplers.append(data)
    sd_samplers.all_samplers_map[data.name] = data


def _construct(name: str, sd_model: Any) -> Any:
    from lib_lcm.webui.exact_sampler import ExactSampler

    return ExactSampler(name, sd_model)
