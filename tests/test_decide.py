import pytest

from lib_lcm.accordion.decision import Skip, decide, status
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.choice import Bounds, Choice
from lib_lcm.rules.planning import Plan, Request
from lib_lcm.rules.settings import Settings

REQUEST = Request(prompts=("a cat",), main_prompt="a cat", steps=20, cfg_scale=7.0)
ON = Choice(True, 1.0, 4, 1.0)


def test_supported_and_present_gives_a_plan(lora_dir, official_loras):
    for architecture, name in ((Architecture.SD1, "lcm-lora-sdv1-5"), (Architecture.SDXL, "lcm-lora-sdxl"),
                               (Architecture.SSD1B, "lcm-lora-ssd-1b")):
        outcome = decide(REQUEST, ON, architecture, [lora_dir], Settings())
        assert isinstance(outcome, Plan) and outcome.lora_name == name


def test_unsupported_architectures_are_skipped_with_a_reason(lora_dir, official_loras):
    for architecture in (Architecture.SD2, Architecture.SD3, Architecture.FLUX, Architecture.SDXL_REFINER,
                         Architecture.UNKNOWN):
        outcome = decide(REQUEST, ON, architecture, [lora_dir], Settings())
        assert isinstance(outcome, Skip)
        assert architecture.label in outcome.reason and "unchanged" in outcome.reason


def test_missing_file_is_skipped_with_what_to_download(lora_dir):
    outcome = decide(REQUEST, ON, Architecture.SDXL, [lora_dir], Settings())
    assert isinstance(outcome, Skip)
    assert "latent-consistency/lcm-lora-sdxl" in outcome.reason and "lcm-lora-sdxl.safetensors" in outcome.reason
    assert outcome.reason.endswith("The generation runs unchanged.")


def test_status_line(lora_dir, official_loras):
    assert status(Architecture.SD1, [lora_dir], Settings(), "tiny.safetensors [abc]").text == (
        "tiny.safetensors [abc] (SD 1.5): Uses lcm-lora-sdv1-5.safetensors for SD 1.5.")
    assert "not for SD 2.x" in status(Architecture.SD2, [lora_dir], Settings()).text


def preset_file(lora_dir, key: str):
    from helpers import catalog_layout, write_layout

    from lib_lcm.rules import catalog

    return write_layout(lora_dir / catalog.by_key(key).local_filename, catalog_layout(key))


@pytest.mark.parametrize(("preset", "architecture", "key", "recipe"), [
    ("TCD-LoRA", Architecture.SD1, "tcd-sd15", (4, 1.0, "TCD", ())),
    ("Hyper-SD", Architecture.SDXL, "hyper-sdxl", (4, 1.0, "Euler", ())),
    ("SDXL-Lightning", Architecture.SDXL, "lightning-sdxl", (4, 1.0, "Euler", ())),
    ("DMD2", Architecture.SDXL, "dmd2-sdxl", (4, 1.0, "LCM", (999, 749, 499, 249))),
])
def test_each_preset_applies_its_own_file_and_recipe(lora_dir, official_loras, preset, architecture, key, recipe):
    path = preset_file(lora_dir, key)
    outcome = decide(REQUEST, Choice(True, 1.0, 4, 1.0, preset), architecture, [lora_dir], Settings())
    assert isinstance(outcome, Plan) and outcome.lora_name == path.stem
    assert (outcome.steps, outcome.cfg_scale, outcome.sampler_name, outcome.timesteps) == recipe
    assert outcome.scheduler == "SGM Uniform" and outcome.infotext["LCM-LoRA preset"] == preset
    assert f"<lora:{path.stem}:1>" in outcome.prompts[0]


def test_a_preset_clamps_to_its_published_range_not_the_lcm_settings(lora_dir, official_loras):
    preset_file(lora_dir, "dmd2-sdxl")
    wide = Settings(bounds=Bounds(1, 50, 1.0, 30.0))
    outcome = decide(REQUEST, Choice(True, 1.0, 8, 3.0, "DMD2"), Architecture.SDXL, [lora_dir], wide)
    assert (outcome.steps, outcome.cfg_scale) == (4, 1.0)
    assert outcome.infotext["LCM-LoRA clamped"] == "steps 8 to 4; CFG 3 to 1"
    lcm = decide(REQUEST, Choice(True, 1.0, 20, 3.0), Architecture.SDXL, [lora_dir], wide)
    assert (lcm.steps, lcm.cfg_scale) == (20, 3.0)  # LCM-LoRA follows the user's bounds


def test_a_preset_that_does_not_exist_for_the_architecture_says_which_to_choose(lora_dir, official_loras):
    outcome = decide(REQUEST, Choice(True, 1.0, 4, 1.0, "SDXL-Lightning"), Architecture.SD1, [lora_dir], Settings())
    assert isinstance(outcome, Skip)
    assert outcome.reason == ("SDXL-Lightning exists only for SDXL, not for SD 1.5; choose another preset "
                              "(LCM-LoRA, TCD-LoRA, Hyper-SD).")
    ssd = decide(REQUEST, Choice(True, 1.0, 4, 1.0, "Hyper-SD"), Architecture.SSD1B, [lora_dir], Settings())
    assert "Hyper-SD exists only for SD 1.5 and SDXL, not for SSD-1B" in ssd.reason


def test_a_missing_preset_file_names_its_repository(lora_dir, official_loras):
    outcome = decide(REQUEST, Choice(True, 1.0, 4, 1.0, "Hyper-SD"), Architecture.SD1, [lora_dir], Settings())
    assert isinstance(outcome, Skip)
    assert "ByteDance/Hyper-SD" in outcome.reason and "Hyper-SD15-4steps-lora.safetensors" in outcome.reason
    assert "no usable Hyper-SD file for SD 1.5" in outcome.reason


def test_an_lcm_file_is_never_taken_for_another_preset(lora_dir, official_loras):
    # The per-architecture file setting names the LCM-LoRA file only.
    settings = Settings(file_names=((Architecture.SD1, "lcm-lora-sdv1-5"),))
    outcome = decide(REQUEST, Choice(True, 1.0, 4, 1.0, "TCD-LoRA"), Architecture.SD1, [lora_dir], settings)
    assert isinstance(outcome, Skip) and "TCD-SD15-LoRA" in outcome.reason


def test_the_user_sampler_is_kept_only_when_the_preset_accepts_it(lora_dir, official_loras):
    preset_file(lora_dir, "lightning-sdxl")
    tcd_chosen = Request(prompts=("a",), main_prompt="a", steps=4, cfg_scale=1.0, sampler_name="TCD")
    assert decide(tcd_chosen, ON, Architecture.SDXL, [lora_dir], Settings()).sampler_name == "TCD"
    lightning = Choice(True, 1.0, 4, 1.0, "SDXL-Lightning")
    assert decide(tcd_chosen, lightning, Architecture.SDXL, [lora_dir], Settings()).sampler_name == "Euler"


def test_status_line_follows_the_preset(lora_dir, official_loras):
    assert "Missing: no usable TCD-LoRA file for SDXL" in status(
        Architecture.SDXL, [lora_dir], Settings(), preset="TCD-LoRA").text
    preset_file(lora_dir, "tcd-sdxl")
    assert status(Architecture.SDXL, [lora_dir], Settings(), preset="TCD-LoRA").text == (
        "Uses TCD-SDXL-LoRA.safetensors for SDXL.")


def test_status_says_whether_the_file_is_missing(lora_dir, official_loras):
    assert status(Architecture.SD1, [lora_dir], Settings()).missing is False
    assert status(Architecture.SD1, [lora_dir], Settings(), preset="Hyper-SD").missing is True
    assert status(Architecture.SD2, [lora_dir], Settings()).missing is False  # unsupported, not missing
    assert status(Architecture.SD1, [lora_dir], Settings(), preset="DMD2").missing is False  # no such file exists


# Hires fix with another checkpoint, and the refiner: each pass's architecture gets its own LoRA, or a Skip.

def hires_request(architecture: Architecture, hr_prompts=("a cat",), refiner: Architecture | None = None) -> Request:
    from lib_lcm.rules.planning import OtherCheckpoint

    return Request(prompts=("a cat",), main_prompt="a cat", steps=20, cfg_scale=7.0, enable_hr=True,
                   hr_prompts=hr_prompts, hires_checkpoint=OtherCheckpoint("hires", "other.safetensors", architecture),
                   refiner=OtherCheckpoint("refiner", "refiner.safetensors", refiner) if refiner else None)


def test_a_hires_checkpoint_of_another_architecture_gets_its_own_lora(lora_dir, official_loras):
    plan = decide(hires_request(Architecture.SDXL), ON, Architecture.SD1, [lora_dir], Settings())
    assert isinstance(plan, Plan)
    assert plan.prompts == ("a cat <lora:lcm-lora-sdv1-5:1>",)
    assert plan.hr_prompts == ("a cat <lora:lcm-lora-sdxl:1>",)
    assert plan.infotext["LCM-LoRA hires LoRA"] == "lcm-lora-sdxl" and plan.infotext["LCM-LoRA"] == "lcm-lora-sdv1-5"
    assert [n.kind for n in plan.notes] == ["hires_lora"]
    assert "other.safetensors (SDXL)" in plan.notes[0].text


def test_the_first_pass_tag_typed_in_the_prompt_leaves_the_hires_prompts_of_another_architecture(
        lora_dir, official_loras):
    typed = "a cat <lora:lcm-lora-sdv1-5:0.9>, <lora:style:0.8>"
    plan = decide(hires_request(Architecture.SDXL, hr_prompts=(typed,)), ON, Architecture.SD1, [lora_dir], Settings())
    assert isinstance(plan, Plan)
    assert plan.hr_prompts == ("a cat, <lora:style:0.8> <lora:lcm-lora-sdxl:1>",)


def test_a_hires_checkpoint_of_the_same_or_an_unreadable_architecture_keeps_the_first_pass_lora(
        lora_dir, official_loras):
    for architecture in (Architecture.SD1, Architecture.UNKNOWN):
        plan = decide(hires_request(architecture), ON, Architecture.SD1, [lora_dir], Settings())
        assert isinstance(plan, Plan) and plan.hr_prompts == ("a cat <lora:lcm-lora-sdv1-5:1>",)
        assert "LCM-LoRA hires LoRA" not in plan.infotext and not plan.notes


def test_a_hires_checkpoint_without_an_acceleration_lora_skips_with_what_to_choose(lora_dir, official_loras):
    outcome = decide(hires_request(Architecture.SDXL_REFINER), ON, Architecture.SDXL, [lora_dir], Settings())
    assert isinstance(outcome, Skip)
    assert outcome.reason.startswith("The hires checkpoint other.safetensors is SDXL refiner, not SDXL: ")
    assert "Use same checkpoint" in outcome.reason


def test_a_hires_checkpoint_whose_file_is_missing_skips_naming_the_file(lora_dir):
    from helpers import write_layout

    write_layout(lora_dir / "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdv1-5")
    outcome = decide(hires_request(Architecture.SDXL), ON, Architecture.SD1, [lora_dir], Settings())
    assert isinstance(outcome, Skip) and "lcm-lora-sdxl.safetensors" in outcome.reason
    assert outcome.short == "Missing lcm-lora-sdxl.safetensors for the hires checkpoint."


def test_a_preset_the_hires_architecture_lacks_skips(lora_dir, official_loras):
    preset_file(lora_dir, "lightning-sdxl")
    outcome = decide(hires_request(Architecture.SD1), Choice(True, 1.0, 4, 1.0, "SDXL-Lightning"),
                     Architecture.SDXL, [lora_dir], Settings())
    assert isinstance(outcome, Skip) and "not for SD 1.5" in outcome.reason


def test_hires_checkpoint_is_ignored_without_hires_fix(lora_dir, official_loras):
    from dataclasses import replace

    plan = decide(replace(hires_request(Architecture.SDXL_REFINER), enable_hr=False, hr_prompts=()), ON,
                  Architecture.SD1, [lora_dir], Settings())
    assert isinstance(plan, Plan)


@pytest.mark.parametrize(("refiner", "hires", "applies"), [
    (Architecture.SD1, Architecture.SD1, True),
    (Architecture.UNKNOWN, Architecture.SD1, True),
    (Architecture.SDXL_REFINER, Architecture.SD1, False),
    (Architecture.SD1, Architecture.SDXL, False),  # the refiner may run in either pass
])
def test_a_refiner_must_share_the_architecture_of_the_passes_it_can_run_in(lora_dir, official_loras, refiner,
                                                                          hires, applies):
    outcome = decide(hires_request(hires, refiner=refiner), ON, Architecture.SD1, [lora_dir], Settings())
    assert isinstance(outcome, Plan) is applies
    if not applies:
        assert isinstance(outcome, Skip) and outcome.reason.startswith("The refiner refiner.safetensors is ")
        assert "Turn the refiner off" in outcome.reason
