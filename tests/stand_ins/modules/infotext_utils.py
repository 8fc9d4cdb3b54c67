"""Imitates the infotext paste path of ``modules/infotext_utils.py`` (A1111 1.10.1).

- ``quote(value)``: values containing a comma, a colon or a newline are written as JSON strings
  (non-ASCII kept as is); anything else is written as it is. ``unquote`` undoes it, leaving text
  that is not valid JSON alone.
- ``parse_generation_parameters(text)``: the last line holds the "Key: value" pairs only if it
  has at least three of them, otherwise it is part of the prompt. Lines up to one starting with
  "Negative prompt:" are the prompt, the rest the negative prompt. A value in double quotes is
  unquoted; a value like "512x768" becomes "Key-1" and "Key-2". "Hires prompt" defaults to "".
- ``paste(fields, text)``: what the Send-to / paste button does (``connect_paste``): parse, run the
  ``infotext_pasted`` callbacks, then for each (component, key) of a script's ``infotext_fields``
  take ``params[key]``, or ``key(params)`` when key is callable. None leaves the component
  unchanged (``UNCHANGED`` stands for a ``gr.update()`` without a value); otherwise the value is
  converted to the type of the component's current value (int components take floats, and "False"
  makes a bool False); a failed conversion also leaves it unchanged. Returns (params, {component:
  new value}).
"""
import json
import re

from modules import script_callbacks

UNCHANGED = object()

# key: a word character, then word characters, spaces, "-" or "/"; value: a JSON string or anything up to ","
_PAIR = re.compile(r"""\s* (\w[-\w /]+) : \s* ( "(?:[^"\\]|\\.)+" | [^,]* ) (?:,|$)""", re.VERBOSE)
_SIZE = re.compile(r"(\d+)x(\d+)")


def quote(value):
    if any(mark in str(value) for mark in ",:\n"):
        return json.dumps(value, ensure_ascii=False)
    return value


def unquote(text):
    if len(text) < 1 or not (text.startswith('"') and text.endswith('"')):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_generation_parameters(x):
    *lines, last = x.strip().split("\n")
    if len(_PAIR.findall(last)) < 3:
        lines, last = [*lines, last], ""

    texts = {"Prompt": "", "Negative prompt": ""}
    target = "Prompt"
    for line in (line.strip() for line in lines):
        if line.startswith("Negative prompt:"):
            target, line = "Negative prompt", line[len("Negative prompt:"):].strip()
        texts[target] = f"{texts[target]}\n{line}" if texts[target] else line

    params = {}
    for key, value in _PAIR.findall(last):
        if value[:1] == '"' and value[-1:] == '"':
            value = unquote(value)
        size = _SIZE.fullmatch(value)
        if size:
            params[f"{key}-1"], params[f"{key}-2"] = size.groups()
        else:
            params[key] = value
    params.update(texts)
    params.setdefault("Hires prompt", "")
    return params


def _converted(component, value):
    kind = type(component.value)
    if kind is bool and value == "False":
        return False
    return float(value) if kind is int else kind(value)


def paste(fields, infotext):
    params = parse_generation_parameters(infotext)
    script_callbacks.infotext_pasted_callback(infotext, params)
    values = {}
    for component, key in fields:
        value = key(params) if callable(key) else params.get(key)
        try:
            values[component] = UNCHANGED if value is None else _converted(component, value)
        except Exception:
            values[component] = UNCHANGED
    return params, values
