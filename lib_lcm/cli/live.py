"""``python -m lib_lcm live``: the live page, where the picture follows the prompt, a sketch or the webcam.

Builds the pipeline for the live step range with adjustable style weights, renders one picture to warm it up,
then serves the page until Ctrl+C. Every problem the user can fix ends in one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable
from typing import Any, TextIO

from lib_lcm.cli.generate import (
    USAGE_ERROR,
    add_model_arguments,
    add_speed_arguments,
    model_options,
    parse_size,
    speed_options,
)
from lib_lcm.live.engine import RenderRefused
from lib_lcm.live.server import DEFAULT_HOST, DEFAULT_PORT
from lib_lcm.rules.catalog import LIVE_STEPS, STYLE_WEIGHT
from lib_lcm.standalone.model_source import StandaloneError

_LOOPBACK = ("127.0.0.1", "localhost")
INTERRUPTED = 130  # the shell's status for Ctrl+C


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, f"a style LoRA and its starting weight (default {STYLE_WEIGHT:g}); the page has a "
                                "slider for each (with --compile it is fused at that weight); repeatable")
    parser.add_argument("--size", help="WxH, multiples of 8 (default: the model's native size)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; the page has no "
                             "login)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    add_speed_arguments(parser)


def run_live(args: argparse.Namespace, err: TextIO | None = None) -> int:
    def say(message: str) -> None:
        print(message, file=err or sys.stderr, flush=True)

    try:
        check_address(args.host, args.port)
    except OSError as error:  # the port is taken, or the host is not this machine's
        say(f"error: cannot listen on {args.host}:{args.port} ({error.strerror or error}); choose another --port "
            "or --host.")
        return USAGE_ERROR
    try:
        server = build_server(args, say)
    except KeyboardInterrupt:  # Ctrl+C during a long model load or download
        return INTERRUPTED
    except (StandaloneError, RenderRefused) as error:
        say(f"error: {error}")
        return USAGE_ERROR
    except OSError as error:  # the port was taken while the model loaded
        say(f"error: cannot listen on {args.host}:{args.port} ({error.strerror or error}); choose another --port.")
        return USAGE_ERROR
    say(f"Live page: {server.url}  (Ctrl+C stops it)")
    if args.host not in _LOOPBACK:
        say(f"Note: listening on {args.host}: anyone who can reach this machine can use the page.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def check_address(host: str, port: int) -> None:
    """Refuse a taken port before the model load (minutes for a large one), not after it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server will
        probe.bind((host, port))


def build_server(args: argparse.Namespace, say: Callable[[str], None]) -> Any:
    """The pipeline, warmed up by one picture, behind a LiveServer that is bound but not yet serving."""
    from lib_lcm.cli.download import progress_bar
    from lib_lcm.cli.generate import quiet_libraries

    size = parse_size(args.size) if args.size else None
    quiet_libraries()  # also: a clear error when torch or diffusers is missing, before they are imported
    options = live_options(args)
    from lib_lcm.live.engine import LiveEngine
    from lib_lcm.live.render import PipelineRenderer
    from lib_lcm.live.server import LiveServer
    from lib_lcm.standalone.pipeline import build_pipeline

    ready = build_pipeline(args.checkpoint, options, echo=say, download_progress=progress_bar("LCM-LoRA"))
    renderer = PipelineRenderer(ready, size)
    engine = LiveEngine(renderer)
    try:
        say(f"First picture ({renderer.width}x{renderer.height}) in {renderer.warm_up(engine):.1f} s")
    except BaseException:
        engine.close(timeout=0)
        raise
    return LiveServer(engine, renderer.page_config(), args.host, args.port)


def live_options(args: argparse.Namespace) -> Any:
    """Options for the live page: LIVE_STEPS pass the plan's clamp; style weights stay adjustable unless compiled."""
    from lib_lcm.rules.choice import Bounds
    from lib_lcm.standalone.pipeline import Options

    # Compiled, the style LoRAs are fused: a compiled UNet would compile again for every new adapter weight.
    return Options(bounds=Bounds(min_steps=LIVE_STEPS.minimum, max_steps=LIVE_STEPS.maximum),
                   adjustable_styles=not args.compile, **model_options(args), **speed_options(args))
