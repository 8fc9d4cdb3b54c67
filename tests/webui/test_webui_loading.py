"""Loading scripts/lcm_lora.py the way modules/scripts.py does, its UI, settings and callbacks."""

import gradio as gr
from modules import script_callbacks, scripts, shared
from webui_env import SCRIPT_FILE, TITLE

from lib_lcm.accordion.presets import LABELS
from lib_lcm.rules import catalog


def test_exactly_our_script_class_is_registered(webui):
    assert [c.__name__ for c in webui.classes] == ["LcmLoraScript"]


def test_callbacks_are_registered_once_and_again_after_reload_ui(webui):
    kinds = ("ui_settings", "infotext_pasted", "ui_tabs", "app_started")
    assert [len(script_callbacks.callbacks[k]) for k in kinds] == [1, 1, 1, 1]
    scripts.load_script_classes(str(SCRIPT_FILE))  # Reload UI: clear_callbacks(), then re-exec scripts/
    assert [len(script_callbacks.callbacks[k]) for k in kinds] == [1, 1, 1, 1]


def test_always_visible_in_both_tabs_with_stable_title(webui):
    for is_img2img in (False, True):
        runner = webui.runner(is_img2img)
        ours = runner.by_title(TITLE)
        assert ours is not None and ours.alwayson and ours.title() == "LCM-LoRA"
        assert ours.section == "accordions"


def test_ui_components_ids_and_defaults(webui):
    ids = {}
    for is_img2img in (False, True):
        ours = webui.runner(is_img2img).by_title(TITLE)
        enabled, weight, steps, cfg, preset = ours.controls
        assert isinstance(enabled, gr.Checkbox) and enabled.value is False
        assert (weight.value, steps.value, cfg.value, preset.value) == (1.0, 4, 1.0, "LCM-LoRA")
        assert (steps.minimum, steps.maximum, cfg.maximum) == (0, 8, 2.5)
        assert preset.choices in (list(catalog.FAMILIES), [(f, f) for f in catalog.FAMILIES])
        # short labels (their details are tooltips): none wraps in a third of the accordions row
        assert [c.label for c in (preset, weight, steps, cfg)] == [LABELS[k] for k in ("preset", "weight", "steps",
                                                                                       "cfg")]
        assert max(len(c.label) for c in (preset, weight, steps, cfg)) <= 8
        tab = "img2img" if is_img2img else "txt2img"
        assert enabled.elem_id == f"script_{tab}_lcmlora_enabled-checkbox"
        assert enabled.accordion.elem_id == f"script_{tab}_lcmlora_enabled"
        ids[tab] = {c.elem_id for c in ours.controls}
    assert not ids["txt2img"] & ids["img2img"]  # no duplicate DOM ids across tabs


def test_defaults_follow_the_settings(webui):
    shared.opts.lcm_lora_default_steps = 6
    shared.opts.lcm_lora_default_cfg = 1.5
    shared.opts.lcm_lora_max_steps = 12
    _enabled, _weight, steps, cfg, _preset = webui.runner().by_title(TITLE).controls
    assert (steps.value, cfg.value, steps.maximum) == (6, 1.5, 12)


def test_api_defaults_come_from_a_fresh_ui_call(webui):
    runner = webui.runner()
    ours = runner.by_title(TITLE)
    assert runner.api_default_args()[ours.args_from:ours.args_to] == [False, 1.0, 4, 1.0, "LCM-LoRA"]


def test_status_line_says_which_file_or_what_is_missing(webui):
    from lib_lcm.webui import status_html

    assert "Missing" in status_html() and "latent-consistency/lcm-lora-sdv1-5" in status_html()
    webui.add_lora()
    assert "Uses lcm-lora-sdv1-5.safetensors for SD 1.5" in status_html()
    webui.load_model("checkpoint-sd2", is_sd2=True)
    assert "not for SD 2.x" in status_html()


def test_status_line_without_any_model_or_checkpoint(webui, monkeypatch):
    from modules import sd_models

    from lib_lcm.webui import status_html

    monkeypatch.setattr(sd_models.model_data, "sd_model", None)
    assert "not for an unknown architecture" in status_html()
    ckpt = webui.tmp / "models" / "Stable-diffusion" / "checkpoint-sd15.safetensors"
    monkeypatch.setattr(sd_models, "checkpoints_list", {"x": sd_models.CheckpointInfo(str(ckpt))})
    webui.add_lora()
    assert "(SD 1.5): Uses lcm-lora-sdv1-5.safetensors" in status_html()


def test_settings_are_registered_in_their_own_section_with_widgets(webui):
    ours = {k: v for k, v in shared.opts.data_labels.items() if k.startswith("lcm_lora_")}
    assert len(ours) == 17
    # pasting these infotext keys puts the setting into "Override settings" (modules/infotext_utils.py)
    assert {k: v.infotext for k, v in ours.items() if v.infotext} == {
        "lcm_lora_tcd_gamma": "TCD gamma", "lcm_lora_timesteps": "LCM-LoRA explicit timesteps"}
    for _key, info in ours.items():
        assert info.section == ("lcm_lora", "LCM-LoRA") and info.category_id == "sd"
        if isinstance(info.default, float):
            assert info.component is gr.Slider and info.component_args["maximum"] >= info.default
    assert shared.opts.lcm_lora_max_cfg == 2.5


def test_the_preset_table_reaches_the_page_intact(webui):
    import html
    import json
    import re

    from lib_lcm.webui import compat
    from lib_lcm.webui.script import hint_html

    markup = hint_html(compat.current_settings())
    data = json.loads(html.unescape(re.search(r'data-presets="([^"]*)"', markup).group(1)))
    assert data["setSampler"] is True and data["presets"]["DMD2"]["timesteps"] == [999, 749, 499, 249]
    assert "λ1 = 0.8" in markup


def test_dropdown_echo_only_sets_real_choices(webui):
    from lib_lcm.webui.page_sync import dropdown_updates

    good = dropdown_updates(True, "TCD-LoRA", "TCD", "SGM Uniform")
    assert [u.get("value") for u in good] == ["TCD", "SGM Uniform"]
    bad = dropdown_updates(True, "LCM-LoRA", "<script>", "Nope")
    assert all("value" not in u for u in bad)
