"""lib_lcm: LCM-LoRA for the Stable Diffusion WebUI, and a standalone library.

Everything outside ``lib_lcm.webui`` is pure Python (plus torch/diffusers only where a module says
so) and imports without the WebUI.
"""

__version__ = "0.1.0"
