"""Imitates the module attributes of ``modules/shared.py`` (A1111 1.10.1) that the extension and the
other stand-ins read: ``opts``, ``state``, ``cmd_opts``, ``sd_model``, ``hf_endpoint``, and the
``OptionInfo`` / ``options_section`` names it re-exports from ``modules/options.py``."""
import argparse
import os

from modules import options, paths
from modules.options import OptionInfo, options_section  # noqa: F401 (the WebUI re-exports them here)


def builtin_options():
    """A fresh settings object holding the built-in settings that are read here, with A1111 1.10.1's
    defaults (``modules/shared_options.py``); the extension's own are added by its on_ui_settings."""
    return options.Options({
        "sd_model_checkpoint": OptionInfo(None),
        "hide_samplers": OptionInfo([]),
        "img2img_fix_steps": OptionInfo(False),
        "enable_quantization": OptionInfo(False),
        "eta_ancestral": OptionInfo(1.0, infotext="Eta"),
        "batch_cond_uncond": OptionInfo(True),
        "skip_early_cond": OptionInfo(0.0, infotext="Skip Early CFG"),
        "s_min_uncond_all": OptionInfo(False),
    })


opts = builtin_options()


class State:
    """``modules/shared_state.py``: the job flags and step counters the samplers touch."""

    interrupted = skipped = False
    sampling_step = sampling_steps = 0


state = State()

# Command-line options; --lora-dir and --lyco-dir-backcompat come from extensions-builtin/Lora/preload.py.
cmd_opts = argparse.Namespace(
    lora_dir=os.path.join(paths.models_path, "Lora"),
    lyco_dir_backcompat=os.path.join(paths.models_path, "LyCORIS"),
    no_gradio_queue=False,
    api_auth=None,
)

sd_model = None  # tests assign the loaded model; the WebUI's is a property that loads a checkpoint on access

hf_endpoint = os.getenv("HF_ENDPOINT", "https://huggingface.co")
