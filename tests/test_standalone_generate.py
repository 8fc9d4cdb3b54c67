"""``python -m lib_lcm generate`` and the Python API on tiny original-layout checkpoints, on the CPU.

The oracle is diffusers by hand: the same components (a copy of what the checkpoint was written
from), the LoRAs folded in by the formula W += w * alpha/rank * up @ down, LCMScheduler or
TCDScheduler, the same seed. Images are compared as saved (uint8, at most 1 level apart: the two
sides differ by ~1e-6 in float), the weights exactly.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from infotext_reader import parse_parameters
from PIL import Image
from safetensors.torch import save_file
from standalone_support import (
    TEXT_TARGETS,
    kohya_lora,
    merge_by_formula,
    pipeline_of,
    tiny_components,
    write_checkpoint,
    write_config_dir,
    write_tokenizer,
)

from lib_lcm.cli.main import main
from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.parameters_text import PNG_KEY
from lib_lcm.standalone.lora_fusion import LoraFile
from lib_lcm.standalone.pipeline import Job, Options, ReadyPipeline, build_pipeline

pytestmark = pytest.mark.slow
ARCHITECTURES = {"sd1": Architecture.SD1, "sdxl": Architecture.SDXL, "ssd-1b": Architecture.SSD1B}
PROMPT = "a cat in a hat"


@dataclass
class Model:
    architecture: str
    components: dict[str, Any]
    checkpoint: Path
    config: Path
    lcm: dict[str, torch.Tensor]  # the acceleration LoRA, as written into the Lora folder


@dataclass
class World:
    root: Path
    lora_dir: Path
    tokenizer: Path
    models: dict[str, Model]
    style: dict[str, torch.Tensor]  # an SD 1.5 style LoRA touching the UNet and the text encoder
    style_path: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("standalone")
    lora_dir = root / "Lora"
    lora_dir.mkdir()
    models = {}
    for seed, architecture in enumerate(ARCHITECTURES):
        components = tiny_components(architecture, seed=seed)
        checkpoint = write_checkpoint(root / f"tiny-{architecture}.safetensors", components, architecture)
        lcm = kohya_lora(components["unet"], seed=10 + seed)
        entry = catalog.for_architecture(ARCHITECTURES[architecture])
        save_file(lcm, str(lora_dir / entry.local_filename))  # all three in one folder: each model picks its own
        models[architecture] = Model(architecture, components, checkpoint,
                                     write_config_dir(components, root / f"config-{architecture}"), lcm)
    sd1 = models["sd1"].components
    style = {**kohya_lora(sd1["unet"], rank=2, seed=20, targets=("to_k", "to_v", "ff.net.2")),
             **kohya_lora(sd1["text_encoder"], rank=2, seed=21, targets=TEXT_TARGETS, prefix="lora_te_")}
    style_path = root / "watercolor.safetensors"
    save_file(style, str(style_path))
    return World(root, lora_dir, write_tokenizer(root / "tokenizer"), models, style, style_path)


@pytest.fixture(scope="module")
def sd1_ready(world: World) -> ReadyPipeline:
    model = world.models["sd1"]
    return build_pipeline(str(model.checkpoint), Options(lora_dir=world.lora_dir, config=model.config,
                                                         styles=(LoraFile(world.style_path, 0.8),)))


def oracle(world: World, architecture: str, loras: list[tuple[dict, float]], scheduler: Any) -> Any:
    """diffusers by hand: fresh copies of the source components with the LoRAs merged by the formula."""
    components = copy.deepcopy(world.models[architecture].components)
    merge_by_formula(components["unet"], loras)
    merge_by_formula(components["text_encoder"], loras, prefix="lora_te_")
    pipe = pipeline_of(components, world.tokenizer, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def by_hand(pipe: Any, seed: int, **kwargs: Any) -> Image.Image:
    return pipe(prompt=PROMPT, generator=torch.Generator().manual_seed(seed), **kwargs).images[0]


def assert_same_image(ours: Image.Image, theirs: Image.Image) -> None:
    a, b = np.asarray(ours, dtype=np.int16), np.asarray(theirs, dtype=np.int16)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 1, np.abs(a - b).max()


def _data_sha256(path: Path) -> str:
    """kohya's "addnet" hash, which A1111 writes for LoRAs: sha256 of what follows the header."""
    import hashlib
    import struct

    raw = path.read_bytes()
    return hashlib.sha256(raw[8 + struct.unpack("<Q", raw[:8])[0]:]).hexdigest()


def differs(a: Image.Image, b: Image.Image) -> bool:
    return np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max() > 8


# ---- loading -------------------------------------------------------------------------------------

def test_single_file_loads_every_weight_and_fuses_the_loras_by_the_formula(world: World,
                                                                           sd1_ready: ReadyPipeline) -> None:
    source = world.models["sd1"].components
    assert sd1_ready.source.architecture is Architecture.SD1
    assert sd1_ready.acceleration.path == world.lora_dir / "lcm-lora-sdv1-5.safetensors"
    for name, tensor in source["vae"].state_dict().items():
        assert torch.equal(sd1_ready.pipe.vae.state_dict()[name], tensor), name
    expected = copy.deepcopy(source)
    merge_by_formula(expected["unet"], [(world.models["sd1"].lcm, 1.0), (world.style, 0.8)])
    merge_by_formula(expected["text_encoder"], [(world.style, 0.8)], prefix="lora_te_")
    for part in ("unet", "text_encoder"):
        ours = getattr(sd1_ready.pipe, part).state_dict()
        assert set(ours) == set(expected[part].state_dict())  # adapters unloaded: plain modules again
        for name, tensor in expected[part].state_dict().items():
            torch.testing.assert_close(ours[name], tensor, rtol=0, atol=1e-6, msg=name)
    changed = [n for n, t in source["text_encoder"].state_dict().items()
               if not torch.equal(t, sd1_ready.pipe.text_encoder.state_dict()[n])]
    assert changed, "the style LoRA's text-encoder part was not applied"


@pytest.mark.parametrize("architecture", ["sdxl", "ssd-1b"])
def test_sdxl_and_ssd1b_files_pick_their_own_lora_and_match_diffusers_by_hand(world: World,
                                                                               architecture: str) -> None:
    from diffusers import LCMScheduler

    model = world.models[architecture]
    ready = build_pipeline(str(model.checkpoint), Options(lora_dir=world.lora_dir, config=model.config))
    entry = catalog.for_architecture(ARCHITECTURES[architecture])
    assert ready.source.architecture is ARCHITECTURES[architecture]
    assert ready.acceleration.path.name == entry.local_filename
    for part in ("text_encoder", "text_encoder_2", "vae"):
        for name, tensor in model.components[part].state_dict().items():
            assert torch.equal(getattr(ready.pipe, part).state_dict()[name], tensor), (part, name)
    [ours] = ready.generate(Job(PROMPT, steps=4, seed=3))
    pipe = oracle(world, architecture, [(model.lcm, 1.0)], LCMScheduler.from_config(ready.pipe.scheduler.config))
    theirs = by_hand(pipe, 3, num_inference_steps=4, guidance_scale=1.0, height=64, width=64)
    assert_same_image(ours.image, theirs)
    assert parse_parameters(ours.parameters)["LCM-LoRA"] == entry.local_name
    [img2img] = ready.generate(Job(PROMPT, steps=4, seed=3, init_image=ours.image, strength=0.5))
    assert img2img.unet_calls == 2 and differs(img2img.image, ours.image)  # the XL img2img pipeline, 2 of 4 steps


# ---- generation against the oracle ---------------------------------------------------------------

def test_cli_txt2img_writes_pngs_whose_infotext_parses_back(world: World, sd1_ready: ReadyPipeline,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from diffusers import LCMScheduler

    model, out = world.models["sd1"], world.root / "out-cli"
    status = main(["generate", "--checkpoint", str(model.checkpoint), "--config", str(model.config),
                   "--lora-dir", str(world.lora_dir), "--lora", f"{world.style_path}:0.8", "--prompt", PROMPT,
                   "--negative", "blurry", "--steps", "4", "--cfg", "1.5", "--seed", "42", "--size", "64x64",
                   "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    [written] = [Path(line) for line in captured.out.splitlines()]
    assert written == out / "00000-42.png"
    with Image.open(written) as png:
        params = parse_parameters(png.info[PNG_KEY])
        image = png.convert("RGB")
    assert params["Prompt"] == f"{PROMPT} <lora:watercolor:0.8> <lora:lcm-lora-sdv1-5:1>"
    assert params["Negative prompt"] == "blurry"
    assert {k: params[k] for k in ("Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model")} == {
        "Steps": "4", "Sampler": "LCM", "Schedule type": "SGM Uniform", "CFG scale": "1.5", "Seed": "42",
        "Size": "64x64", "Model": "tiny-sd1"}
    assert (params["LCM-LoRA"], params["LCM-LoRA weight"], params["LCM-LoRA preset"]) == (
        "lcm-lora-sdv1-5", "1", "LCM-LoRA")
    assert params["LCM-LoRA timesteps"] == "999,759,499,259"  # LCMScheduler's 4 of its 50-step grid
    lcm_file = world.lora_dir / "lcm-lora-sdv1-5.safetensors"
    style_hash, lcm_hash = (_data_sha256(p)[:12] for p in (world.style_path, lcm_file))
    assert params["Lora hashes"] == f"watercolor: {style_hash}, lcm-lora-sdv1-5: {lcm_hash}"
    pipe = oracle(world, "sd1", [(model.lcm, 1.0), (world.style, 0.8)],
                  LCMScheduler.from_config(sd1_ready.pipe.scheduler.config))
    theirs = by_hand(pipe, 42, negative_prompt="blurry", num_inference_steps=4, guidance_scale=1.5, height=64,
                     width=64)
    assert_same_image(image, theirs)
    assert differs(image, by_hand(pipe, 43, negative_prompt="blurry", num_inference_steps=4, guidance_scale=1.5,
                                  height=64, width=64))


def test_tcd_runs_diffusers_tcd_with_its_gamma(world: World) -> None:
    from diffusers import TCDScheduler

    model = world.models["sd1"]
    ready = build_pipeline(str(model.checkpoint), Options(lora_dir=world.lora_dir, config=model.config, sampler="tcd",
                                                          tcd_gamma=0.3))
    [ours] = ready.generate(Job(PROMPT, steps=4, seed=5))
    pipe = oracle(world, "sd1", [(model.lcm, 1.0)], TCDScheduler.from_config(ready.pipe.scheduler.config))
    assert_same_image(ours.image, by_hand(pipe, 5, num_inference_steps=4, guidance_scale=1.0, height=64, width=64,
                                          eta=0.3))
    assert differs(ours.image, by_hand(pipe, 5, num_inference_steps=4, guidance_scale=1.0, height=64, width=64,
                                       eta=0.0))  # gamma is really passed (the pipelines default eta to 0)
    params = parse_parameters(ours.parameters)
    assert (params["Sampler"], params["TCD gamma"]) == ("TCD", "0.3")


def test_img2img_and_inpaint_match_diffusers_by_hand(world: World, sd1_ready: ReadyPipeline) -> None:
    from diffusers import LCMScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

    rng = np.random.default_rng(0)
    init = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = Image.fromarray(np.where(np.arange(64)[None, :] < 32, 255, 0).repeat(64, 0).astype(np.uint8))
    model = world.models["sd1"]
    base = oracle(world, "sd1", [(model.lcm, 1.0), (world.style, 0.8)],
                  LCMScheduler.from_config(sd1_ready.pipe.scheduler.config))
    [img2img] = sd1_ready.generate(Job(PROMPT, steps=4, seed=7, init_image=init, strength=0.5))
    hand = StableDiffusionImg2ImgPipeline(**base.components)
    assert_same_image(img2img.image, by_hand(hand, 7, image=init, strength=0.5, num_inference_steps=4,
                                             guidance_scale=1.0))
    params = parse_parameters(img2img.parameters)
    assert (params["Denoising strength"], params["LCM-LoRA steps run"]) == ("0.5", "2")
    [inpaint] = sd1_ready.generate(Job(PROMPT, steps=4, seed=7, init_image=init, mask=mask, strength=0.75))
    hand = StableDiffusionInpaintPipeline(**base.components)
    assert_same_image(inpaint.image, by_hand(hand, 7, image=init, mask_image=mask.convert("L"), strength=0.75,
                                             num_inference_steps=4, guidance_scale=1.0, height=64, width=64))


def test_batch_image_i_is_the_single_image_of_seed_plus_i(sd1_ready: ReadyPipeline) -> None:
    batch = sd1_ready.generate(Job(PROMPT, steps=4, seed=100, batch=2))
    single = sd1_ready.generate(Job(PROMPT, steps=4, seed=101))[0]
    assert [g.seed for g in batch] == [100, 101]
    assert_same_image(batch[1].image, single.image)
    assert parse_parameters(batch[1].parameters)["Seed"] == "101"
    assert batch[0].unet_calls == 4  # CFG 1: one UNet call per step for the whole batch
    params = parse_parameters(batch[0].parameters)
    assert (params["CFG scale"], params["LCM-LoRA uncond"]) == ("1.0", "skipped at CFG 1")  # as the WebUI writes


def test_steps_and_cfg_out_of_range_are_clamped_and_said(world: World, sd1_ready: ReadyPipeline) -> None:
    said: list[str] = []
    [result] = sd1_ready.generate(Job(PROMPT, negative_prompt="blurry", steps=30, cfg=7.0, seed=1), echo=said.append)
    params = parse_parameters(result.parameters)
    assert (params["Steps"], params["CFG scale"]) == ("8", "2.5")
    assert "LCM-LoRA uncond" not in params
    assert params["LCM-LoRA clamped"] == "steps 30 to 8; CFG 7 to 2.5"
    assert said == ["Clamped to the LCM-LoRA range: steps 30 to 8; CFG 7 to 2.5."]
    assert result.unet_calls == 8


def test_pngs_never_overwrite(sd1_ready: ReadyPipeline, tmp_path: Path) -> None:
    (tmp_path / "00000-9.png").write_bytes(b"the user's file")
    [result] = sd1_ready.generate(Job(PROMPT, steps=2, seed=9))
    assert result.save(tmp_path) == tmp_path / "00001-9.png"
    assert (tmp_path / "00000-9.png").read_bytes() == b"the user's file"


def test_a_diffusers_folder_loads_offline(world: World) -> None:
    folder = world.root / "diffusers-sd1"
    pipeline_of(world.models["sd1"].components, world.tokenizer).save_pretrained(str(folder))
    ready = build_pipeline(str(folder), Options(lora_dir=world.lora_dir))
    assert (ready.source.kind, ready.source.architecture) == ("folder", Architecture.SD1)
    [result] = ready.generate(Job(PROMPT, steps=2, seed=1))
    assert parse_parameters(result.parameters)["Model"] == "diffusers-sd1"


# ---- messages, never tracebacks ------------------------------------------------------------------

def run_cli(world: World, *args: str, architecture: str = "sd1", lora_dir: Path | None = None) -> tuple[int, str]:
    model = world.models[architecture]
    argv = ["generate", "--checkpoint", str(model.checkpoint), "--config", str(model.config), "--lora-dir",
            str(lora_dir or world.lora_dir), "--prompt", PROMPT, "--out", str(world.root / "out-errors"), *args]
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    return status, err.getvalue()


@pytest.mark.parametrize(("args", "message"), [
    (("--init-image", "IMG", "--strength", "0.2"), "runs no step at all; raise --strength to at least 0.25"),
    (("--mask", "IMG"), "--mask needs --init-image"),
    (("--init-image", "missing.png"), "--init-image missing.png: no such file"),
    (("--lora", "absent.safetensors:0.8"), "absent.safetensors: no such LoRA file"),
    (("--size", "60x64"), "multiples of 8"),
    (("--tcd-gamma", "2"), "--tcd-gamma 2.0: choose a value from 0 to 1"),
])
def test_bad_input_gets_one_line_and_status_2(world: World, args: tuple[str, ...], message: str) -> None:
    image = world.root / "init.png"
    Image.new("RGB", (64, 64), "gray").save(image)
    status, err = run_cli(world, *[str(image) if a == "IMG" else a for a in args])
    assert status == 2
    assert message in err
    assert "Traceback" not in err


def test_a_lora_of_another_architecture_is_refused(world: World) -> None:
    """The tiny SD 1.5 style LoRA on the tiny SDXL model: its header says SD 1.5."""
    status, err = run_cli(world, "--lora", f"{world.style_path}:0.8", architecture="sdxl")
    assert status == 2
    assert "watercolor.safetensors is a LoRA for SD 1.5" in err and "the checkpoint is SDXL" in err


def test_a_lora_whose_layers_do_not_fit_is_refused(world: World, tmp_path: Path) -> None:
    """Same names as the SD 1.5 UNet, other widths: only the fit check can tell."""
    wide = tiny_components("sd1", seed=5)["unet"]
    lora = kohya_lora(wide, targets=("to_k",))
    for key in [k for k in lora if k.endswith("lora_down.weight")]:
        lora[key] = torch.zeros(lora[key].shape[0], lora[key].shape[1] * 2)
    save_file(lora, str(tmp_path / "odd.safetensors"))
    status, err = run_cli(world, "--lora", f"{tmp_path / 'odd.safetensors'}:0.8")
    assert status == 2 and "does not fit this SD 1.5 model" in err and "Traceback" not in err


def test_offline_without_the_lora_file(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status, err = run_cli(world, lora_dir=tmp_path / "empty")
    assert status == 2
    assert "lcm-lora-sdv1-5.safetensors is needed for SD 1.5 and could not be downloaded" in err
    assert "Offline mode is on" in err and "--lcm-lora FILE" in err


def test_the_matching_lora_is_downloaded_when_missing(world: World, hub: Any, tmp_path: Path) -> None:
    entry = catalog.for_architecture(Architecture.SD1)
    hub.add(entry.repo_id, entry.repo_file, (world.lora_dir / entry.local_filename).read_bytes())
    lora_dir = tmp_path / "fresh"
    status, err = run_cli(world, "--endpoint", hub.url, "--seed", "1", lora_dir=lora_dir)
    assert status == 0, err
    assert (lora_dir / entry.local_filename).read_bytes() == (world.lora_dir / entry.local_filename).read_bytes()
    assert "downloading it from latent-consistency/lcm-lora-sdv1-5" in err


def test_prompt_tags_of_unloaded_loras_are_removed_and_loaded_ones_kept(sd1_ready: ReadyPipeline) -> None:
    said: list[str] = []
    tagged = sd1_ready.generate(Job(f"{PROMPT} <lora:other:0.5> <lora:watercolor:0.8>", steps=2, seed=4),
                                echo=said.append)[0]
    plain = sd1_ready.generate(Job(PROMPT, steps=2, seed=4))[0]
    assert said[0].startswith("Removed <lora:other:0.5> from the prompt")
    assert parse_parameters(tagged.parameters)["Prompt"] == f"{PROMPT} <lora:watercolor:0.8> <lora:lcm-lora-sdv1-5:1>"
    assert_same_image(tagged.image, plain.image)  # the model never saw tag text
