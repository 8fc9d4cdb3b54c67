"""``python -m lib_lcm toy-train`` and ``python -m lib_lcm distill``: the toy weights, and LCM-LoRAs of checkpoints.

``accelerate launch -m lib_lcm distill …`` runs the same command on several processes (GPUs, machines).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lib_lcm.toy.files import AUTOENCODER_FILE, TEACHER_FILE, WEIGHTS_DIR

if TYPE_CHECKING:
    from lib_lcm.training.distill import DistillConfig



def add_toy_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for autoencoder, classifier and teacher")
    parser.add_argument("--steps", type=int, default=2500, help="teacher training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher-only", action="store_true",
                        help="train only the teacher, on the autoencoder already in --out")


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    """Unset numbers take DistillConfig's defaults (not imported here: the parser must not need torch)."""
    parser.add_argument("--teacher", type=Path, default=WEIGHTS_DIR,
                        help="folder with the toy teacher and autoencoder (default: the shipped ones)")
    parser.add_argument("--checkpoint", help="instead of the toy: an SD 1.5/SDXL/SSD-1B single file, folder or repo id")
    data = parser.add_argument_group("training data (with --checkpoint; one of --images, --shards, --dataset)")
    data.add_argument("--images", type=Path, help="a folder of training images, captions in same-name .txt files")
    data.add_argument("--shards", nargs="+", metavar="TAR",
                      help="webdataset tar shards (KEY.jpg + KEY.txt); globs work")
    data.add_argument("--dataset", help="a Hugging Face datasets dataset: a save_to_disk folder or a hub name")
    data.add_argument("--split", default="train", help="with --dataset: the split")
    data.add_argument("--image-column", default="image", help="with --dataset: the image column")
    data.add_argument("--caption-column", default="text", help="with --dataset: the caption column")
    data.add_argument("--cache", type=Path, help="encode each sample once into this folder; later runs read it")
    data.add_argument("--stream", action="store_true",
                      help="encode each sample every time it is drawn, keeping nothing (default: keep in memory)")
    parser.add_argument("--size", type=int, default=512, help="with --checkpoint: training resolution")
    parser.add_argument("--device", help="with --checkpoint: default cuda when present, else cpu")
    parser.add_argument("--half", choices=("float16", "bfloat16"), default="float16",
                        help="with --checkpoint on CUDA: the teacher's precision and Accelerate's mixed precision "
                             "(the LoRA trains in float32)")
    parser.add_argument("--accumulate", type=int, default=1,
                        help="micro-batches per optimizer step on each process (gradient accumulation); --batch "
                             "stays the whole step's batch")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="with --checkpoint: recompute activations in the backward pass (less memory)")
    parser.add_argument("--optimizer", choices=("adamw", "adamw8bit"),
                        help="adamw8bit: bitsandbytes' 8-bit AdamW (less memory; pip install bitsandbytes)")
    parser.add_argument("--config", type=Path, help="with --checkpoint: a diffusers folder for single-file configs")
    parser.add_argument("--endpoint", help="with --checkpoint: Hugging Face endpoint for the tokenizer files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the LoRA and the resumable state")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch", type=int, help="samples per optimizer step, over every process together")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--rank", type=int)
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--w-min", type=float, help="guidance w of the target (1 + w) cond - w uncond; CFG = 1 + w")
    parser.add_argument("--w-max", type=float)
    parser.add_argument("--ema-decay", type=float, help="target network EMA; 0: none (LCM-LoRA's scripts)")
    parser.add_argument("--loss", choices=("huber", "l2"))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--fresh", action="store_true", help="ignore a saved state in --out instead of resuming")


def run_toy_train(args: argparse.Namespace) -> int:
    from lib_lcm.toy.training import TeacherRecipe, train_all, train_teacher_in

    if args.steps < 1:
        print("error: --steps must be at least 1", file=sys.stderr)
        return 2
    recipe = TeacherRecipe(steps=args.steps)
    if args.teacher_only:
        if not (args.out / AUTOENCODER_FILE).is_file():
            print(f"error: --teacher-only needs {args.out / AUTOENCODER_FILE}; run without it first",
                  file=sys.stderr)
            return 2
        train_teacher_in(args.out, recipe, args.seed)
    else:
        train_all(args.out, recipe, args.seed)
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from lib_lcm.standalone.model_source import StandaloneError
    from lib_lcm.training.distill import DistillConfig, DistillError

    given = {"steps": args.steps, "batch": args.batch, "learning_rate": args.lr, "rank": args.rank,
             "alpha": args.alpha, "w_min": args.w_min, "w_max": args.w_max, "ema_decay": args.ema_decay,
             "loss": args.loss, "seed": args.seed, "checkpoint_every": args.checkpoint_every,
             "optimizer": args.optimizer}
    config = DistillConfig(**{k: v for k, v in given.items() if v is not None})
    if config.checkpoint_every < 1 or args.accumulate < 1:
        print("error: --checkpoint-every and --accumulate must be at least 1", file=sys.stderr)
        return 2
    try:
        config.check()
        path = _distill_checkpoint(args, config) if args.checkpoint else _distill_toy(args, config)
    except (DistillError, StandaloneError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if path is not None:  # the main process wrote it
        print(f"wrote {path}")
    return 0


def _distill_toy(args: argparse.Namespace, config: DistillConfig) -> Path | None:
    from lib_lcm.toy.training import distill_toy
    from lib_lcm.training.distill import DistillError

    missing = [name for name in (TEACHER_FILE, AUTOENCODER_FILE) if not (args.teacher / name).is_file()]
    if missing:
        raise DistillError(f"{args.teacher} lacks {', '.join(missing)}; give a folder made by `python -m lib_lcm "
                           "toy-train`, or --checkpoint and --images for a real model.")
    return distill_toy(args.out, config, args.teacher, resume=not args.fresh, accumulate=args.accumulate)


def _distill_checkpoint(args: argparse.Namespace, config: DistillConfig) -> Path | None:
    from lib_lcm.training.checkpoint import Data, Hardware, distill_checkpoint
    from lib_lcm.training.data import Keep
    from lib_lcm.training.distill import DistillError

    if args.size <= 0 or args.size % 8:
        raise DistillError(f"--size must be a positive multiple of 8, got {args.size}.")
    if args.stream and args.cache:
        raise DistillError("--stream keeps nothing and --cache keeps every encoding on disk: choose one.")
    keep: Keep = "disk" if args.cache else "none" if args.stream else "memory"
    data = Data(args.images, tuple(args.shards or ()), args.dataset, args.split, args.image_column,
                args.caption_column, keep, args.cache)
    hardware = Hardware(args.device, args.half, args.accumulate, args.gradient_checkpointing)
    return distill_checkpoint(args.checkpoint, data, args.out, config, args.size, hardware, args.config,
                              args.endpoint, resume=not args.fresh)
