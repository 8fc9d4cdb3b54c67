"""Mirrors modules/scripts.py: the Script base class, how scripts/ files are loaded and which
hooks the ScriptRunner calls, with what arguments and in which order.

Kept to the parts the extension relies on: AlwaysVisible, elem_id(), infotext_fields, the
args_from/args_to slice of p.script_args, the exception guard around every hook, and the
built-in Sampler script (modules/processing_scripts/sampler.py) that is loaded after every
extension and overwrites steps/sampler/scheduler in setup() on the UI path.
"""
import importlib.util
import os
import re
import sys
import traceback

import gradio as gr

from modules import script_callbacks

AlwaysVisible = object()


class Script:
    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    create_group = True
    infotext_fields = None
    paste_field_names = None
    setup_for_ui_only = False
    controls = None
    on_after_component_elem_id = None

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def setup(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def process_before_every_sampling(self, p, *args, **kwargs):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def on_after_component(self, callback, *, elem_id):
        """Script.on_after_component: callback(OnComponent) once a component with elem_id is created."""
        if self.on_after_component_elem_id is None:
            self.on_after_component_elem_id = []
        self.on_after_component_elem_id.append((elem_id, callback))

    def elem_id(self, item_id):
        need_tabname = self.show(True) == self.show(False)
        tabkind = 'img2img' if self.is_img2img else 'txt2img'
        tabname = f"{tabkind}_" if need_tabname else ""
        title = re.sub(r'[^a-z_0-9]', '', re.sub(r'\s', '_', self.title().lower()))
        return f'script_{tabname}{title}_{item_id}'


class ScriptSampler(Script):
    """modules/processing_scripts/sampler.py: built-in UI script, runs after extension scripts."""

    section = "sampler"
    create_group = False
    setup_for_ui_only = True

    def title(self):
        return "Sampler"

    def show(self, is_img2img):
        return AlwaysVisible

    def ui(self, is_img2img):
        self.steps = gr.Slider(minimum=1, maximum=150, step=1, value=20, label="Sampling steps")
        self.sampler_name = gr.Dropdown(choices=["DPM++ 2M", "Euler a", "LCM"], value="DPM++ 2M", label="Sampling method")
        self.scheduler = gr.Dropdown(choices=["Automatic", "Karras", "SGM Uniform"], value="Automatic", label="Schedule type")
        return [self.steps, self.sampler_name, self.scheduler]

    def setup(self, p, steps, sampler_name, scheduler):
        p.steps = steps
        p.sampler_name = sampler_name
        p.scheduler = scheduler


def load_module(path):
    """modules/script_loading.py load_module: exec under the bare file name, not put in sys.modules."""
    module_spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def load_script_classes(path):
    """load_scripts(): clear callbacks, exec the file with its extension root on sys.path, collect classes."""
    script_callbacks.clear_callbacks()
    extension_root = os.path.dirname(os.path.dirname(path))
    sys.path.insert(0, extension_root)
    try:
        module = load_module(path)
    finally:
        sys.path.remove(extension_root)
    return [c for c in module.__dict__.values() if isinstance(c, type) and issubclass(c, Script) and c is not Script]


class OnComponent:
    def __init__(self, component):
        self.component = component


class ScriptRunner:
    def __init__(self, script_classes, is_img2img):
        self.is_img2img = is_img2img
        self.scripts = []
        for cls in [*script_classes, ScriptSampler]:
            script = cls()
            script.filename = getattr(cls, "__module__", "")
            script.is_img2img = is_img2img
            script.is_txt2img = not is_img2img
            script.tabname = "img2img" if is_img2img else "txt2img"
            visibility = script.show(is_img2img)
            script.alwayson = visibility is AlwaysVisible
            if script.alwayson:
                self.scripts.append(script)
        self.inputs = [None]
        self.errors = []
        # ScriptRunner.apply_on_before_component_callbacks, run at the end of initialize_scripts.
        self.on_after_component_elem_id = {}
        for script in self.scripts:
            for elem_id, callback in script.on_after_component_elem_id or []:
                self.on_after_component_elem_id.setdefault(elem_id, []).append((callback, script))

    def after_component(self, component):
        """ScriptRunner.after_component: the WebUI calls it for every component it creates in the tab
        (gradio's IOComponent.__init__ is patched in modules/scripts.py); errors are reported, not raised."""
        for callback, _script in self.on_after_component_elem_id.get(getattr(component, "elem_id", None), []):
            try:
                callback(OnComponent(component))
            except Exception:
                self.errors.append(traceback.format_exc())
        return component

    def create_scripts_ui(self):
        """The accordions section of modules/ui.py: each always-on script's ui() at its place in the tab."""
        for script in self.scripts:
            controls = script.ui(script.is_img2img)
            script.controls = list(controls or [])
            script.args_from = len(self.inputs)
            self.inputs.extend(script.controls)
            script.args_to = len(self.inputs)

    def create_ui(self):
        """ScriptRunner.setup_ui: each script's ui() inside the tab's Blocks; its slice of the inputs."""
        with gr.Blocks() as self.demo:
            self.create_scripts_ui()
        return self.demo

    def default_args(self):
        """The values the UI starts with, as p.script_args (position 0 is the selectable script index)."""
        return [0] + [c.value for c in self.inputs[1:]]

    def api_default_args(self):
        """modules/api/api.py init_default_script_args: ui() again, twice per script, in a throw-away Blocks."""
        script_args = [None] * len(self.inputs)
        script_args[0] = 0
        with gr.Blocks():
            for script in self.scripts:
                if script.ui(script.is_img2img):
                    script_args[script.args_from:script.args_to] = [e.value for e in script.ui(script.is_img2img)]
        return script_args

    def by_title(self, title):
        return next((s for s in self.scripts if s.title().lower() == title.lower()), None)

    def _run(self, method, p, *extra, **kwargs):
        for script in self.scripts:
            try:
                getattr(script, method)(p, *extra, *p.script_args[script.args_from:script.args_to], **kwargs)
            except Exception:
                # errors.report(...): printed, and processing continues
                self.errors.append(traceback.format_exc())
                print(self.errors[-1], file=sys.stderr)

    def setup_scrips(self, p, *, is_ui=True):
        for script in self.scripts:
            if not is_ui and script.setup_for_ui_only:
                continue
            try:
                script.setup(p, *p.script_args[script.args_from:script.args_to])
            except Exception:
                self.errors.append(traceback.format_exc())

    def before_process(self, p):
        self._run("before_process", p)

    def process(self, p):
        self._run("process", p)

    def before_process_batch(self, p, **kwargs):
        self._run("before_process_batch", p, **kwargs)

    def process_before_every_sampling(self, p, **kwargs):
        # called right before every sampler.sample / sample_img2img (modules/processing.py), after
        # p.sampler was created: txt2img, the hires pass, img2img
        self._run("process_before_every_sampling", p, **kwargs)

    def postprocess(self, p, processed):
        self._run("postprocess", p, processed)
