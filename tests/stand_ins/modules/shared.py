"""Mirrors the parts of modules/shared.py (and shared_cmd_options.py) the extension reads."""
import argparse
import os

from modules import options, paths

options_section = options.options_section
OptionInfo = options.OptionInfo



def builtin_options():
    """Built-in settings the extension or the sampler stand-ins read, with A1111 1.10.1 defaults
    (modules/shared_options.py)."""
    return options.Options({
        "img2img_fix_steps": OptionInfo(False),
        "sd_model_checkpoint": OptionInfo(None),
        "hide_samplers": OptionInfo([]),
        "eta_ancestral": OptionInfo(1.0, infotext="Eta"),
        "skip_early_cond": OptionInfo(0.0, infotext="Skip Early CFG"),
        "s_min_uncond_all": OptionInfo(False),
        "batch_cond_uncond": OptionInfo(True),
        "enable_quantization": OptionInfo(False),
    })


opts = builtin_options()


class State:
    """modules/shared_state.py: the fields samplers read and write."""
    interrupted = False
    skipped = False
    sampling_step = 0
    sampling_steps = 0


state = State()

# --lora-dir and --lyco-dir-backcompat are added by extensions-builtin/Lora/preload.py.
cmd_opts = argparse.Namespace(
    lora_dir=os.path.join(paths.models_path, "Lora"),
    lyco_dir_backcompat=os.path.join(paths.models_path, "LyCORIS"),
    no_gradio_queue=False,
    api_auth=None,
)

sd_model = None  # set by tests; the real one is a property that loads the checkpoint

hf_endpoint = os.getenv('HF_ENDPOINT', 'https://huggingface.co')
