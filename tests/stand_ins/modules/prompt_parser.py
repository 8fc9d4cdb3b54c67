"""Mirrors modules/prompt_parser.py's conditioning containers and their reconstruction at a step:
MulticondLearnedConditioning.batch[i] lists image i's AND-parts with weights; each part is a
schedule of ScheduledPromptConditioning(end_at_step, cond)."""
from collections import namedtuple

import torch

ScheduledPromptConditioning = namedtuple("ScheduledPromptConditioning", ["end_at_step", "cond"])


class ComposableScheduledPromptConditioning:
    def __init__(self, schedules, weight=1.0):
        self.schedules = schedules
        self.weight = weight


class MulticondLearnedConditioning:
    def __init__(self, shape, batch):
        self.shape = shape
        self.batch = batch


def _at_step(schedules, current_step):
    for entry in schedules:
        if current_step <= entry.end_at_step:
            return entry.cond
    return schedules[-1].cond


def reconstruct_cond_batch(c, current_step):
    return torch.stack([_at_step(schedules, current_step) for schedules in c])


def reconstruct_multicond_batch(c, current_step):
    tensors, conds_list = [], []
    for composable_prompts in c.batch:
        conds_for_batch = []
        for composable_prompt in composable_prompts:
            conds_for_batch.append((len(tensors), composable_prompt.weight))
            tensors.append(_at_step(composable_prompt.schedules, current_step))
        conds_list.append(conds_for_batch)
    return conds_list, torch.stack(tensors)


def get_learned_conditioning(model, prompts, steps):
    """One schedule per prompt; prompt editing ([a:b:0.5]) is not modelled."""
    return [[ScheduledPromptConditioning(steps, model.get_learned_conditioning([prompt])[0])] for prompt in prompts]


def get_multicond_learned_conditioning(model, prompts, steps):
    """"a AND b :0.5" -> two parts, weights 1 and 0.5 (modules/prompt_parser.py get_multicond_prompt_list)."""
    batch = []
    for prompt in prompts:
        parts = []
        for part in prompt.split(" AND "):
            text, _, weight = part.partition(" :")
            schedules = get_learned_conditioning(model, [text.strip()], steps)[0]
            parts.append(ComposableScheduledPromptConditioning(schedules, float(weight) if weight else 1.0))
        batch.append(parts)
    return MulticondLearnedConditioning((len(batch),), batch)
