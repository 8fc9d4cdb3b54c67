import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib_lcm.accordion.script_args import parse_script_args
from lib_lcm.rules.choice import Choice

DEFAULTS = Choice(enabled=False, weight=1.0, steps=4, cfg=1.0)


def parse(*args):
    return parse_script_args(args, DEFAULTS)


def test_positional_in_ui_order():
    assert parse(True, 0.8, 6, 1.5).choice == Choice(True, 0.8, 6, 1.5)
    assert parse(True).choice == Choice(True, 1.0, 4, 1.0)
    assert parse().choice == DEFAULTS
    assert parse(True, None, None, None).choice == Choice(True, 1.0, 4, 1.0)
    assert parse(True, 1.0, 4, 1.0, "tcd", 5).choice == Choice(True, 1.0, 4, 1.0, "TCD-LoRA")
    assert parse(True, 1.0, 4, 1.0, "TCD-LoRA", 5).problems == ()  # anything after the preset is ignored


@pytest.mark.parametrize(("typed", "family"), [("LCM-LoRA", "LCM-LoRA"), ("lcm", "LCM-LoRA"), ("tcd", "TCD-LoRA"),
                                                ("Hyper-SD", "Hyper-SD"), ("hyper_sd", "Hyper-SD"),
                                                ("lightning", "SDXL-Lightning"), ("SDXL Lightning", "SDXL-Lightning"),
                                                ("dmd2", "DMD2")])
def test_preset_spellings(typed, family):
    assert parse({"enabled": True, "preset": typed}).choice.preset == family


def test_an_unknown_preset_falls_back_to_lcm_lora_and_says_so():
    result = parse(True, 1.0, 4, 1.0, "Turbo")
    assert result.choice.preset == "LCM-LoRA"
    assert result.problems == ("'preset' must be one of LCM-LoRA, TCD-LoRA, Hyper-SD, SDXL-Lightning, DMD2, "
                               "got 'Turbo'; used LCM-LoRA",)
    assert parse(True, 1.0, 4, 1.0, 3).choice.preset == "LCM-LoRA"


def test_a_single_dict_by_name():
    assert parse({"enabled": True, "steps": 6}).choice == Choice(True, 1.0, 6, 1.0)
    assert parse({"Enable": "true", "cfg_scale": "1.5", "lora_weight": 0.5}).choice == Choice(True, 0.5, 4, 1.5)


def test_unknown_names_are_reported():
    result = parse({"enabled": True, "sampler": "LCM"})
    assert result.choice.enabled
    assert result.problems == ("unknown argument 'sampler' ignored (expected enabled, weight, steps, cfg, preset)",)


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (1, True), (0, False), ("true", True),
                                                 ("False", False), ("on", True), ("", False), (None, False)])
def test_enabled_spellings(value, expected):
    result = parse(value)
    assert result.choice.enabled is expected and result.problems == ()


@pytest.mark.parametrize("value", ["maybe", 2, [True], {"a": 1}.keys()])
def test_enabled_garbage_is_off_with_a_message(value):
    result = parse(value)
    assert result.choice.enabled is False
    assert "'enabled' must be true or false" in result.problems[0]


@pytest.mark.parametrize(("args", "choice", "problem"), [
    ((True, math.nan, 4, 1.0), Choice(True, 1.0, 4, 1.0), "'weight' must be a finite number"),
    ((True, "heavy", 4, 1.0), Choice(True, 1.0, 4, 1.0), "'weight' must be a number"),
    ((True, 5.0, 4, 1.0), Choice(True, 2.0, 4, 1.0), "'weight' 5 is outside 0-2; used 2"),
    ((True, -1, 4, 1.0), Choice(True, 0.0, 4, 1.0), "'weight' -1 is outside 0-2; used 0"),
    ((True, 1.0, -3, 1.0), Choice(True, 1.0, 4, 1.0), "'steps' -3 is not a step count; used 4"),
    ((True, 1.0, 1e12, 1.0), Choice(True, 1.0, 4, 1.0), "'steps' 1e+12 is not a step count"),
    ((True, 1.0, math.inf, 1.0), Choice(True, 1.0, 4, 1.0), "'steps' must be a finite number"),
    ((True, 1.0, 4.6, 1.0), Choice(True, 1.0, 5, 1.0), "'steps' 4.6 is not a whole number; used 5"),
    ((True, 1.0, True, 1.0), Choice(True, 1.0, 4, 1.0), "'steps' must be a number, got True"),
    ((True, 1.0, [4], 1.0), Choice(True, 1.0, 4, 1.0), "'steps' must be a number, got [4]"),
    ((True, 1.0, 4, -2), Choice(True, 1.0, 4, 1.0), "'cfg' -2 is negative; used 1"),
    ((True, 1.0, 4, "nan"), Choice(True, 1.0, 4, 1.0), "'cfg' must be a finite number"),
])
def test_bad_values_fall_back_or_clamp_with_one_sentence(args, choice, problem):
    result = parse(*args)
    assert result.choice == choice
    assert len(result.problems) == 1 and result.problems[0].startswith(problem)


def test_problems_of_a_disabled_script_are_not_reported():
    assert parse(False, "heavy", -3, "x").problems == ()
    assert parse("maybe", "heavy").problems[0].startswith("'enabled' must be true or false")


def test_numbers_as_strings_are_fine():
    assert parse("1", "0.5", "6", "2").choice == Choice(True, 0.5, 6, 2.0)


def test_huge_accepted_step_count_is_left_for_the_plan_to_clamp():
    assert parse(True, 1.0, 50, 30.0).choice == Choice(True, 1.0, 50, 30.0)


json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3), max_leaves=6)


@given(st.lists(json_values, max_size=6))
def test_never_raises_on_anything_json_can_carry(args):
    result = parse_script_args(args, DEFAULTS)
    c = result.choice
    assert isinstance(c.enabled, bool)
    assert 0.0 <= c.weight <= 2.0 and c.steps >= 0 and c.cfg >= 0 and math.isfinite(c.cfg)
