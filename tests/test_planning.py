import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib_lcm.rules import catalog, infotext
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.choice import Bounds, Choice, clamp_cfg, clamp_steps
from lib_lcm.rules.planning import Request, img2img_steps_run, make_plan
from lib_lcm.rules.prompt_tags import find_named

SD15 = catalog.for_architecture(Architecture.SD1)
NAME = "lcm-lora-sdv1-5"
TAG = "<lora:lcm-lora-sdv1-5:1>"
ON = Choice(enabled=True, weight=1.0, steps=4, cfg=1.0)
INFOTEXT_KEY = re.compile(r"\w[\w \-/]+")  # modules/infotext_utils.py re_param_code


def request(**overrides) -> Request:
    fields = dict(prompts=("a cat", "a dog"), main_prompt="a cat", steps=20, cfg_scale=7.0,
                  negative_prompts=("", ""), sampler_name="DPM++ 2M", scheduler="Automatic")
    fields.update(overrides)
    return Request(**fields)


def accel_tags(prompt: str) -> list:
    return find_named(prompt, catalog.all_names())


def test_tag_goes_into_every_prompt_and_the_main_prompt():
    plan = make_plan(request(), ON, SD15, NAME)
    assert plan.prompts == (f"a cat {TAG}", f"a dog {TAG}")
    assert plan.main_prompt == f"a cat {TAG}"
    assert plan.tag_added and plan.lora_name == NAME


def test_hires_prompts_get_the_tag_too():
    plan = make_plan(request(enable_hr=True, hr_prompts=("hi cat", "hi dog")), ON, SD15, NAME)
    assert plan.hr_prompts == (f"hi cat {TAG}", f"hi dog {TAG}")


def test_recipe_steps_cfg_sampler_and_schedule():
    plan = make_plan(request(), ON, SD15, NAME)
    assert (plan.steps, plan.cfg_scale, plan.sampler_name, plan.scheduler) == (4, 1.0, "LCM", "SGM Uniform")
    assert plan.infotext == {infotext.KEY_PRESET: "LCM-LoRA", infotext.KEY_LORA: NAME, infotext.KEY_WEIGHT: "1",
                             infotext.KEY_TAG: infotext.TAG_ADDED}


def test_zero_keeps_the_generation_values_but_clamps_them():
    plan = make_plan(request(steps=20, cfg_scale=7.0), Choice(True, 1.0, 0, 0.0), SD15, NAME)
    assert (plan.steps, plan.cfg_scale) == (8, 2.5)
    assert plan.infotext[infotext.KEY_CLAMPED] == "steps 20 to 8; CFG 7 to 2.5"
    plan = make_plan(request(steps=6, cfg_scale=1.5), Choice(True, 1.0, 0, 0.0), SD15, NAME)
    assert (plan.steps, plan.cfg_scale) == (6, 1.5)
    assert infotext.KEY_CLAMPED not in plan.infotext


def test_accordion_values_are_clamped_and_recorded():
    plan = make_plan(request(), Choice(True, 1.0, 30, 9.0), SD15, NAME)
    assert (plan.steps, plan.cfg_scale) == (8, 2.5)
    assert plan.infotext[infotext.KEY_CLAMPED] == "steps 30 to 8; CFG 9 to 2.5"
    plan = make_plan(request(), Choice(True, 1.0, 1, 1.0), SD15, NAME)
    assert plan.steps == 2


def test_hires_steps_and_forge_hires_cfg_are_clamped():
    plan = make_plan(request(enable_hr=True, hr_prompts=("a", "b"), hr_second_pass_steps=20, hr_cfg=7.0,
                             hr_sampler_name="Euler a", hr_scheduler="Karras"), ON, SD15, NAME)
    assert (plan.hr_second_pass_steps, plan.hr_cfg) == (8, 2.5)
    assert (plan.hr_sampler_name, plan.hr_scheduler) == ("LCM", "SGM Uniform")
    assert "hires steps 20 to 8" in plan.infotext[infotext.KEY_CLAMPED]
    assert "hires CFG 7 to 2.5" in plan.infotext[infotext.KEY_CLAMPED]


def test_hires_defaults_stay_same_as_first_pass():
    plan = make_plan(request(enable_hr=True, hr_prompts=("a", "b"), hr_second_pass_steps=0), ON, SD15, NAME)
    assert (plan.hr_second_pass_steps, plan.hr_sampler_name, plan.hr_scheduler, plan.hr_cfg) == (0, None, None, None)


def test_sampler_kept_when_the_setting_says_so():
    plan = make_plan(request(), ON, SD15, NAME, set_sampler=False)
    assert (plan.sampler_name, plan.scheduler) == ("DPM++ 2M", "Automatic")


def test_user_typed_tag_under_any_known_name_or_weight_is_kept_not_doubled():
    for typed in ("<lora:LCM_LoRA_Weights_SD15:0.6>", "<lora:lcm-lora-sdv1-5:0.6>", "<lora:PYTORCH_LORA_WEIGHTS:0.6>"):
        prompts = (f"x {typed}", f"y {typed}")
        plan = make_plan(request(prompts=prompts, main_prompt=prompts[0]), ON, SD15, NAME)
        assert plan.prompts == prompts
        assert not plan.tag_added
        assert plan.weight == 0.6
        assert plan.infotext[infotext.KEY_TAG] == infotext.TAG_FROM_PROMPT
        assert [n.kind for n in plan.notes] == ["tag_kept"] and "already has" in plan.notes[0].text


def test_user_renamed_file_name_counts_as_present():
    prompts = ("x <lora:my-lcm:1>",)
    plan = make_plan(request(prompts=prompts, main_prompt=prompts[0]), ON, SD15, "my-lcm")
    assert plan.prompts == prompts


def test_other_loras_are_left_alone():
    prompts = ("x <lora:style:0.8>",)
    plan = make_plan(request(prompts=prompts, main_prompt=prompts[0]), ON, SD15, NAME)
    assert plan.prompts == (f"x <lora:style:0.8> {TAG}",)


def test_weight_is_written_into_the_tag():
    plan = make_plan(request(), Choice(True, 0.75, 4, 1.0), SD15, NAME)
    assert plan.prompts[0].endswith("<lora:lcm-lora-sdv1-5:0.75>")
    assert plan.infotext[infotext.KEY_WEIGHT] == "0.75"


@pytest.mark.parametrize(("strength", "fix", "expected"), [(0.5, False, "3"), (0.75, False, None), (0.2, False, "1"),
                                                           (1.0, False, None), (0.5, True, None)])
def test_img2img_records_the_steps_really_run_without_the_exact_schedule(strength, fix, expected):
    plan = make_plan(request(is_img2img=True, denoising_strength=strength, img2img_fix_steps=fix), ON, SD15, NAME,
                     exact_schedule=False)
    assert plan.infotext.get(infotext.KEY_STEPS_RUN) == expected
    assert not plan.exact_schedule


@pytest.mark.parametrize("strength", [0.2, 0.5, 1.0])
def test_img2img_with_the_exact_schedule_runs_every_step(strength):
    """The exact sampler runs all steps on the shortened schedule; nothing to record at planning time."""
    plan = make_plan(request(is_img2img=True, denoising_strength=strength), ON, SD15, NAME)
    assert infotext.KEY_STEPS_RUN not in plan.infotext
    assert plan.exact_schedule


@pytest.mark.parametrize(("chosen", "hires", "expected"), [
    ("TCD", None, ("TCD", None)), ("TCD", "Euler a", ("TCD", "TCD")), ("LCM", "TCD", ("LCM", "TCD")),
    ("Euler a", "TCD", ("LCM", "TCD")), ("DPM++ 2M", "Euler", ("LCM", "LCM")),
])
def test_a_chosen_consistency_sampler_is_kept(chosen, hires, expected):
    plan = make_plan(request(sampler_name=chosen, enable_hr=True, hr_sampler_name=hires), ON, SD15, NAME)
    assert (plan.sampler_name, plan.hr_sampler_name) == expected


def test_img2img_steps_run_formula():
    # modules/sd_samplers_common.py setup_img2img_steps, worked examples from the guide (section 13)
    assert [img2img_steps_run(4, d) for d in (0.5, 0.75, 0.2, 1.0)] == [3, 4, 1, 4]


def test_cfg_one_with_a_negative_prompt_gets_a_note():
    plan = make_plan(request(negative_prompts=("blurry", "")), ON, SD15, NAME)
    assert [n.kind for n in plan.notes] == ["negative_unused"]
    assert "negative prompt has no effect" in plan.notes[0].text
    plan = make_plan(request(negative_prompts=("blurry", "")), Choice(True, 1.0, 4, 1.5), SD15, NAME)
    assert not plan.notes


def test_bounds_from_settings_are_made_usable():
    assert Bounds(8, 2, 2.5, 1.0).normalised() == Bounds(2, 8, 1.0, 2.5)
    assert Bounds(0, -3, 0.0, 0.5).normalised() == Bounds(1, 1, 1.0, 1.0)
    plan = make_plan(request(), Choice(True, 1.0, 50, 1.0), SD15, NAME, Bounds(1, 12, 1.0, 3.0))
    assert plan.steps == 12


def test_infotext_keys_parse_back_in_the_webui():
    plan = make_plan(request(is_img2img=True, denoising_strength=0.5, steps=20),
                     Choice(True, 1.0, 0, 0.0), SD15, NAME)
    for key in [*plan.infotext, *infotext.ALL_KEYS]:
        assert INFOTEXT_KEY.fullmatch(key), key


# --- properties ---------------------------------------------------------------------------------

names = st.sampled_from(["lcm-lora-sdv1-5", "LCM_LoRA_Weights_SD15", "style", "pytorch_lora_weights", "x y"])
tags = st.builds(lambda n, w: f"<lora:{n}:{w}>", names, st.sampled_from(["1", "0.5", "", "te=0.3"]))
prompt_text = st.lists(st.one_of(st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=12), tags),
                       max_size=4).map(" ".join)
bounds_st = st.builds(Bounds, st.integers(-5, 60), st.integers(-5, 60),
                      st.floats(-5, 40, allow_nan=False), st.floats(-5, 40, allow_nan=False))
choices = st.builds(Choice, st.just(True), st.floats(0, 2), st.integers(0, 200), st.floats(0, 50))


@st.composite
def requests(draw):
    prompts = tuple(draw(st.lists(prompt_text, min_size=1, max_size=4)))
    hr = draw(st.booleans())
    return Request(prompts=prompts, main_prompt=prompts[0], steps=draw(st.integers(1, 150)),
                   cfg_scale=draw(st.floats(1, 30)), enable_hr=hr,
                   hr_prompts=tuple(draw(st.lists(prompt_text, min_size=len(prompts), max_size=len(prompts))))
                   if hr else (),
                   hr_second_pass_steps=draw(st.integers(0, 150)), hr_cfg=draw(st.none() | st.floats(1, 30)))


def applied(plan, request):
    """The request as it looks after the plan was applied (what the WebUI adapter writes back)."""
    return dataclasses.replace(
        request, prompts=plan.prompts, main_prompt=plan.main_prompt, hr_prompts=plan.hr_prompts, steps=plan.steps,
        cfg_scale=plan.cfg_scale, sampler_name=plan.sampler_name, scheduler=plan.scheduler,
        hr_second_pass_steps=plan.hr_second_pass_steps, hr_sampler_name=plan.hr_sampler_name,
        hr_scheduler=plan.hr_scheduler, hr_cfg=plan.hr_cfg)


@settings(max_examples=300, deadline=None)
@given(requests(), choices, bounds_st)
def test_planning_twice_changes_nothing_more(req, choice, bounds):
    first = make_plan(req, choice, SD15, NAME, bounds)
    second = make_plan(applied(first, req), choice, SD15, NAME, bounds)
    assert applied(second, req) == applied(first, req)
    assert not second.tag_added


@settings(max_examples=300, deadline=None)
@given(requests(), choices)
def test_every_prompt_names_exactly_the_accel_tags_it_had_or_one_new(req, choice):
    plan = make_plan(req, choice, SD15, NAME)
    for before, after in zip(req.prompts + req.hr_prompts, plan.prompts + plan.hr_prompts, strict=True):
        had = len(accel_tags(before))
        assert len(accel_tags(after)) == (had if had else 1)


@settings(max_examples=300, deadline=None)
@given(requests(), choices, bounds_st)
def test_results_are_always_inside_the_bounds(req, choice, bounds):
    b = bounds.normalised()
    plan = make_plan(req, choice, SD15, NAME, bounds)
    assert b.min_steps <= plan.steps <= b.max_steps
    assert b.min_cfg <= plan.cfg_scale <= b.max_cfg
    if req.enable_hr and req.hr_second_pass_steps:
        assert b.min_steps <= plan.hr_second_pass_steps <= b.max_steps
    if req.enable_hr and req.hr_cfg is not None:
        assert b.min_cfg <= plan.hr_cfg <= b.max_cfg


@given(st.integers(-1000, 1000), bounds_st)
def test_clamp_steps_is_identity_inside_and_nearest_bound_outside(value, bounds):
    b = bounds.normalised()
    result = clamp_steps(value, b)
    assert result == value if b.min_steps <= value <= b.max_steps else result in (b.min_steps, b.max_steps)


@given(st.floats(allow_nan=True, allow_infinity=True), bounds_st)
def test_clamp_cfg_handles_every_float(value, bounds):
    b = bounds.normalised()
    assert b.min_cfg <= clamp_cfg(value, b) <= b.max_cfg
