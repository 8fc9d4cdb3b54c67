"""Mirrors modules/infotext_utils.py: quote/unquote, the infotext parser's key regex, PasteField,
and what connect_paste's paste_func does with each (component, key-or-callable) pair."""
import json
import re

from modules import script_callbacks

re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)
re_imagesize = re.compile(r"^(\d+)x(\d+)$")

UNCHANGED = object()  # stands for gr.update() with no value


def quote(text):
    if ',' not in str(text) and '\n' not in str(text) and ':' not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


class PasteField(tuple):
    def __new__(cls, component, target, *, api=None):
        return super().__new__(cls, (component, target))

    def __init__(self, component, target, *, api=None):
        super().__init__()
        self.api = api
        self.component = component
        self.label = target if isinstance(target, str) else None
        self.function = target if callable(target) else None


def parse_generation_parameters(x):
    res = {}
    prompt, negative_prompt, done_with_prompt = "", "", False
    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ''
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    for k, v in re_param.findall(lastline):
        if v and v[0] == '"' and v[-1] == '"':
            v = unquote(v)
        m = re_imagesize.match(v)
        if m is not None:
            res[f"{k}-1"], res[f"{k}-2"] = m.group(1), m.group(2)
        else:
            res[k] = v
    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt
    res.setdefault("Hires prompt", "")
    return res


def paste(fields, infotext):
    """paste_func in connect_paste: parse, run the infotext_pasted callbacks, map fields to values."""
    params = parse_generation_parameters(infotext)
    script_callbacks.infotext_pasted_callback(infotext, params)
    result = {}
    for output, key in fields:
        v = key(params) if callable(key) else params.get(key, None)
        if v is None:
            result[output] = UNCHANGED
            continue
        valtype = type(output.value)
        try:
            if valtype is bool and v == "False":
                result[output] = False
            elif valtype is int:
                result[output] = float(v)
            else:
                result[output] = valtype(v)
        except Exception:
            result[output] = UNCHANGED
    return params, result
