"""``python -m lib_lcm distill --checkpoint`` on tiny original-layout SD 1.5 and SDXL single files (CPU).

The same code runs a real checkpoint on a GPU (float16 teacher under autocast); here the point is
the plumbing: images and captions encoded as the pipelines encode them (SDXL with its pooled
embeddings and size ids), a LoRA saved in the published layout that the standalone LoRA path fuses
into the same checkpoint, and clear messages for bad input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from standalone_support import tiny_components, write_checkpoint, write_config_dir

from lib_lcm.cli.main import main
from lib_lcm.rules.architecture import Architecture
from lib_lcm.standalone.lora_fusion import LoraFile, apply_loras, fit, layer_sizes
from lib_lcm.standalone.model_loading import load_pipeline
from lib_lcm.standalone.model_source import inspect_checkpoint
from lib_lcm.training import distill
from lib_lcm.training.checkpoint import captioned_images, prepare

pytestmark = pytest.mark.slow
ARCHITECTURES = {"sd1": Architecture.SD1, "sdxl": Architecture.SDXL}


def _images(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (48 + 8 * i, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        if i:
            (folder / f"{i}.txt").write_text(f"a photo of thing {i}\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def model(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    components = tiny_components(request.param)
    checkpoint = write_checkpoint(root / "tiny.safetensors", components, request.param)
    return request.param, checkpoint, write_config_dir(components, root / "config"), root


def _pipe(checkpoint: Path, config: Path):
    source = inspect_checkpoint(str(checkpoint))
    return load_pipeline(source, torch.float32, config, lambda name: Path(name), Path("/nonexistent")), source


def test_captions_come_from_same_named_text_files(tmp_path):
    items = captioned_images(_images(tmp_path / "data"))
    assert [(p.name, c) for p, c in items] == [("0.png", ""), ("1.png", "a photo of thing 1"),
                                               ("2.png", "a photo of thing 2")]


def test_the_dataset_is_encoded_as_the_pipeline_encodes(model, tmp_path):
    architecture, checkpoint, config, _ = model
    pipe, source = _pipe(checkpoint, config)
    items = captioned_images(_images(tmp_path / "data"))
    prepared = prepare(pipe, items, 64, source.architecture)
    assert prepared.latents.shape == (3, 4, 8, 8)
    with torch.no_grad():
        expected = pipe.encode_prompt(prompt=[c for _, c in items], device="cpu", num_images_per_prompt=1,
                                      do_classifier_free_guidance=True)
    torch.testing.assert_close(prepared.cond, expected[0])
    torch.testing.assert_close(prepared.uncond, expected[1])
    if architecture == "sdxl":
        torch.testing.assert_close(prepared.cond_added["text_embeds"], expected[2])
        assert prepared.cond_added["time_ids"][0].tolist() == [64, 64, 0, 0, 64, 64]
    else:
        assert prepared.cond_added is None


def test_distill_command_makes_a_lora_the_standalone_path_fuses(model, tmp_path, capsys):
    architecture, checkpoint, config, root = model
    out = tmp_path / "out"
    args = ["distill", "--checkpoint", str(checkpoint), "--images", str(_images(root / "data")), "--out", str(out),
            "--config", str(config), "--size", "64", "--steps", "2", "--batch", "2", "--rank", "2", "--alpha", "2"]
    assert main(args) == 0
    path = out / f"lcm-lora-{ARCHITECTURES[architecture].value}-distilled.safetensors"
    assert f"wrote {path}" in capsys.readouterr().out
    lora = load_file(str(path))
    assert all(k.startswith("lora_unet_") for k in lora)
    assert any(float(v.abs().max()) > 0 for k, v in lora.items() if k.endswith("lora_up.weight"))  # it trained
    pipe, source = _pipe(checkpoint, config)
    result = fit(lora, layer_sizes(pipe))
    assert result.matched == len(lora) // 3 and not result.mismatched and not result.missing
    before = pipe.unet.mid_block.resnets[0].conv1.weight.clone()
    apply_loras(pipe, [LoraFile(path, 1.0, "acceleration")], source.architecture)
    assert not torch.equal(before, pipe.unet.mid_block.resnets[0].conv1.weight)
    assert (out / distill.STATE_FILE).is_file()


def test_bad_input_gets_one_clear_line(model, tmp_path, capsys):
    _, checkpoint, config, _ = model
    base = ["distill", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--config", str(config)]
    assert main(base) == 2
    assert "--checkpoint needs --images" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*base, "--images", str(tmp_path / "empty")]) == 2
    assert "holds no images" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    assert main([*base, "--images", str(broken), "--size", "64", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "x.png is not a readable image" in err and "Traceback" not in err
    assert main([*base, "--images", str(broken), "--size", "60"]) == 2
    assert "multiple of 8" in capsys.readouterr().err
