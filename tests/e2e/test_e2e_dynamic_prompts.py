"""With Dynamic Prompts (adieyal/sd-dynamic-prompts) installed next to ours, through the real API.

Its ``process`` expands ``{a|b}`` variants and ``__wildcards__`` into ``p.all_prompts``; ours runs on the
prompts it made. Each generated prompt must carry the acceleration tag exactly once, whichever way the
tag got there: added by us, typed in the template, or inside a variant.

Tried with sd-dynamic-prompts v2.17.1 (commit e8326b5) and dynamicprompts 0.31.0 in the harness's A1111
1.10.1. That commit registers its settings too late on a fresh A1111 1.9+ (its issue #754, fixed
upstream in #760), so its ``process`` fails on ``opts.dp_ignore_whitespace``; the harness's
config.json then needs its defaults (``dp_ignore_whitespace``: false, ``dp_parser_variant_start``: "{",
…), which is what that fix makes unnecessary.
"""
from __future__ import annotations

import re

import pytest

ON = [True, 1.0, 4, 1.0]


def dynamic_prompts_title(api) -> str:
    names = [s["name"] for s in api.get("/sdapi/v1/script-info") if s["is_alwayson"]]
    name = next((n for n in names if n.startswith("dynamic prompts")), None)
    if name is None:
        pytest.skip("Dynamic Prompts is not installed in this WebUI")
    return name


def dp_args(combinatorial: bool) -> list:
    """Its ui() order: enabled, combinatorial, combinatorial batches, then its other switches off."""
    return [True, combinatorial, 1, False, False, False, 1.1, 1.5, 100, 0.7, False, False, False, False, False, 0,
            None, None]


def run(api, prompt: str, combinatorial: bool = True, **fields) -> dict:
    scripts = {dynamic_prompts_title(api): {"args": dp_args(combinatorial)}, "LCM-LoRA": {"args": ON}}
    return api.generate("txt2img", {"prompt": prompt, "steps": 20, "alwayson_scripts": scripts, **fields})


def tags(prompt: str, name: str) -> int:
    return len(re.findall(rf"<lora:{re.escape(name)}:[^>]*>", prompt))


def test_every_combinatorial_prompt_gets_the_tag_once(api, lora):
    info = run(api, "a {red|green|blue} cat")
    assert len(info["all_prompts"]) == 3
    assert {p.split(" <lora")[0] for p in info["all_prompts"]} == {"a red cat", "a green cat", "a blue cat"}
    assert all(tags(p, lora.name) == 1 for p in info["all_prompts"]), info["all_prompts"]
    assert all("Steps: 4," in t and "Sampler: LCM" in t for t in info["infotexts"])


def test_a_typed_tag_in_the_template_is_not_doubled(api, lora):
    info = run(api, f"a {{red|blue}} cat <lora:{lora.name}:0.7>")
    assert all(tags(p, lora.name) == 1 and f"<lora:{lora.name}:0.7>" in p for p in info["all_prompts"])


def test_a_tag_inside_a_variant_is_kept_where_chosen_and_added_elsewhere(api, lora):
    info = run(api, f"a cat {{<lora:{lora.name}:0.6>|plain}}")
    prompts = info["all_prompts"]
    assert len(prompts) == 2 and all(tags(p, lora.name) == 1 for p in prompts), prompts
    assert any(f"<lora:{lora.name}:0.6>" in p for p in prompts)


def test_random_prompts_of_a_batch_each_get_the_tag(api, lora):
    info = run(api, "a {red|green|blue} cat", combinatorial=False, batch_size=2, n_iter=1)
    assert len(info["all_prompts"]) == 2 and all(tags(p, lora.name) == 1 for p in info["all_prompts"])
