import json

from lib_lcm.accordion.presets import page_json, preset_table, slider_maxima, style_hint
from lib_lcm.rules import catalog
from lib_lcm.rules.choice import Bounds


def test_the_page_gets_every_preset_with_the_ranges_the_generation_clamps_to():
    table = preset_table(Bounds())
    assert list(table) == list(catalog.FAMILIES)
    assert table["LCM-LoRA"] == {"sampler": "LCM", "scheduler": "SGM Uniform", "steps": [2, 8, 4],
                                 "cfg": [1.0, 2.5, 1.0], "architectures": ["SD 1.5", "SDXL", "SSD-1B"],
                                 "timesteps": []}
    assert table["DMD2"]["steps"] == [4, 4, 4] and table["DMD2"]["timesteps"] == [999, 749, 499, 249]
    assert table["SDXL-Lightning"]["architectures"] == ["SDXL"]
    assert table["TCD-LoRA"]["sampler"] == "TCD"


def test_lcm_lora_follows_the_settings_and_its_default_stays_inside():
    table = preset_table(Bounds(min_steps=6, max_steps=12, min_cfg=1.5, max_cfg=3.0))
    assert table["LCM-LoRA"]["steps"] == [6, 12, 6] and table["LCM-LoRA"]["cfg"] == [1.5, 3.0, 1.5]
    assert table["Hyper-SD"]["steps"] == [4, 8, 4]  # not the LCM settings
    assert slider_maxima(Bounds(max_steps=12, max_cfg=3.0)) == (12, 3.0)
    assert slider_maxima(Bounds(max_steps=3, max_cfg=1.0)) == (8, 2.0)  # every preset still fits


def test_page_json_round_trips_and_says_whether_to_move_the_sampler():
    data = json.loads(page_json(Bounds(), set_sampler=False))
    assert data["setSampler"] is False and set(data["presets"]) == set(catalog.FAMILIES)


def test_style_hint_quotes_the_paper():
    assert "0.8" in style_hint() and "λ1" in style_hint() and "λ2 = 1" in style_hint()
