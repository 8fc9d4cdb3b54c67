"""The WebUI's "parameters" text (PNG infotext), written as the WebUI writes it.

Format of A1111 1.10.1 ``modules/processing.py`` ``create_infotext``: the prompt, then
``Negative prompt: …`` when there is one, then one line of ``Key: value`` pairs joined by ", ".
A value holding ",", ":" or a newline is JSON-quoted (``modules/infotext_utils.py`` ``quote``), so
the WebUI's ``parse_generation_parameters`` reads back what we write (tests/infotext_reader.py
reads it the same way, and tests/e2e has the real WebUI read our PNGs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

PNG_KEY = "parameters"  # the PNG text chunk the WebUI reads (modules/images.py)
# The WebUI's own keys that this project reads or writes (A1111 modules/processing.py create_infotext,
# modules/infotext_utils.py parse_generation_parameters).
PROMPT = "Prompt"
NEGATIVE_PROMPT = "Negative prompt"
HIRES_PROMPT = "Hires prompt"
STEPS = "Steps"
SAMPLER = "Sampler"
SCHEDULE_TYPE = "Schedule type"
CFG_SCALE = "CFG scale"
SEED = "Seed"
SIZE = "Size"
MODEL = "Model"
DENOISING_STRENGTH = "Denoising strength"
LORA_HASHES = "Lora hashes"
VERSION = "Version"
NEGATIVE = f"{NEGATIVE_PROMPT}: "


def quote(value: str) -> str:
    if "," not in value and "\n" not in value and ":" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def format_parameters(prompt: str, negative_prompt: str, params: Mapping[str, object]) -> str:
    line = ", ".join(f"{key}: {quote(str(value))}" for key, value in params.items() if value is not None)
    negative = f"\n{NEGATIVE}{negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{line}".strip()
