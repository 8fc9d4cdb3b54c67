"""CFG-changing features beside the accordion: the WebUI's skip settings and Dynamic Thresholding
(stand-in: tests/stand_ins/dynamic_thresholding_stand_in.py)."""
import pytest
from dynamic_thresholding_stand_in import DynamicThresholdingStandIn
from modules import shared

from lib_lcm.rules import infotext


@pytest.fixture
def runner(webui):
    webui.add_lora()
    webui.classes = [DynamicThresholdingStandIn, *webui.classes]  # "sd-dynamic-thresholding" sorts first
    return webui.runner()


def run(webui, runner, ours, dynamic_thresholding):
    p, processed = webui.txt2img(ours, runner=runner,
                                 others={"Dynamic Thresholding (CFG Scale Fix)": dynamic_thresholding})
    return p, processed.infotexts[0]


def test_at_cfg_1_dynamic_thresholding_is_turned_off_for_the_image_and_said(webui, runner):
    p, text = run(webui, runner, [True, 1.0, 4, 1.0], [True, 7.0])
    assert p.dynamic_thresholding_ran is False
    assert f'{infotext.KEY_GUIDANCE}: "Dynamic Thresholding (CFG Scale Fix) was turned off for this image' in text
    assert any("Raise CFG above 1 to use it" in comment for comment in p.comments)


def test_above_cfg_1_dynamic_thresholding_runs_and_the_note_says_what_it_costs(webui, runner):
    p, text = run(webui, runner, [True, 1.0, 4, 2.0], [True, 7.0])
    assert p.dynamic_thresholding_ran is True
    assert "without the exact LCM timesteps" in text


def test_off_or_without_the_accordion_nothing_is_said_or_changed(webui, runner):
    p, text = run(webui, runner, [True, 1.0, 4, 1.0], [False, 7.0])
    assert p.dynamic_thresholding_ran is False and infotext.KEY_GUIDANCE not in text
    p, text = run(webui, runner, [False, 1.0, 4, 1.0], [True, 7.0])
    assert p.dynamic_thresholding_ran is True and infotext.KEY_GUIDANCE not in text


def test_the_webuis_early_negative_skip_does_nothing_at_cfg_1(webui, runner, monkeypatch):
    monkeypatch.setitem(shared.opts.data, "skip_early_cond", 0.5)
    _, text = run(webui, runner, [True, 1.0, 4, 1.0], [False, 7.0])
    assert "Ignore negative prompt during early sampling (0.5) does nothing at CFG 1." in text
    _, text = run(webui, runner, [True, 1.0, 4, 2.0], [False, 7.0])
    assert infotext.KEY_GUIDANCE not in text
