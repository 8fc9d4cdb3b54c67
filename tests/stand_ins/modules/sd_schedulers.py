"""Mirrors modules/sd_schedulers.py: schedulers_map keyed by name and by label."""
from collections import namedtuple

Scheduler = namedtuple("Scheduler", ["name", "label"])

schedulers = [Scheduler("automatic", "Automatic"), Scheduler("karras", "Karras"),
              Scheduler("sgm_uniform", "SGM Uniform")]
schedulers_map = {**{x.name: x for x in schedulers}, **{x.label: x for x in schedulers}}
