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
from lib_lcm.training.data import Encoder, ImageFolder

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
    folder = ImageFolder(_images(tmp_path / "data"))
    assert [p.name for p in folder.images] == ["0.png", "1.png", "2.png"]
    assert [folder.load(i)[1] for i in range(3)] == ["", "a photo of thing 1", "a photo of thing 2"]
    assert folder.load(1)[0].size == (64, 56) and folder.load(1)[0].mode == "RGB"


def test_the_dataset_is_encoded_as_the_pipeline_encodes(model, tmp_path):
    architecture, checkpoint, config, _ = model
    pipe, source = _pipe(checkpoint, config)
    folder = ImageFolder(_images(tmp_path / "data"))
    pairs = [folder.load(i) for i in range(3)]
    encoder = Encoder(pipe, 64, source.architecture)
    batch = encoder.batch(encoder.encode(pairs))
    assert batch.latents.shape == (3, 4, 8, 8)
    with torch.no_grad():
        expected = pipe.encode_prompt(prompt=[c for _, c in pairs], device="cpu", num_images_per_prompt=1,
                                      do_classifier_free_guidance=True)
        vae = pipe.vae.encode(_pixels(pairs[0][0], 64)).latent_dist.mean * pipe.vae.config.scaling_factor
    torch.testing.assert_close(batch.latents[:1], vae)
    torch.testing.assert_close(batch.cond, expected[0])
    torch.testing.assert_close(batch.uncond, expected[1])  # SDXL: zeros, as the pipeline's empty prompt
    if architecture == "sdxl":
        torch.testing.assert_close(batch.cond_added["text_embeds"], expected[2])
        torch.testing.assert_close(batch.uncond_added["text_embeds"], expected[3])
        assert batch.cond_added["time_ids"][0].tolist() == [64, 64, 0, 0, 64, 64]
    else:
        assert batch.cond_added is None


def _pixels(image, size):
    """The centre crop and resize, done here with numpy as a second opinion."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(square)).permute(2, 0, 1).float().div(127.5).sub(1).unsqueeze(0)


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
    assert "--checkpoint needs training data: --images, --shards or --dataset" in capsys.readouterr().err
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


# ---------------------------------------------------------------- other sources, caching, shares

def _shards(folder: Path, images: Path) -> list[str]:
    """The images as two webdataset shards: KEY.png and KEY.txt side by side."""
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    pngs = sorted(images.glob("*.png"))
    for number, part in enumerate((pngs[:2], pngs[2:])):
        with tarfile.open(folder / f"shard-{number}.tar", "w") as tar:
            for png in part:
                tar.add(png, arcname=f"sample{png.stem}.png")
                if png.with_suffix(".txt").exists():
                    tar.add(png.with_suffix(".txt"), arcname=f"sample{png.stem}.txt")
    return [str(folder / "shard-*.tar")]


def _dataset(folder: Path, images: Path) -> Path:
    import datasets

    folder_samples = ImageFolder(images)
    rows = [folder_samples.load(i) for i in range(len(folder_samples))]
    features = datasets.Features({"img": datasets.Image(), "caption": datasets.Value("string")})
    columns = {"img": [image for image, _ in rows], "caption": [c for _, c in rows]}
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(folder))
    return folder


def test_shards_and_datasets_hold_the_same_samples_as_the_folder(tmp_path):
    from lib_lcm.training.data import HubDataset, TarShards

    images = _images(tmp_path / "data")
    folder = ImageFolder(images)
    for other in (TarShards(_shards(tmp_path / "shards", images)),
                  HubDataset(str(_dataset(tmp_path / "ds", images)), image_column="img", caption_column="caption")):
        assert len(other) == len(folder)
        for i in range(len(folder)):
            (a, caption_a), (b, caption_b) = folder.load(i), other.load(i)
            assert caption_a == caption_b and np.array_equal(np.array(a), np.array(b))


@pytest.mark.parametrize("source", ["shards", "dataset"])
def test_distill_from_shards_or_a_dataset(model, tmp_path, capsys, source):
    architecture, checkpoint, config, root = model
    images = _images(root / "data")
    data = (["--shards", *_shards(tmp_path / "shards", images)] if source == "shards" else
            ["--dataset", str(_dataset(tmp_path / "ds", images)), "--image-column", "img", "--caption-column",
             "caption"])
    out = tmp_path / "out"
    assert main(["distill", "--checkpoint", str(checkpoint), *data, "--out", str(out), "--config", str(config),
                 "--size", "64", "--steps", "2", "--batch", "2", "--rank", "2", "--alpha", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (out / f"lcm-lora-{ARCHITECTURES[architecture].value}-distilled.safetensors").is_file()


def test_a_cache_encodes_once_and_gives_what_memory_gives(model, tmp_path, monkeypatch):
    """--cache: every sample is encoded once into the folder; a second run reads it and encodes nothing."""
    from lib_lcm.training import data as data_module

    architecture, checkpoint, config, root = model
    images = _images(root / "data")
    encoded = []
    real = data_module.Encoder.encode
    monkeypatch.setattr(data_module.Encoder, "encode", lambda self, pairs: encoded.append(len(pairs)) or
                        real(self, pairs))
    common = ["distill", "--checkpoint", str(checkpoint), "--images", str(images), "--config", str(config),
              "--size", "64", "--steps", "3", "--batch", "2", "--rank", "2", "--alpha", "2", "--ema-decay", "0"]
    assert main([*common, "--out", str(tmp_path / "memory")]) == 0
    in_memory = sum(encoded)
    encoded.clear()
    assert main([*common, "--out", str(tmp_path / "cached"), "--cache", str(tmp_path / "cache")]) == 0
    assert sum(encoded) == 3 == in_memory  # each of the 3 images once, over 3 steps of 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "00000000.safetensors", "00000001.safetensors", "00000002.safetensors", "manifest.json"]
    encoded.clear()
    assert main([*common, "--out", str(tmp_path / "again"), "--cache", str(tmp_path / "cache")]) == 0
    assert encoded == []
    name = f"lcm-lora-{ARCHITECTURES[architecture].value}-distilled.safetensors"
    memory = load_file(str(tmp_path / "memory" / name))
    for run in ("cached", "again"):  # the same within float noise (samples batched otherwise when encoded)
        other = load_file(str(tmp_path / run / name))
        assert other.keys() == memory.keys()
        for key, value in memory.items():
            torch.testing.assert_close(other[key].float(), value.float(), atol=1e-4, rtol=0)


def test_a_cache_of_other_samples_is_refused(model, tmp_path, capsys):
    _, checkpoint, config, root = model
    cache = tmp_path / "cache"
    common = ["distill", "--checkpoint", str(checkpoint), "--config", str(config), "--size", "64", "--steps", "1",
              "--batch", "1", "--rank", "2", "--cache", str(cache)]
    assert main([*common, "--images", str(_images(root / "data")), "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main([*common, "--images", str(_images(tmp_path / "other", 2)), "--out", str(tmp_path / "b")]) == 2
    assert "Use another --cache folder" in capsys.readouterr().err


def test_stream_encodes_every_time_and_keeps_nothing(model, tmp_path, monkeypatch):
    from lib_lcm.training import data as data_module

    _, checkpoint, config, root = model
    encoded = []
    real = data_module.Encoder.encode
    monkeypatch.setattr(data_module.Encoder, "encode", lambda self, pairs: encoded.append(len(pairs)) or
                        real(self, pairs))
    assert main(["distill", "--checkpoint", str(checkpoint), "--images", str(_images(root / "data")), "--config",
                 str(config), "--size", "64", "--steps", "3", "--batch", "2", "--rank", "2", "--stream",
                 "--out", str(tmp_path / "out")]) == 0
    # every step encodes what it draws (a sample drawn twice into one batch is encoded once for it); with the
    # default memory the 3 images would be encoded 3 times in all
    assert len(encoded) == 3 and sum(encoded) >= 5


def test_shares_split_the_samples_between_processes_and_reshuffle_each_pass():
    from lib_lcm.training.data import Share

    shares = [Share(10, rank, 3, seed=1) for rank in range(3)]
    assert sorted(i for share in shares for i in share.mine) == list(range(10))
    first = shares[0].indices(0, 4)  # process 0 owns 0, 3, 6, 9: one pass is a permutation of them
    assert sorted(first) == [0, 3, 6, 9]
    second = shares[0].indices(4, 4)
    assert sorted(second) == [0, 3, 6, 9] and second != first
    assert shares[0].indices(2, 4) == first[2:] + second[:2]  # a position continues the same order
