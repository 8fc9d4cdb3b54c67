"""Mirrors the parts of modules/shared.py (and shared_cmd_options.py) the extension reads."""
import argparse
import os

from modules import options, paths

options_section = options.options_section
OptionInfo = options.OptionInfo

# Built-in settings we read, with A1111 1.10.1 defaults (modules/shared_options.py).
opts = options.Options({
    "img2img_fix_steps": OptionInfo(False),
    "sd_model_checkpoint": OptionInfo(None),
})

# --lora-dir and --lyco-dir-backcompat are added by extensions-builtin/Lora/preload.py.
cmd_opts = argparse.Namespace(
    lora_dir=os.path.join(paths.models_path, "Lora"),
    lyco_dir_backcompat=os.path.join(paths.models_path, "LyCORIS"),
    no_gradio_queue=False,
    api_auth=None,
)

sd_model = None  # set by tests; the real one is a property that loads the checkpoint

hf_endpoint = os.getenv('HF_ENDPOINT', 'https://huggingface.co')
