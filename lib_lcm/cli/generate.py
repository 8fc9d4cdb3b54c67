"""``python -m lib_lcm generate``: few-step images from a checkpoint, without the WebUI.

Every problem the user can fix ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, TextIO, get_args

from lib_lcm.cli.download import progress_bar
from lib_lcm.rules.catalog import ACCELERATION_WEIGHT, LCM_CFG, LCM_STEPS, STYLE_WEIGHT, TCD_GAMMA
from lib_lcm.standalone.fast_path import DecoderChoice, OffloadChoice
from lib_lcm.standalone.lora_fusion import LoraFile
from lib_lcm.standalone.model_source import StandaloneError

USAGE_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, f"a style LoRA and its weight (default {STYLE_WEIGHT:g}, the paper's); repeatable")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--negative", default="", help="negative prompt (needs --cfg above 1 to do anything)")
    steps, cfg = LCM_STEPS, LCM_CFG
    parser.add_argument("--steps", type=int, default=steps.default,
                        help=f"{steps.minimum}-{steps.maximum}; {steps.default} is the sweet spot")
    parser.add_argument("--cfg", type=float, default=cfg.default,
                        help=f"{cfg.minimum:g}-{cfg.maximum:g}; 1 skips the negative pass")
    parser.add_argument("--lcm-weight", type=float, default=ACCELERATION_WEIGHT,
                        help="acceleration LoRA weight (lambda 2)")
    parser.add_argument("--init-image", type=Path, help="img2img: start from this image")
    parser.add_argument("--strength", type=float, default=0.5, help="img2img/inpaint denoising strength")
    parser.add_argument("--mask", type=Path, help="inpaint: white repaints, black keeps (needs --init-image)")
    parser.add_argument("--sampler", choices=("lcm", "tcd"), default="lcm")
    parser.add_argument("--tcd-gamma", type=float, default=TCD_GAMMA, help="TCD's stochasticity (eta), 0-1")
    parser.add_argument("--seed", type=int, default=-1, help="-1: random")
    parser.add_argument("--size", help="WxH, multiples of 8 (default: the init image's, else 512 or 1024)")
    parser.add_argument("--batch", type=int, default=1, help="images per run; image i uses seed+i")
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="folder for the PNGs")
    parser.add_argument("--no-fuse", action="store_true", help="keep LoRAs as adapters instead of fusing them")
    add_speed_arguments(parser)


def add_model_arguments(parser: argparse.ArgumentParser, lora_help: str) -> None:
    """The model and its LoRA files, shared by generate and live."""
    parser.add_argument("--checkpoint", required=True,
                        help="SD 1.5/SDXL/SSD-1B .safetensors, diffusers folder or repo id")
    parser.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]", help=lora_help)
    parser.add_argument("--lcm-lora", type=Path, help="use this acceleration LoRA file instead of the catalog's")
    parser.add_argument("--lora-dir", type=Path, help="where the acceleration LoRA is looked for and downloaded "
                                                      "(default ~/.cache/lcm-lora/Lora; a WebUI's models/Lora works)")
    parser.add_argument("--config", type=Path, help="a diffusers folder of the same architecture, for its configs "
                                                    "and tokenizer (single files; default: shipped configs)")
    parser.add_argument("--endpoint", help="Hugging Face endpoint for the LoRA and tokenizer downloads (default: "
                                           "HF_ENDPOINT or huggingface.co; a repo id checkpoint follows HF_ENDPOINT)")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when present)")


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Options`` fields from add_model_arguments' flags."""
    fields: dict[str, Any] = dict(styles=tuple(parse_lora(text) for text in args.lora), acceleration_lora=args.lcm_lora,
                                  endpoint=args.endpoint, config=args.config, device=args.device)
    if args.lora_dir is not None:
        fields["lora_dir"] = args.lora_dir
    return fields


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """The fast path's switches (docs/live.md), shared by generate and live."""
    parser.add_argument("--compile", action="store_true",
                        help="compile the UNet and the decoder (CUDA graphs on a GPU): the first image takes longer, "
                             "the next ones are faster")
    parser.add_argument("--vae", choices=get_args(DecoderChoice), default="full",
                        help="decoder: the checkpoint's VAE, or the tiny autoencoder (TAESD/TAESDXL, ~10 MB, "
                             "downloaded once): much faster, slightly less detail")
    parser.add_argument("--vae-dir", type=Path, help="where the tiny decoder is kept (default ~/.cache/lcm-lora/"
                                                     "decoders)")
    parser.add_argument("--offload", choices=get_args(OffloadChoice), default="none",
                        help="small GPUs: keep weights in CPU memory, moving each model (model) or each layer "
                             "(sequential, slowest) to the GPU as it runs")


def speed_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Options`` fields from add_speed_arguments' flags."""
    fields: dict[str, Any] = dict(compile=args.compile, decoder=args.vae, offload=args.offload)
    if args.vae_dir is not None:
        fields["decoder_dir"] = args.vae_dir
    return fields


def run_generate(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    def say(message: str) -> None:
        print(message, file=err or sys.stderr)

    try:
        options, job = _options(args), _job(args)
        quiet_libraries()
        from lib_lcm.standalone.pipeline import build_pipeline

        progress = progress_bar("LCM-LoRA", err or sys.stderr)
        ready = build_pipeline(args.checkpoint, options, echo=say, download_progress=progress)
        results = ready.generate(job, echo=say)
    except StandaloneError as error:
        print(f"error: {error}", file=err or sys.stderr)
        return USAGE_ERROR
    for result in results:
        print(result.save(args.out), file=out or sys.stdout)
    return 0


def _options(args: argparse.Namespace) -> Any:
    from lib_lcm.standalone.pipeline import Options

    if not 0.0 <= args.tcd_gamma <= 1.0:
        raise StandaloneError(f"--tcd-gamma {args.tcd_gamma}: choose a value from 0 to 1.")
    return Options(sampler=args.sampler, acceleration_weight=_weight(args.lcm_weight, "--lcm-weight"),
                   tcd_gamma=args.tcd_gamma, fuse=not args.no_fuse, **model_options(args), **speed_options(args))


def _job(args: argparse.Namespace) -> Any:
    from lib_lcm.standalone.pipeline import Job

    width, height = parse_size(args.size) if args.size else (None, None)
    if not math.isfinite(args.cfg):
        raise StandaloneError(f"--cfg {args.cfg}: give a number such as 1 or 1.5.")
    return Job(prompt=args.prompt, negative_prompt=args.negative, steps=args.steps, cfg=args.cfg, seed=args.seed,
               width=width, height=height, batch=args.batch, init_image=_image(args.init_image, "--init-image"),
               strength=args.strength, mask=_image(args.mask, "--mask"))


def parse_lora(text: str) -> LoraFile:
    """``style.safetensors:0.5`` -> (path, 0.5); no weight: STYLE_WEIGHT. A Windows drive letter is not a weight."""
    path, sep, weight = text.rpartition(":")
    if not sep or not path or "/" in weight or "\\" in weight:
        return LoraFile(Path(text), STYLE_WEIGHT)
    try:
        value = float(weight)
    except ValueError:
        raise StandaloneError(f"--lora {text}: the weight after ':' must be a number, "
                              f"e.g. {path}:{STYLE_WEIGHT:g}.") from None
    return LoraFile(Path(path), _weight(value, f"--lora {text}"))


def _weight(value: float, what: str) -> float:
    if not math.isfinite(value) or not -4.0 <= value <= 4.0:
        raise StandaloneError(f"{what}: weight {value} is outside -4..4; LoRA weights are usually 0.5-1.")
    return value


def parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise StandaloneError(f"--size {text}: write it as WIDTHxHEIGHT, e.g. 512x768.") from None
    return width, height


def _image(path: Path | None, what: str) -> Any:
    if path is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError:
        raise StandaloneError(f"{what} {path}: no such file.") from None
    except (UnidentifiedImageError, OSError) as error:
        raise StandaloneError(f"{what} {path}: not a readable image ({error}).") from None


def quiet_libraries() -> None:
    """diffusers' per-load INFO/WARNING lines (e.g. "No LoRA keys associated to CLIPTextModel") say
    nothing the user can act on; our own messages cover what matters. Progress bars stay."""
    import logging

    for name in ("diffusers", "transformers", "peft"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.set_verbosity_error()
        transformers_logging.set_verbosity_error()
    except ImportError as error:  # the standalone extra is not installed
        raise StandaloneError(f"generate needs torch, diffusers, transformers and peft ({error}); install them "
                              "with: pip install 'sd-webui-lcm-lora[standalone]'.") from None

