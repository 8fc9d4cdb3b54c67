"""A PNG written by ``python -m lib_lcm generate`` (diffusers, no WebUI), read by the real WebUI.

The standalone command promises "the infotext the WebUI would write". Here the WebUI makes the same
request with the accordion on, and its own PNG Info parser (``/sdapi/v1/png-info``, i.e.
``modules/infotext_utils.py`` ``parse_generation_parameters``) reads both texts: every entry they
share must come back equal, and the LoRA tags must be the ones the WebUI itself would put in.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from e2e_support import FORGE_INFOTEXT_API, is_forge
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from lib_lcm.lora_files.header import lora_short_hash
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.parameters_text import PNG_KEY

pytest.importorskip("diffusers")
pytest.importorskip("peft")

PROMPT, SEED, SIZE = "a cat in a hat, oil", 42, 64
# Entries of a standalone image that must read back exactly as in the WebUI's own image ("Size" is split in two
# by the parser).
SHARED = ("Prompt", "Negative prompt", "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size-1", "Size-2",
          "LCM-LoRA", "LCM-LoRA weight", "LCM-LoRA preset", "LCM-LoRA tag", "LCM-LoRA timesteps", "LCM-LoRA uncond",
          "Lora hashes")
CASES = [("1.0", ""), ("1.5", "blurry")]  # CFG 1: no uncond pass, no negative; CFG 1.5 with one


def png_info(api, png: bytes) -> dict:
    encoded = "data:image/png;base64," + base64.b64encode(png).decode()
    return api.post("/sdapi/v1/png-info", {"image": encoded})["parameters"]


def png_with(text: str) -> bytes:
    info = PngInfo()
    info.add_text(PNG_KEY, text)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.fixture(params=CASES, ids=["cfg1", "cfg1.5-negative"])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture
def standalone_png(lora, case: tuple[str, str], tmp_path: Path) -> bytes:
    """A tiny SD 1.5 single file and the WebUI's own LCM-LoRA file, through the generate command."""
    from safetensors.torch import save_file
    from standalone_support import kohya_lora, tiny_components, write_checkpoint, write_config_dir

    from lib_lcm.cli.main import main

    components = tiny_components("sd1")
    checkpoint = write_checkpoint(tmp_path / "tiny.safetensors", components, "sd1")
    lora_dir = tmp_path / "Lora"
    lora_dir.mkdir()
    # The WebUI's file has the real widths; the tiny model needs tiny ones under the same name. Its hash
    # differs, so "Lora hashes" is compared by form, not value (below).
    save_file(kohya_lora(components["unet"]), str(lora_dir / f"{lora.name}.safetensors"))
    out = tmp_path / "out"
    assert main(["generate", "--checkpoint", str(checkpoint), "--config",
                 str(write_config_dir(components, tmp_path / "config")), "--lora-dir", str(lora_dir),
                 "--prompt", PROMPT, "--negative", case[1], "--steps", "4", "--cfg", case[0], "--seed", str(SEED),
                 "--size", f"{SIZE}x{SIZE}", "--out", str(out)]) == 0
    [png] = out.glob("*.png")
    return png.read_bytes()


def test_a_standalone_png_reads_back_like_the_webuis_own(api, model, lora, case: tuple[str, str],
                                                        standalone_png: bytes) -> None:
    if model.architecture is not Architecture.SD1:
        pytest.skip("the standalone image is SD 1.5; load an SD 1.5 checkpoint in the WebUI for this comparison")
    if is_forge(api):
        pytest.skip(FORGE_INFOTEXT_API)
    cfg, negative = float(case[0]), case[1]
    info = api.generate("txt2img", {"prompt": PROMPT, "negative_prompt": negative, "steps": 4, "cfg_scale": cfg,
                                    "seed": SEED, "width": SIZE, "height": SIZE, "sampler_name": "Euler",
                                    "alwayson_scripts": {"LCM-LoRA": {"args": [True, 1.0, 4, cfg]}}})
    webui = png_info(api, png_with(info["infotexts"][0]))
    ours = png_info(api, standalone_png)
    expected = set(SHARED) - ({"Negative prompt"} if not negative else {"LCM-LoRA uncond"})
    assert expected <= set(webui) and expected <= set(ours), expected - set(webui) - set(ours)
    differences = {k: (ours.get(k), webui.get(k)) for k in SHARED if k != "Lora hashes" and ours.get(k) != webui.get(k)}
    assert not differences, differences
    assert ours["Model"] == "tiny" and webui["Model"] != "tiny"
    name, _, short_hash = str(ours["Lora hashes"]).partition(": ")
    assert name == lora.name and len(short_hash) == 12
    if lora.path is not None:  # our hash of the WebUI's own file is the one the WebUI wrote
        assert webui["Lora hashes"] == f"{lora.name}: {lora_short_hash(lora.path)}"
