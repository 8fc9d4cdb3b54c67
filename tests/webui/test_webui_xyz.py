"""The LCM-LoRA axes in the X/Y/Z plot: registered as extensions register theirs, and each cell runs
with its own value (the plot's cells are shallow copies of one processing object)."""
import pytest
import xyz_plot
from modules import processing, script_callbacks, scripts
from webui_env import TITLE

from lib_lcm.accordion.xyz_axes import AXES
from lib_lcm.rules import catalog

OFF = [False, 1.0, 4, 1.0]


@pytest.fixture
def plot(webui, monkeypatch):
    """The plot's module loaded, our axes added before the UI is built, a processing object ready."""
    monkeypatch.setattr(scripts, "scripts_data", [])
    monkeypatch.setattr(xyz_plot, "axis_options", list(xyz_plot.axis_options))
    xyz_plot.install()
    script_callbacks.before_ui_callback()
    for layout in ("lcm-lora-sdv1-5", "lcm-lora-sdxl"):
        webui.add_lora(layout)
    webui.add_lora("lcm-lora-sdv1-5", name="TCD-SD15-LoRA")  # a file of the right layout under TCD's name
    return webui


def base_p(webui, args, **fields):
    runner = webui.runner()
    p = processing.StableDiffusionProcessingTxt2Img(prompt="a cat", **fields)
    p.scripts, p.script_args = runner, runner.default_args()
    ours = runner.by_title(TITLE)
    p.script_args[ours.args_from:ours.args_from + len(args)] = args
    runner.setup_scrips(p)
    return p


def test_every_axis_is_listed_once_even_after_a_reload(plot):
    script_callbacks.before_ui_callback()  # Reload UI builds the UI again
    labels = [option.label for option in xyz_plot.axis_options]
    assert [label for label in labels if label.startswith("LCM-LoRA")] == [axis.label for axis in AXES]
    assert xyz_plot.option("LCM-LoRA preset").choices() == list(catalog.FAMILIES)
    assert xyz_plot.option("LCM-LoRA (on/off)").choices() == ["On", "Off"]
    assert xyz_plot.option("LCM-LoRA steps").choices is None  # typed values


def test_on_off_compares_lcm_against_the_usual_sampler_in_one_plot(plot):
    cells = xyz_plot.run_axis(base_p(plot, OFF, steps=20, cfg_scale=7.0), "LCM-LoRA (on/off)", ["On", "Off"])
    (on, on_done), (off, off_done) = cells
    assert (on.steps, on.cfg_scale, on.sampler_name) == (4, 1.0, "LCM")
    assert "<lora:lcm-lora-sdv1-5:1>" in on_done.infotexts[0] and "LCM-LoRA: lcm-lora-sdv1-5" in on_done.infotexts[0]
    assert (off.steps, off.cfg_scale) == (20, 7.0)
    assert "lora" not in off_done.infotexts[0].lower()  # the shared infotext dict kept nothing of the On cell


def _weight(text):
    return text.split("LCM-LoRA weight: ")[1].split(",")[0]


@pytest.mark.parametrize(("label", "values", "seen", "expected"), [
    ("LCM-LoRA steps", ["2", "6"], lambda cell, text: cell.steps, [2, 6]),
    ("LCM-LoRA CFG", ["1", "1.5"], lambda cell, text: cell.cfg_scale, [1.0, 1.5]),
    ("LCM-LoRA weight", ["0.5", "1"], lambda cell, text: _weight(text), ["0.5", "1"]),
])
def test_a_value_axis_turns_the_accordion_on_and_sets_each_cell(plot, label, values, seen, expected):
    cells = xyz_plot.run_axis(base_p(plot, OFF), label, values)
    assert [seen(cell, done.infotexts[0]) for cell, done in cells] == expected
    assert all(cell.sampler_name == "LCM" for cell, _ in cells)


def test_presets_side_by_side_pick_each_presets_file_and_sampler(plot):
    cells = xyz_plot.run_axis(base_p(plot, OFF), "LCM-LoRA preset", [catalog.LCM_LORA, catalog.TCD_LORA])
    (lcm, lcm_done), (tcd, tcd_done) = cells
    assert lcm.sampler_name == catalog.LCM_SAMPLER and "<lora:lcm-lora-sdv1-5:1>" in lcm_done.infotexts[0]
    assert tcd.sampler_name == catalog.TCD_SAMPLER and "<lora:TCD-SD15-LoRA:1>" in tcd_done.infotexts[0]


def test_a_value_the_accordion_cannot_take_stops_the_plot_before_it_generates(plot):
    p = base_p(plot, OFF)
    with pytest.raises(RuntimeError, match="LCM-LoRA preset 'Turbo'"):
        xyz_plot.run_axis(p, "LCM-LoRA preset", ["Turbo"])
    with pytest.raises(RuntimeError, match="LCM-LoRA steps -3"):
        xyz_plot.run_axis(p, "LCM-LoRA steps", ["4", "-3"])
