"""With Regional Prompter (hako-mikan/sd-webui-regional-prompter) installed next to ours, through the real API.

Its ``process`` runs after ours (its folder sorts after ours) and keeps a copy of ``p.all_prompts``
with our tag, which it writes back per batch. The regions come from ``BREAK`` (Attention mode: one
conditioning, split inside the cross-attention) or from ``AND`` sub-prompts (Latent mode: several
conditionings, combined by its denoiser callbacks). Our CFG-1 skip of the unconditional pass runs only
where it is exact: AND weights summing to 1 (tests/webui covers the rule itself). Tried with Regional
Prompter commit be62345 in the harness's A1111 1.10.1.
"""
from __future__ import annotations

import re

import pytest

RP = "Regional Prompter"


def rp_args(calcmode: str) -> list:
    """Its API order (its README, "How to Use via API"): active, debug, mode, matrix submode, mask submode,
    prompt submode, ratios, base ratios, use base, use common, use neg-common, calc mode, not-change-AND,
    LoRA text encoder, LoRA U-Net, threshold, mask."""
    return [True, False, "Matrix", "Columns", "Mask", "Prompt", "1,1", "", False, False, False, calcmode, False,
            "0", "0", "0", ""]


def require_regional_prompter(api) -> None:
    names = [s["name"] for s in api.get("/sdapi/v1/script-info") if s["is_alwayson"]]
    if RP.lower() not in names:
        pytest.skip("Regional Prompter is not installed in this WebUI")


def run(api, prompt: str, calcmode: str, cfg: float = 1.0) -> dict:
    require_regional_prompter(api)
    scripts = {RP: {"args": rp_args(calcmode)}, "LCM-LoRA": {"args": [True, 1.0, 4, cfg]}}
    return api.generate("txt2img", {"prompt": prompt, "steps": 20, "width": 64, "height": 64,
                                    "alwayson_scripts": scripts})


def tags(prompt: str, name: str) -> int:
    return len(re.findall(rf"<lora:{re.escape(name)}:[^>]*>", prompt))


@pytest.mark.parametrize("calcmode", ["Attention", "Latent"])
def test_two_regions_get_the_tag_once_and_the_lcm_recipe(api, lora, calcmode):
    info = run(api, "a red cat BREAK a blue dog", calcmode)
    text = info["infotexts"][0]
    assert "RP Active: True" in text and f"RP Calc Mode: {calcmode}" in text, text
    assert tags(info["prompt"], lora.name) == 1
    assert "Steps: 4" in text and "Sampler: LCM" in text and 'LCM-LoRA timesteps: "999,759,499,259"' in text
    # Attention: one conditioning, so CFG 1 needs no uncond; Latent: AND regions whose weights sum to 2
    assert ("LCM-LoRA uncond: skipped at CFG 1" in text) is (calcmode == "Attention"), text


def test_latent_mode_at_cfg_above_1_runs(api, lora):
    info = run(api, "a red cat BREAK a blue dog", "Latent", cfg=2.0)
    assert "CFG scale: 2.0" in info["infotexts"][0] and tags(info["prompt"], lora.name) == 1
