"""``<lora:NAME:WEIGHT>`` tags in prompts: find, add once, remove.

The WebUI's extra-network parser (``modules/extra_networks.py``) matches ``<(\\w+):([^>]+)>``,
looks the type up case-sensitively (``lora``; A1111 also maps ``lyco`` to the same handler) and
splits the arguments on ``:``. Names therefore never contain ``:`` or ``>``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from lib_lcm.rules.catalog import normalise_name

_TAG = re.compile(r"<(lora|lyco):([^:>]+)(?::([^>]*))?>")


@dataclass(frozen=True)
class LoraTag:
    text: str
    name: str
    weight: float | None  # None when the tag gives no (numeric) text-encoder multiplier
    start: int
    end: int


def find_lora_tags(prompt: str) -> list[LoraTag]:
    return [LoraTag(m.group(0), m.group(2).strip(), _first_weight(m.group(3)), m.start(), m.end())
            for m in _TAG.finditer(prompt)]


def find_named(prompt: str, names: Collection[str]) -> list[LoraTag]:
    """Tags whose name is any of ``names`` (already normalised with catalog.normalise_name)."""
    return [t for t in find_lora_tags(prompt) if normalise_name(t.name) in names]


def format_weight(weight: float) -> str:
    """1.0 -> "1", 0.75 -> "0.75": short, exact enough for a multiplier, and stable to re-parse."""
    text = f"{weight:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_tag(name: str, weight: float) -> str:
    if not name or any(c in name for c in ":<>"):
        raise ValueError(f"{name!r} cannot be written as a <lora:…> tag name (it contains ':', '<' or '>')")
    return f"<lora:{name}:{format_weight(weight)}>"


def add_tag(prompt: str, tag: str) -> str:
    # Always exactly one space before the tag, so remove_tags restores the prompt byte for byte.
    return f"{prompt} {tag}" if prompt else tag


def remove_tags(prompt: str, names: Collection[str]) -> str:
    """Remove every tag named in ``names`` together with the one space ``add_tag`` put before it."""
    for tag in reversed(find_named(prompt, names)):
        start = tag.start - 1 if tag.start > 0 and prompt[tag.start - 1] == " " else tag.start
        prompt = prompt[:start] + prompt[tag.end:]
    return prompt


def _first_weight(arguments: str | None) -> float | None:
    if not arguments:
        return None
    first = arguments.split(":")[0].strip()
    if "=" in first:  # named argument such as te=0.5
        key, _, first = first.partition("=")
        if key.strip() != "te":
            return None
    try:
        return float(first)
    except ValueError:
        return None
