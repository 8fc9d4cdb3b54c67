"""ADetailer beside the accordion (stand-in: tests/stand_ins/adetailer_stand_in.py): its separate steps, CFG
and sampler are fitted to the preset before its fix-up pass reads them, and the infotext says so."""
import pytest
from adetailer_stand_in import ADetailerStandIn
from modules import processing

from lib_lcm.rules import infotext

ON = [True, 1.0, 4, 1.0]
SEPARATE = {"ad_model": "face_yolov8n.pt", "ad_use_steps": True, "ad_steps": 28, "ad_use_cfg_scale": True,
            "ad_cfg_scale": 7.0, "ad_use_sampler": True, "ad_sampler": "DPM++ 2M Karras",
            "ad_scheduler": "Karras"}


@pytest.fixture
def runner(webui):
    webui.add_lora()
    webui.classes = [ADetailerStandIn, *webui.classes]  # its folder "adetailer" sorts before ours
    return webui.runner()


def run(webui, runner, ours, adetailer_args, **fields):
    p, processed = webui.txt2img(ours, runner=runner, others={"ADetailer": adetailer_args}, **fields)
    return p, processed, runner.by_title("ADetailer").fixup_settings(p)


def test_separate_steps_cfg_and_sampler_are_fitted_and_said(webui, runner):
    p, processed, fixup = run(webui, runner, ON, [True, False, dict(SEPARATE)])
    assert fixup == (8, 2.5, "LCM")
    text = processed.infotexts[0]
    assert (f"{infotext.KEY_ADETAILER}: ADetailer steps 28 to 8; ADetailer CFG 7 to 2.5; "
            f"ADetailer sampler DPM++ 2M Karras to LCM") in text
    assert "LCM-LoRA: ADetailer steps 28 to 8 (fitted to the preset)" in p.comments


def test_without_separate_values_the_pass_inherits_the_plan_and_nothing_is_said(webui, runner):
    _, processed, fixup = run(webui, runner, ON, [True, False, {"ad_model": "mediapipe_face_full"}])
    assert fixup == (4, 1.0, "LCM")
    assert infotext.KEY_ADETAILER not in processed.infotexts[0]


def test_the_users_own_tab_dict_is_not_changed(webui, runner):
    mine = dict(SEPARATE)
    run(webui, runner, ON, [True, False, mine])
    assert mine == SEPARATE


@pytest.mark.parametrize("adetailer_args", [[False, False, dict(SEPARATE)], [True, False, {"ad_model": "None"}]])
def test_adetailer_off_is_left_alone(webui, runner, adetailer_args):
    _, processed, _ = run(webui, runner, ON, [*adetailer_args[:2], {**SEPARATE, **adetailer_args[2]}])
    assert infotext.KEY_ADETAILER not in processed.infotexts[0]


def test_accordion_off_leaves_adetailer_alone(webui, runner):
    _, _, fixup = run(webui, runner, [False, 1.0, 4, 1.0], [True, False, dict(SEPARATE)])
    assert fixup == (28, 7.0, "DPM++ 2M Karras")


def test_inside_its_pass_the_tag_from_the_first_pass_is_kept_without_a_note(webui, runner, capsys):
    """Listed in ADetailer's scripts, our process also runs on its pass, marked _ad_inner, whose prompt
    (p.all_prompts[i] of the generation) already carries our tag."""
    original = processing.StableDiffusionProcessingImg2Img.__init__

    def marked(self, **fields):  # ADetailer sets the mark right after building its pass's p
        original(self, **fields)
        self._ad_inner = True

    webui.monkeypatch.setattr(processing.StableDiffusionProcessingImg2Img, "__init__", marked)
    p, _ = webui.img2img(ON, prompt="a cat <lora:lcm-lora-sdv1-5:1>", denoising_strength=0.4, steps=8, cfg_scale=2.0)
    assert p.all_prompts == ["a cat <lora:lcm-lora-sdv1-5:1>"] and p.comments == {}
    assert "<lora:lcm-lora-sdv1-5:…> kept; 8 steps, CFG 2" in capsys.readouterr().out  # its own values
