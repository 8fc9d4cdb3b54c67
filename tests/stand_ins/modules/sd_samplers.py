"""Imitates the sampler registry of ``modules/sd_samplers.py`` (A1111 1.10.1).

- ``all_samplers`` (a list built at import: the k-diffusion entries, then "LCM") and
  ``all_samplers_map`` (name -> entry). Extensions register by appending to the list and adding to
  the map, then calling ``set_samplers()``.
- ``set_samplers()``: ``samplers`` and ``samplers_for_img2img`` become the very ``all_samplers``
  list (not copies), ``samplers_hidden`` the "hide_samplers" setting, and ``samplers_map`` maps
  every lower-cased name and alias to its sampler's name.
- ``create_sampler(name, model)``: constructs from the entry (an unknown name is an assertion
  error; None means the first entry) and sets ``sampler.config`` to the entry afterwards.
- ``get_sampler_and_scheduler(sampler, scheduler)`` is ``functools.cache``'d and answers an unknown
  sampler name with ``samplers[0]`` (an unknown scheduler with the first scheduler, and a sampler's
  own default scheduler with "Automatic" unless ``convert_automatic=False``). So a name looked up
  before it was registered stays wrong until the cache is cleared. ``process_images`` corrects
  p's sampler and scheduler names through it (``fix_p_invalid_sampler_and_scheduler``).
- ``forge_add_sampler``: Forge's ``add_sampler`` (lllyasviel/stable-diffusion-webui-forge), for
  tests that play Forge: appends when the name is new, rebuilds the map from the list, calls
  ``set_samplers()``, and does not clear the cache.
"""
import functools

from modules import sd_samplers_kdiffusion, sd_samplers_lcm, sd_schedulers, shared

all_samplers = [*sd_samplers_kdiffusion.samplers_data_k_diffusion, *sd_samplers_lcm.samplers_data_lcm]
all_samplers_map = {entry.name: entry for entry in all_samplers}
samplers_map = {}  # samplers, samplers_for_img2img and samplers_hidden are set by set_samplers() below


def set_samplers():
    global samplers, samplers_for_img2img, samplers_hidden
    samplers = samplers_for_img2img = all_samplers
    samplers_hidden = {*shared.opts.hide_samplers}
    samplers_map.clear()
    samplers_map.update({key.lower(): entry.name for entry in all_samplers for key in (entry.name, *entry.aliases)})


def visible_sampler_names():
    return [entry.name for entry in samplers if entry.name not in samplers_hidden]


def find_sampler_config(name):
    return all_samplers[0] if name is None else all_samplers_map.get(name)


def create_sampler(name, model):
    entry = find_sampler_config(name)
    assert entry is not None, f"bad sampler name: {name}"
    sampler = entry.constructor(model)
    sampler.config = entry
    return sampler


@functools.cache
def get_sampler_and_scheduler(sampler, scheduler, *, convert_automatic=True):
    fallback = samplers[0]
    entry = all_samplers_map.get(sampler or fallback.name, fallback)
    scheduler = sd_schedulers.schedulers_map.get(scheduler, sd_schedulers.schedulers[0])
    if convert_automatic and entry.options.get("scheduler") == scheduler.name:
        scheduler = sd_schedulers.schedulers[0]
    return entry.name, scheduler.label


def forge_add_sampler(sampler):
    global all_samplers_map
    if all(entry.name != sampler.name for entry in all_samplers):
        all_samplers.append(sampler)
        all_samplers_map = {entry.name: entry for entry in all_samplers}
        set_samplers()


set_samplers()
