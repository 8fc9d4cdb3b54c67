"""The WebUI's "parameters" text (PNG infotext): write it as the WebUI does, and read it back.

Format of A1111 1.10.1 ``modules/processing.py`` ``create_infotext``: the prompt, then
``Negative prompt: …`` when there is one, then one line of ``Key: value`` pairs joined by ", ".
A value holding ",", ":" or a newline is JSON-quoted (``modules/infotext_utils.py`` ``quote``);
the reader follows ``parse_generation_parameters`` there, so text we write pastes into the WebUI.
"""

from __future__ import annotations

import json
import re
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
# The WebUI's re_param_code: a key, then a quoted or a plain value, up to the next comma.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def quote(value: str) -> str:
    if "," not in value and "\n" not in value and ":" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def format_parameters(prompt: str, negative_prompt: str, params: Mapping[str, object]) -> str:
    line = ", ".join(f"{key}: {quote(str(value))}" for key, value in params.items() if value is not None)
    negative = f"\n{NEGATIVE}{negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{line}".strip()


def parse_parameters(text: str) -> dict[str, str]:
    """``Prompt``, ``Negative prompt`` and every ``Key: value`` of the last line, as strings."""
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3:  # the WebUI's rule: a last line with < 3 pairs is prompt text
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if line.startswith(NEGATIVE) or negative:
            negative.append(line.removeprefix(NEGATIVE) if not negative else line)
        else:
            prompt.append(line)
    result = {PROMPT: "\n".join(prompt), NEGATIVE_PROMPT: "\n".join(negative)}
    for key, value in _PARAM.findall(last):
        result[key] = unquote(value)
    return result
