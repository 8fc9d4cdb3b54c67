from lib_lcm.architecture import Architecture
from lib_lcm.decide import Skip, decide, status_line
from lib_lcm.planning import Choice, Plan, Request
from lib_lcm.settings import Settings

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
    assert status_line(Architecture.SD1, [lora_dir], Settings(), "tiny.safetensors [abc]") == (
        "tiny.safetensors [abc] (SD 1.5): Uses lcm-lora-sdv1-5.safetensors for SD 1.5.")
    assert "not for SD 2.x" in status_line(Architecture.SD2, [lora_dir], Settings())
