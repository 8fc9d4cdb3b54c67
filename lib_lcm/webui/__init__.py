"""The WebUI adapter: the only part of lib_lcm that imports ``modules``.

``register()`` is called from the body of ``scripts/lcm_lora.py``: Reload UI clears every
callback and re-executes scripts/ files, but not this cached package (``modules/scripts.py``
``load_scripts``), so registering at import here would be lost after the first reload.
"""

from __future__ import annotations

from typing import Any

from lib_lcm.rules import infotext
from lib_lcm.webui.page_sync import attach
from lib_lcm.webui.script import TITLE, before_sampling, build_ui, process, status_html

__all__ = ["TITLE", "attach", "before_sampling", "build_ui", "on_infotext_pasted", "process", "register",
           "status_html"]


def on_infotext_pasted(text: str, params: dict[str, Any]) -> None:
    infotext.strip_added_tags(params)


def register() -> None:
    from modules import script_callbacks

    from lib_lcm.webui.downloads import on_app_started, on_ui_tabs
    from lib_lcm.webui.samplers import register_samplers
    from lib_lcm.webui.settings_ui import on_ui_settings
    from lib_lcm.webui.xyz import register_axes

    register_samplers()  # before the UI builds its sampler dropdowns (modules/ui.py)

    script_callbacks.on_ui_settings(on_ui_settings)
    script_callbacks.on_infotext_pasted(on_infotext_pasted)
    script_callbacks.on_ui_tabs(on_ui_tabs)
    script_callbacks.on_app_started(on_app_started)
    script_callbacks.on_before_ui(register_axes)
