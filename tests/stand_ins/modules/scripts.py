"""Imitates ``modules/scripts.py`` (A1111 1.10.1): the ``Script`` base class, how files in an
extension's scripts/ folder are loaded, and the ``ScriptRunner`` of a tab.

What is reproduced:
- ``load_script_classes(path)`` (``load_scripts`` for one file): every registered callback is
  cleared first (Reload UI does the same), the file is executed as a fresh module named after the
  file (``modules/script_loading.py``; not put in ``sys.modules``) with its extension's folder
  first on ``sys.path``, and every class in it that is a ``Script`` subclass counts as a script,
  the base class included if the file imported it by name.
- ``ScriptRunner(classes, is_img2img)``: one instance per class plus the built-in "Sampler"
  script (``modules/processing_scripts/sampler.py``), which comes after the extensions' scripts.
  Each learns its tab (``is_img2img``, ``is_txt2img``, ``tabname``); those whose ``show()`` returns
  ``AlwaysVisible`` are kept. Callbacks asked for with ``on_after_component`` (in ``__init__``)
  are gathered by elem_id, and ``after_component`` runs them with an ``OnComponent``.
- UI: each script's ``ui()`` runs in the tab; its components are appended to ``inputs`` (position
  0 is the selectable-script index) and it gets ``args_from`` / ``args_to``, its slice of
  ``p.script_args``. Built per section (``setup_ui_for_section``), a script whose ``create_group`` is
  true gets its UI wrapped in a ``gr.Group``; the page builds each section where it belongs. The API's defaults (``modules/api/api.py`` init_default_script_args) call
  ``ui()`` again, twice per script, inside a throw-away ``gr.Blocks``.
- Hooks: ``setup`` (from the UI, and from the API except for UI-only scripts such as "Sampler",
  which overwrites steps, sampler and scheduler), ``before_process``, ``process``,
  ``before_process_batch``, ``process_batch``, ``process_before_every_sampling``, ``postprocess``: each script in
  order, called with p, its own slice of ``p.script_args`` and the hook's keyword arguments. An
  exception in a script is reported (here: kept in ``errors`` and printed) and the run goes on.
- ``Script.elem_id(item)``: "script_" + "txt2img_"/"img2img_" (only for scripts shown alike in both
  tabs) + the title lower-cased, whitespace to "_", anything but [a-z0-9_] dropped + "_" + item.
"""
import importlib.util
import os
import re
import sys
import traceback
from collections import namedtuple

import gradio as gr

from modules import script_callbacks

AlwaysVisible = object()


class Script:
    name = filename = section = group = None
    args_from = args_to = None
    alwayson = is_txt2img = is_img2img = False
    tabname = None
    create_group = True
    setup_for_ui_only = False
    controls = infotext_fields = paste_field_names = None
    on_after_component_elem_id = None

    def title(self):
        raise NotImplementedError

    def show(self, is_img2img):
        return True

    def ui(self, is_img2img):
        return None

    # The hooks get p, then the script's own slice of p.script_args, then the hook's keyword arguments.
    def setup(self, p, *script_args):
        pass

    def before_process(self, p, *script_args):
        pass

    def process(self, p, *script_args):
        pass

    def before_process_batch(self, p, *script_args, **batch):
        pass

    def process_batch(self, p, *script_args, **batch):
        pass

    def process_before_every_sampling(self, p, *script_args, **sampling):
        pass

    def postprocess(self, p, processed, *script_args):
        pass

    def on_after_component(self, fn, *, elem_id):
        self.on_after_component_elem_id = [*(self.on_after_component_elem_id or []), (elem_id, fn)]

    def elem_id(self, item_id):
        slug = re.sub(r"[^a-z0-9_]", "", "".join("_" if ch.isspace() else ch for ch in self.title().lower()))
        tab = ("img2img_" if self.is_img2img else "txt2img_") if self.show(True) == self.show(False) else ""
        return f"script_{tab}{slug}_{item_id}"


class ScriptSampler(Script):
    section = "sampler"
    create_group = False
    setup_for_ui_only = True

    def title(self):
        return "Sampler"

    def show(self, is_img2img):
        return AlwaysVisible

    def ui(self, is_img2img):
        return [gr.Slider(minimum=1, maximum=150, step=1, value=20, label="Sampling steps"),
                gr.Dropdown(choices=["DPM++ 2M", "Euler a", "LCM"], value="DPM++ 2M", label="Sampling method"),
                gr.Dropdown(choices=["Automatic", "Karras", "SGM Uniform"], value="Automatic", label="Schedule type")]

    def setup(self, p, steps, sampler, schedule):
        p.steps, p.sampler_name, p.scheduler = steps, sampler, schedule


def load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_script_classes(path):
    script_callbacks.clear_callbacks()
    extension_dir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    saved = list(sys.path)
    sys.path.insert(0, extension_dir)
    try:
        module = load_module(path)
    finally:
        sys.path[:] = saved
    return [value for value in vars(module).values() if isinstance(value, type) and issubclass(value, Script)]


# Every loaded script file's classes, as (script_class, path, basedir, module) records: extensions
# find another script's module here by the name the loader gave it (e.g. "xyz_grid.py").
ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
scripts_data = []


class OnComponent:
    def __init__(self, component):
        self.component = component


class ScriptRunner:
    def __init__(self, script_classes, is_img2img):
        self.is_img2img = is_img2img
        self.inputs = [None]
        self.errors = []
        self.scripts = []
        tab = "img2img" if is_img2img else "txt2img"
        for cls in [*script_classes, ScriptSampler]:
            script = cls()
            script.filename = cls.__module__
            script.is_img2img, script.is_txt2img, script.tabname = is_img2img, not is_img2img, tab
            script.alwayson = script.show(is_img2img) is AlwaysVisible
            if script.alwayson:
                self.scripts.append(script)
        self.alwayson_scripts = self.scripts  # the WebUI keeps the selectable ones apart; here there are none
        self.on_after_component_elem_id = {}
        for script in self.scripts:
            for elem_id, callback in script.on_after_component_elem_id or ():
                self.on_after_component_elem_id.setdefault(elem_id, []).append((callback, script))

    def _report(self, what, script):
        self.errors.append(f"Error running {what}: {script.filename}\n{traceback.format_exc()}")
        print(self.errors[-1], file=sys.stderr)

    def after_component(self, component):
        for callback, script in self.on_after_component_elem_id.get(getattr(component, "elem_id", None), ()):
            try:
                callback(OnComponent(component))
            except Exception:
                self._report("on_after_component", script)
        return component

    def create_scripts_ui(self, section=None):
        """Every script's UI, or only that of the scripts of ``section`` (each in a gr.Group if it asks)."""
        for script in self.scripts:
            if section is None:
                self._create_script_ui(script)
            elif script.section == section:
                if script.create_group:
                    with gr.Group() as script.group:
                        self._create_script_ui(script)
                else:
                    self._create_script_ui(script)

    def _create_script_ui(self, script):
        script.controls = list(script.ui(script.is_img2img) or [])
        script.args_from = len(self.inputs)
        self.inputs += script.controls
        script.args_to = len(self.inputs)

    def create_ui(self):
        with gr.Blocks() as self.demo:
            self.create_scripts_ui()
        return self.demo

    def default_args(self):
        """p.script_args as the UI sends them: every input's starting value."""
        return [0, *(component.value for component in self.inputs[1:])]

    def api_default_args(self):
        args = [0] + [None] * (max((s.args_to for s in self.scripts), default=1) - 1)
        with gr.Blocks():
            for script in self.scripts:
                if script.ui(script.is_img2img):
                    args[script.args_from:script.args_to] = [c.value for c in script.ui(script.is_img2img)]
        return args

    def by_title(self, title):
        return next((s for s in self.scripts if s.title().lower() == title.lower()), None)

    def _each(self, hook, p, *leading, **kwargs):
        for script in self.scripts:
            try:
                getattr(script, hook)(p, *leading, *p.script_args[script.args_from:script.args_to], **kwargs)
            except Exception:
                self._report(hook, script)

    def setup_scrips(self, p, *, is_ui=True):
        for script in self.scripts:
            if is_ui or not script.setup_for_ui_only:
                try:
                    script.setup(p, *p.script_args[script.args_from:script.args_to])
                except Exception:
                    self._report("setup", script)

    def before_process(self, p):
        self._each("before_process", p)

    def process(self, p):
        self._each("process", p)

    def before_process_batch(self, p, **batch):
        self._each("before_process_batch", p, **batch)

    def process_batch(self, p, **batch):
        self._each("process_batch", p, **batch)

    def process_before_every_sampling(self, p, **sampling):
        # right before every sample / sample_img2img, once p.sampler exists: txt2img, hires, img2img
        self._each("process_before_every_sampling", p, **sampling)

    def postprocess(self, p, processed):
        self._each("postprocess", p, processed)
