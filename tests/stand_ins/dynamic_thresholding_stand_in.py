"""Imitates what the extension relies on in Dynamic Thresholding (mcmonkeyprojects/sd-dynamic-thresholding,
``scripts/dynamic_thresholding.py``): an always-on script titled "Dynamic Thresholding (CFG Scale Fix)"
whose first argument is its checkbox, and whose ``process_batch`` lets ``p.dynthres_enabled`` override
that checkbox. Not imitated: its sampler wrapper. ``p.dynamic_thresholding_ran`` records whether it
would have wrapped the sampler."""
from modules import scripts


class DynamicThresholdingStandIn(scripts.Script):
    def title(self):
        return "Dynamic Thresholding (CFG Scale Fix)"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        import gradio as gr

        return [gr.Checkbox(value=False), gr.Slider(minimum=1.0, maximum=30.0, value=7.0)]

    def process_batch(self, p, enabled, mimic_scale, **batch):
        p.dynamic_thresholding_ran = bool(getattr(p, "dynthres_enabled", enabled))
