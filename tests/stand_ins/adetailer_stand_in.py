"""Imitates what the extension relies on in ADetailer (Bing-su/adetailer v25.3.0, ``scripts/!adetailer.py``):
an always-on script titled "ADetailer" whose arguments are ``[enable, skip_img2img, {tab}, ...]``, that
runs before ours (its folder sorts first), and whose fix-up pass, built in ``postprocess_image``,
reads its tabs from ``p.script_args`` again and takes steps, CFG and sampler from a tab only where
its "use separate" switch is on, else from ``p`` (``get_steps``, ``get_cfg_scale``, ``get_sampler``).
Only that choice is imitated: ``fixup_settings(p)`` returns what the first active tab's pass would use
(None: no tab has a model, so no pass)."""
from modules import scripts


class ADetailerStandIn(scripts.Script):
    def title(self):
        return "ADetailer"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        import gradio as gr

        return [gr.Checkbox(value=False), gr.Checkbox(value=False), gr.JSON(value={"ad_model": "None"})]

    def fixup_settings(self, p):
        tabs = [a for a in p.script_args[self.args_from:self.args_to] if isinstance(a, dict)]
        tab = next((t for t in tabs if t.get("ad_model", "None") != "None"), None)
        if tab is None:
            return None  # no pass at all
        steps = tab["ad_steps"] if tab.get("ad_use_steps") else p.steps
        cfg = tab["ad_cfg_scale"] if tab.get("ad_use_cfg_scale") else p.cfg_scale
        sampler = p.sampler_name
        if tab.get("ad_use_sampler") and tab.get("ad_sampler") != "Use same sampler":
            sampler = tab["ad_sampler"]
        return steps, cfg, sampler
