"""Mirrors modules/sd_samplers.py: all_samplers_map, built once at import (names only here)."""
from collections import namedtuple

SamplerData = namedtuple('SamplerData', ['name', 'constructor', 'aliases', 'options'])

all_samplers = [SamplerData(name, None, [], {}) for name in ("DPM++ 2M", "Euler a", "Euler", "DDIM", "LCM")]
all_samplers_map = {x.name: x for x in all_samplers}
