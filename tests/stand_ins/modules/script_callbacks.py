"""Imitates the registration side of ``modules/script_callbacks.py`` (A1111 1.10.1) for the five
kinds this extension uses, and the WebUI's calls of them.

``on_<kind>(callback, *, name=None)`` appends to ``callbacks[kind]``; ``clear_callbacks()`` empties
everything (``load_scripts`` does it before executing scripts/ files, so Reload UI registers
anew). The callers: the Settings UI build (``ui_settings_callback``), the paste button
(``infotext_pasted_callback(text, params)``), ``modules/ui.py`` collecting extra tabs
(``ui_tabs_callback``: each callback returns [(blocks, title, elem_id)]), and ``webui.py`` after
the server starts and after every Reload UI (``app_started_callback(demo, app)``), and ``modules/ui.py``
before it builds the UI (``before_ui_callback``). The WebUI
reports a failing callback and goes on; here the exception propagates, so tests see it.
"""
from collections import defaultdict

callbacks = defaultdict(list)


def clear_callbacks():
    callbacks.clear()


def _registration(kind):
    def register(callback, *, name=None):
        callbacks[kind].append(callback)

    register.__name__ = f"on_{kind}"
    return register


on_ui_settings = _registration("ui_settings")
on_infotext_pasted = _registration("infotext_pasted")
on_ui_tabs = _registration("ui_tabs")
on_app_started = _registration("app_started")
on_before_ui = _registration("before_ui")


def before_ui_callback():
    """``modules/ui.py`` create_ui calls it first, once every script file is loaded."""
    for callback in callbacks["before_ui"]:
        callback()


def ui_settings_callback():
    for callback in callbacks["ui_settings"]:
        callback()


def infotext_pasted_callback(infotext, params):
    for callback in callbacks["infotext_pasted"]:
        callback(infotext, params)


def ui_tabs_callback():
    tabs = []
    for callback in callbacks["ui_tabs"]:
        tabs.extend(callback() or [])
    return tabs


def app_started_callback(demo, app):
    for callback in callbacks["app_started"]:
        callback(demo, app)
