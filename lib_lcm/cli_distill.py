"""``python -m lib_lcm toy-train`` and ``python -m lib_lcm distill``: re-create the shipped toy weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lib_lcm import toy_digits as toy


def add_toy_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for autoencoder, classifier and teacher")
    parser.add_argument("--steps", type=int, default=2500, help="teacher training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher-only", action="store_true",
                        help="train only the teacher, on the autoencoder already in --out")


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    from lib_lcm.distill import DistillConfig

    d = DistillConfig()
    parser.add_argument("--teacher", type=Path, default=toy.WEIGHTS_DIR,
                        help="folder with the toy teacher and autoencoder (default: the shipped ones)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the LoRA and the resumable state")
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--batch", type=int, default=d.batch)
    parser.add_argument("--lr", type=float, default=d.learning_rate)
    parser.add_argument("--rank", type=int, default=d.rank)
    parser.add_argument("--alpha", type=float, default=d.alpha)
    parser.add_argument("--w-min", type=float, default=d.w_min, help="guidance w of the target: CFG scale = 1 + w")
    parser.add_argument("--w-max", type=float, default=d.w_max)
    parser.add_argument("--ema-decay", type=float, default=d.ema_decay, help="target network EMA; 0: none")
    parser.add_argument("--loss", choices=("huber", "l2"), default=d.loss)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    parser.add_argument("--fresh", action="store_true", help="ignore a saved state in --out instead of resuming")


def run_toy_train(args: argparse.Namespace) -> int:
    from lib_lcm.toy_training import TeacherRecipe, train_all, train_teacher_in

    if args.steps < 1:
        print("error: --steps must be at least 1", file=sys.stderr)
        return 2
    recipe = TeacherRecipe(steps=args.steps)
    if args.teacher_only:
        if not (args.out / toy.AUTOENCODER_FILE).is_file():
            print(f"error: --teacher-only needs {args.out / toy.AUTOENCODER_FILE}; run without it first",
                  file=sys.stderr)
            return 2
        train_teacher_in(args.out, recipe, args.seed)
    else:
        train_all(args.out, recipe, args.seed)
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from lib_lcm.distill import DistillConfig, DistillError
    from lib_lcm.toy_training import distill_toy

    missing = [name for name in (toy.TEACHER_FILE, toy.AUTOENCODER_FILE) if not (args.teacher / name).is_file()]
    if missing:
        print(f"error: {args.teacher} lacks {', '.join(missing)}; give a folder made by `python -m lib_lcm "
              "toy-train`", file=sys.stderr)
        return 2
    config = DistillConfig(steps=args.steps, batch=args.batch, learning_rate=args.lr, rank=args.rank,
                           alpha=args.alpha, w_min=args.w_min, w_max=args.w_max, ema_decay=args.ema_decay,
                           loss=args.loss, seed=args.seed, checkpoint_every=max(1, args.checkpoint_every))
    try:
        config.check()
        path = distill_toy(args.out, config, args.teacher, resume=not args.fresh)
    except DistillError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
