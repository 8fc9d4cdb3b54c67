"""Register the settings section (Settings → LCM-LoRA) from lib_lcm.rules.settings.SETTINGS."""

from __future__ import annotations

from typing import Any

from lib_lcm.rules.settings import SECTION, SETTINGS, SettingSpec


def on_ui_settings() -> None:
    from modules import shared

    # Every OptionInfo needs a section, or the Settings tab fails to build (modules/ui_settings.py
    # reads item.section[0]); the third element files it under the "Stable Diffusion" category.
    options = shared.options_section((*SECTION, "sd"), {spec.key: _option(shared, spec) for spec in SETTINGS})
    for key, info in options.items():
        shared.opts.add_option(key, info)


def _option(shared: Any, spec: SettingSpec) -> Any:
    extra = {"infotext": spec.infotext} if spec.infotext else {}
    info = shared.OptionInfo(spec.default, spec.label, **_component(spec), **extra)
    return info.info(spec.info) if spec.info else info


def _component(spec: SettingSpec) -> dict[str, Any]:
    # A float default without a component raises "bad options item type" while the Settings tab
    # is built (modules/ui_settings.py create_setting_component), so every number gets a slider.
    if spec.minimum is None:
        return {}
    import gradio as gr

    return {"component": gr.Slider,
            "component_args": {"minimum": spec.minimum, "maximum": spec.maximum, "step": spec.step}}
