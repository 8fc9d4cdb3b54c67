"""The infotext entries this extension writes, and how a pasted infotext is read back.

Keys must match the WebUI's parser regex ``\\w[\\w \\-/]+`` (``modules/infotext_utils.py``): no
dots, no parentheses. Values need no quoting; the WebUI JSON-quotes commas, colons and newlines.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from lib_lcm.rules import parameters_text
from lib_lcm.rules.catalog import LCM_LORA, family_named, normalise_name
from lib_lcm.rules.prompt_tags import remove_tags

KEY_LORA = "LCM-LoRA"  # the LoRA name applied; its presence means "the accordion was on"
KEY_WEIGHT = "LCM-LoRA weight"  # the acceleration weight (the paper's lambda 2)
KEY_PRESET = "LCM-LoRA preset"  # the catalog family: LCM-LoRA, TCD-LoRA, Hyper-SD, SDXL-Lightning, DMD2
KEY_TAG = "LCM-LoRA tag"  # TAG_ADDED or TAG_FROM_PROMPT
KEY_CLAMPED = "LCM-LoRA clamped"
KEY_STEPS_RUN = "LCM-LoRA steps run"
KEY_HIRES_LORA = "LCM-LoRA hires LoRA"  # the hires checkpoint's own LoRA, when its architecture differs
KEY_ADETAILER = "LCM-LoRA ADetailer"  # what was fitted in ADetailer's separate steps/CFG/sampler
KEY_GUIDANCE = "LCM-LoRA guidance"  # what CFG-changing features do at the plan's CFG, and what was turned off
KEY_SKIPPED = "LCM-LoRA skipped"  # enabled, but not applied; the value says why
KEY_INPUT = "LCM-LoRA arguments"  # what was wrong with the script arguments, and what was used instead

KEY_TIMESTEPS = "LCM-LoRA timesteps"  # the model timesteps the sampler visited
KEY_HIRES_TIMESTEPS = "LCM-LoRA hires timesteps"
KEY_HIRES_STEPS_RUN = "LCM-LoRA hires steps run"
KEY_EXPLICIT = "LCM-LoRA explicit timesteps"  # also the infotext name of the lcm_lora_timesteps setting
KEY_TCD_GAMMA = "TCD gamma"  # also the infotext name of the lcm_lora_tcd_gamma setting
KEY_SETTING_IGNORED = "LCM-LoRA setting ignored"  # a setting value that could not be used, and why
KEY_UNCOND = "LCM-LoRA uncond"  # UNCOND_SKIPPED when the CFG-1 unconditional pass was not computed, or why it ran
UNCOND_SKIPPED = "skipped at CFG 1"

TAG_ADDED = "added"
TAG_FROM_PROMPT = "from prompt"

ALL_KEYS = (KEY_LORA, KEY_WEIGHT, KEY_PRESET, KEY_TAG, KEY_HIRES_LORA, KEY_CLAMPED, KEY_STEPS_RUN, KEY_SKIPPED,
            KEY_INPUT, KEY_TIMESTEPS, KEY_HIRES_TIMESTEPS, KEY_HIRES_STEPS_RUN, KEY_EXPLICIT, KEY_TCD_GAMMA, KEY_UNCOND,
            KEY_SETTING_IGNORED, KEY_ADETAILER, KEY_GUIDANCE)
_PROMPT_KEYS = (parameters_text.PROMPT, parameters_text.HIRES_PROMPT)


def was_enabled(params: Mapping[str, Any]) -> bool:
    return KEY_LORA in params


def preset_from(params: Mapping[str, Any]) -> str | None:
    """The preset of a pasted infotext; images from before presets existed used LCM-LoRA."""
    if not was_enabled(params):
        return None
    value = params.get(KEY_PRESET)
    return (family_named(value) if isinstance(value, str) else None) or LCM_LORA


def strip_added_tags(params: MutableMapping[str, Any]) -> None:
    """Undo our prompt injection in a pasted infotext, so re-enabling never doubles the tag.

    Only a tag we added is removed; a tag the user typed stays in their prompt.
    """
    if params.get(KEY_TAG) != TAG_ADDED or not isinstance(params.get(KEY_LORA), str):
        return
    names = {normalise_name(params[KEY_LORA])}
    if isinstance(params.get(KEY_HIRES_LORA), str):
        names.add(normalise_name(params[KEY_HIRES_LORA]))
    for key in _PROMPT_KEYS:
        if isinstance(params.get(key), str):
            params[key] = remove_tags(params[key], names)
