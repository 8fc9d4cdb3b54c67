"""Imitates the conditioning containers of ``modules/prompt_parser.py`` (A1111 1.10.1) and how the
CFG denoiser reads them at a given sampling step.

- Uncond (``get_learned_conditioning``): per prompt, a schedule: a list of
  ``ScheduledPromptConditioning(end_at_step, cond)``; at step s the first entry with
  s <= end_at_step applies (the last one past the end). Prompt editing ([a:b:0.5]) is not parsed
  here, so each schedule has one entry.
- Cond (``get_multicond_learned_conditioning``): a ``MulticondLearnedConditioning`` whose ``batch``
  holds, per prompt, its AND-parts, each with ``schedules`` and a ``weight`` ("a AND b :0.5" gives
  weights 1 and 0.5).
- ``reconstruct_multicond_batch(c, step)``: (for each image, [(row, weight) per part], the rows
  stacked); ``reconstruct_cond_batch(uncond, step)``: one row per prompt, stacked.
"""
import re
from dataclasses import dataclass
from typing import NamedTuple

import torch


class ScheduledPromptConditioning(NamedTuple):
    end_at_step: int
    cond: torch.Tensor


@dataclass
class ComposableScheduledPromptConditioning:
    schedules: list
    weight: float = 1.0


class MulticondLearnedConditioning:
    def __init__(self, shape, batch):
        self.shape, self.batch = shape, batch


def _cond_at(schedule, step):
    return next((entry.cond for entry in schedule if step <= entry.end_at_step), schedule[-1].cond)


def reconstruct_cond_batch(c, current_step):
    return torch.stack([_cond_at(schedule, current_step) for schedule in c])


def reconstruct_multicond_batch(c, current_step):
    rows, per_image = [], []
    for parts in c.batch:
        per_image.append([(len(rows) + k, part.weight) for k, part in enumerate(parts)])
        rows.extend(_cond_at(part.schedules, current_step) for part in parts)
    return per_image, torch.stack(rows)


def get_learned_conditioning(model, prompts, steps):
    return [[ScheduledPromptConditioning(steps, model.get_learned_conditioning([text])[0])] for text in prompts]


_AND = re.compile(r"\bAND\b")
_WEIGHT = re.compile(r"^(.*?)\s*:\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*$", re.S)


def get_multicond_learned_conditioning(model, prompts, steps):
    batch = []
    for prompt in prompts:
        parts = []
        for piece in _AND.split(prompt):
            weighted = _WEIGHT.match(piece)
            text, weight = (weighted.group(1), float(weighted.group(2))) if weighted else (piece, 1.0)
            schedule = get_learned_conditioning(model, [text.strip()], steps)[0]
            parts.append(ComposableScheduledPromptConditioning(schedule, weight))
        batch.append(parts)
    return MulticondLearnedConditioning((len(batch),), batch)
