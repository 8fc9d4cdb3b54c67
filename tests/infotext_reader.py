"""Read a "parameters" text back the way the WebUI does (A1111 1.10.1 ``modules/infotext_utils.py``
``parse_generation_parameters``): the behaviour, in our own words, for checking what lib_lcm writes.

The last line holds ``Key: value`` pairs when it has at least three of them; a value in double
quotes is JSON; the lines before are the prompt, from the first ``Negative prompt: `` on the
negative prompt.
"""
from __future__ import annotations

import json
import re

from lib_lcm.rules.parameters_text import NEGATIVE, NEGATIVE_PROMPT, PROMPT

# a key (a word character, then word characters, spaces, '-' or '/'), then a quoted or a bare value
_PAIR = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_parameters(text: str) -> dict[str, str]:
    """``Prompt``, ``Negative prompt`` and every ``Key: value`` of the last line, as strings."""
    *lines, last = text.strip().split("\n")
    if len(_PAIR.findall(last)) < 3:
        lines, last = [*lines, last], ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in (line.strip() for line in lines):
        if negative or line.startswith(NEGATIVE):
            negative.append(line.removeprefix(NEGATIVE) if not negative else line)
        else:
            prompt.append(line)
    result = {PROMPT: "\n".join(prompt), NEGATIVE_PROMPT: "\n".join(negative)}
    result.update((key, _unquoted(value)) for key, value in _PAIR.findall(last))
    return result


def _unquoted(value: str) -> str:
    if not (len(value) >= 2 and value.startswith('"') and value.endswith('"')):
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value
