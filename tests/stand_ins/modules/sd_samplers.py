"""Mirrors modules/sd_samplers.py: all_samplers / all_samplers_map built once at import,
set_samplers() (samplers is the same list object; samplers_map by lower-cased name and alias),
find_sampler_config, create_sampler (sets .config after construction) and the functools.cache'd
get_sampler_and_scheduler that maps unknown names to samplers[0]. Forge's add_sampler is
installed by tests that play Forge (modules/sd_samplers.py in lllyasviel/stable-diffusion-webui-forge)."""
import functools

from modules import sd_samplers_kdiffusion, sd_samplers_lcm, sd_schedulers, shared

all_samplers = [
    *sd_samplers_kdiffusion.samplers_data_k_diffusion,
    *sd_samplers_lcm.samplers_data_lcm,
]
all_samplers_map = {x.name: x for x in all_samplers}

samplers = []
samplers_for_img2img = []
samplers_map = {}
samplers_hidden = {}


def find_sampler_config(name):
    return all_samplers_map.get(name, None) if name is not None else all_samplers[0]


def create_sampler(name, model):
    config = find_sampler_config(name)
    assert config is not None, f'bad sampler name: {name}'
    sampler = config.constructor(model)
    sampler.config = config
    return sampler


def set_samplers():
    global samplers, samplers_for_img2img, samplers_hidden
    samplers_hidden = set(shared.opts.hide_samplers)
    samplers = all_samplers
    samplers_for_img2img = all_samplers
    samplers_map.clear()
    for sampler in all_samplers:
        samplers_map[sampler.name.lower()] = sampler.name
        for alias in sampler.aliases:
            samplers_map[alias.lower()] = sampler.name


def visible_sampler_names():
    return [x.name for x in samplers if x.name not in samplers_hidden]


@functools.cache
def get_sampler_and_scheduler(sampler_name, scheduler_name, *, convert_automatic=True):
    default_sampler = samplers[0]
    found_scheduler = sd_schedulers.schedulers_map.get(scheduler_name, sd_schedulers.schedulers[0])
    name = sampler_name or default_sampler.name
    sampler = all_samplers_map.get(name, default_sampler)
    return sampler.name, found_scheduler.label


def forge_add_sampler(sampler):
    """Forge's add_sampler: append if new, rebind all_samplers_map, set_samplers(); no cache clear."""
    global all_samplers, all_samplers_map
    if sampler.name not in [x.name for x in all_samplers]:
        all_samplers.append(sampler)
        all_samplers_map = {x.name: x for x in all_samplers}
        set_samplers()


set_samplers()
