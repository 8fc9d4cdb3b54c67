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


def on_script_unloaded(callback, *, name=None):
    callbacks["script_unloaded"].append(callback)


def ui_settings_callback():
    for callback in callbacks["ui_settings"]:
        callback()


def infotext_pasted_callback(infotext, params):
    for callback in callbacks["infotext_pasted"]:
        callback(infotext, params)
