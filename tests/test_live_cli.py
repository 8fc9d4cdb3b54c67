"""``python -m lib_lcm live``'s command line, without a model: its flags reach Options, and every problem
the user can fix is one line on stderr and exit status 2, found before any weight is loaded."""
from __future__ import annotations

import io
import socket

import pytest

from lib_lcm.cli.live import live_options, run_live
from lib_lcm.cli.main import _parser, main
from lib_lcm.rules.catalog import LIVE_STEPS


def args(*extra: str):
    return _parser().parse_args(["live", "--checkpoint", "model.safetensors", *extra])


def run(*extra: str) -> tuple[int, str]:
    err = io.StringIO()
    return run_live(args(*extra), err=err), err.getvalue()


def test_the_flags_reach_the_options():
    options = live_options(args("--lora", "style.safetensors:0.5", "--compile", "--vae", "tiny", "--offload", "model"))
    assert (options.bounds.min_steps, options.bounds.max_steps) == (LIVE_STEPS.minimum, LIVE_STEPS.maximum)
    # compiled: the style LoRAs are fused (no sliders), since a compiled UNet would recompile per weight
    assert options.compile and not options.adjustable_styles
    assert live_options(args("--lora", "style.safetensors:0.5")).adjustable_styles
    assert (options.decoder, options.offload) == ("tiny", "model")
    assert [(lora.path.name, lora.weight) for lora in options.styles] == [("style.safetensors", 0.5)]


def test_the_defaults():
    parsed = args()
    assert (parsed.host, parsed.port, parsed.vae, parsed.offload, parsed.compile) == (
        "127.0.0.1", 7862, "full", "none", False)


@pytest.mark.parametrize(("extra", "words"), [
    ((), "model.safetensors"),
    (("--lora", "style.safetensors:lots"), "must be a number"),
    (("--size", "big"), "WIDTHxHEIGHT"),
])
def test_a_problem_is_one_line_and_exit_2(extra, words):
    status, err = run("--port", "0", *extra)
    assert status == 2 and err.startswith("error: ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_taken_port_is_refused_before_the_model_loads():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status, err = run("--port", str(taken.getsockname()[1]))
    assert status == 2 and "choose another --port" in err and err.count("\n") == 1


def test_live_is_a_command(capsys):
    with pytest.raises(SystemExit):
        main(["live", "--help"])
    help_text = capsys.readouterr().out
    assert all(flag in help_text for flag in ("--checkpoint", "--lora", "--host", "--port", "--vae", "--offload"))


def test_fused_styles_get_no_slider_on_the_page():
    """live --compile fuses the style LoRAs: a slider would recompile the UNet for every weight."""
    from dataclasses import dataclass, field
    from pathlib import Path
    from types import SimpleNamespace

    from lib_lcm.live.render import PipelineRenderer
    from lib_lcm.standalone.lora_fusion import LoraFile
    from lib_lcm.standalone.pipeline import Options

    @dataclass
    class Ready:
        options: Options
        source: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(name="tiny"))
        pipe: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(set_progress_bar_config=lambda **k: None))

        def size_for(self, job):
            return 64, 64

    styles = (LoraFile(Path("ink.safetensors"), 0.8),)
    fused = PipelineRenderer(Ready(Options(styles=styles)))
    adjustable = PipelineRenderer(Ready(Options(styles=styles, adjustable_styles=True)))
    assert fused.page_config().styles == ()
    assert [s.name for s in adjustable.page_config().styles] == ["ink"]
