"""Mirrors modules/script_callbacks.py: the registration functions and the callers we rely on."""
from collections import defaultdict

callbacks = defaultdict(list)


def clear_callbacks():
    # modules/scripts.py load_scripts() starts with this; Reload UI calls it again.
    callbacks.clear()


def on_ui_settings(callback, *, name=None):
    callbacks["ui_settings"].append(callback)


def on_infotext_pasted(callback, *, name=None):
    callbacks["infotext_pasted"].append(callback)


def on_app_started(callback, *, name=None):
    callbacks["app_started"].append(callback)


def on_ui_tabs(callback, *, name=None):
    callbacks["ui_tabs"].append(callback)


def ui_tabs_callback():
    # modules/ui.py create_ui: each callback returns [(gr.Blocks, title, elem_id)]
    return [tab for callback in callbacks["ui_tabs"] for tab in (callback() or [])]


def app_started_callback(demo, app):
    # webui.py, after launch (and again after each Reload UI)
    for callback in callbacks["app_started"]:
        callback(demo, app)


def on_script_unloaded(callback, *, name=None):
    callbacks["script_unloaded"].append(callback)


def ui_settings_callback():
    for callback in callbacks["ui_settings"]:
        callback()


def infotext_pasted_callback(infotext, params):
    for callback in callbacks["infotext_pasted"]:
        callback(infotext, params)
