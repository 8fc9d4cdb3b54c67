"""Command line: ``python -m lib_lcm generate|live|demo|toy-train|distill|detect|download|ui``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lib_lcm.cli.download import ALL
from lib_lcm.rules import catalog


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib_lcm", description="LCM-LoRA tools without the WebUI.")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="few-step images from an SD 1.5/SDXL/SSD-1B checkpoint")
    from lib_lcm.cli.generate import add_arguments

    add_arguments(generate)
    live = commands.add_parser("live", help="a local page where the picture follows as you type or draw")
    from lib_lcm.cli.live import add_arguments as add_live_arguments

    add_live_arguments(live)
    demo = commands.add_parser("demo", help="offline showcase: the shipped toy LCM-LoRA against its teacher")
    demo.add_argument("--out", type=Path, default=Path("lcm-demo-out"), help="folder for the grid PNG")
    demo.add_argument("--seeds", type=int, nargs="+", help="noise seeds (toy: 0 1; --pipeline: 1 2 3)")
    demo.add_argument("--count", type=int, default=500, help="toy: images per row and seed")
    demo.add_argument("--lib-lcm-samplers", action="store_true",
                      help="toy: LCM and TCD rows with lib_lcm's own samplers instead of diffusers' schedulers")
    demo.add_argument("--pipeline", action="store_true",
                      help="instead: time a tiny random SD-shaped pipeline (25 DPM-Solver++ steps vs 4 LCM/TCD)")
    demo.add_argument("--size", type=int, default=128, help="--pipeline: image size in pixels (multiple of 8)")
    demo.add_argument("--repeats", type=int, default=3, help="--pipeline: timed passes; the median is reported")
    toy_train = commands.add_parser("toy-train", help="train the toy autoencoder, judge and teacher (digits)")
    from lib_lcm.cli.distill import add_distill_arguments, add_toy_train_arguments

    add_toy_train_arguments(toy_train)
    distill = commands.add_parser("distill", help="latent consistency distillation of an LCM-LoRA (toy teacher)")
    add_distill_arguments(distill)
    detect = commands.add_parser("detect", help="architecture of .safetensors files, from their headers")
    detect.add_argument("files", type=Path, nargs="+")
    fetch = commands.add_parser("download", help="download official acceleration LoRAs into a Lora folder")
    fetch.add_argument("keys", nargs="+", metavar="KEY", help=f"{', '.join(catalog.all_keys())} or {ALL}")
    fetch.add_argument("--dir", type=Path, required=True, help="the Lora folder (stable-diffusion-webui/models/Lora)")
    fetch.add_argument("--name", help="save under this file name (one key only)")
    fetch.add_argument("--endpoint", help="Hugging Face endpoint (default: HF_ENDPOINT or huggingface.co)")
    ui = commands.add_parser("ui", help="the download tab as a standalone page on 127.0.0.1")
    ui.add_argument("--dir", type=Path, required=True, help="the Lora folder")
    ui.add_argument("--port", type=int, default=7861)
    ui.add_argument("--endpoint", help="Hugging Face endpoint (default: HF_ENDPOINT or huggingface.co)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        from lib_lcm.cli.generate import run_generate

        return run_generate(args)
    if args.command == "live":
        from lib_lcm.cli.live import run_live

        return run_live(args)
    if args.command == "demo":
        return _demo(args)
    if args.command in ("toy-train", "distill"):
        from lib_lcm.cli import distill as cli_distill

        return cli_distill.run_toy_train(args) if args.command == "toy-train" else cli_distill.run_distill(args)
    if args.command == "download":
        from lib_lcm.cli.download import run_downloads

        return run_downloads(args.keys, args.dir, args.name, args.endpoint)
    if args.command == "ui":
        from lib_lcm.cli.download import serve_ui

        return serve_ui(args.dir, args.port, args.endpoint)
    return _detect(args.files)


def _demo(args: argparse.Namespace) -> int:
    if args.pipeline:
        if args.size <= 0 or args.size % 8 or args.repeats < 1:
            print("--size must be a positive multiple of 8 and --repeats at least 1", file=sys.stderr)
            return 2
        from lib_lcm.standalone import speed_demo as demo

        demo.main(args.out, args.seeds or [1, 2, 3], args.size, args.repeats)
        return 0
    if args.count < 10:
        print("--count must be at least 10 (one image per digit)", file=sys.stderr)
        return 2
    from lib_lcm.toy import demo as toy_demo

    return toy_demo.main(args.out, args.seeds or [0, 1], args.count, args.lib_lcm_samplers)


def _detect(files: Sequence[Path]) -> int:
    from lib_lcm.lora_files.header import SafetensorsHeaderError, read_header

    status = 0
    for path in files:
        try:
            detection = read_header(path).detect()
        except SafetensorsHeaderError as error:
            print(f"{path}: {error}")
            status = 1
            continue
        print(f"{path}: {detection.architecture.label} {detection.kind} ({detection.evidence})")
    return status


if __name__ == "__main__":
    sys.exit(main())
