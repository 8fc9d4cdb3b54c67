"""The standalone path's pieces that need no generation: sources, messages, configs, infotext text."""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import tensors_of, write_layout, write_sparse_safetensors
from infotext_reader import parse_parameters

from lib_lcm.cli.generate import parse_lora, parse_size
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.parameters_text import format_parameters, quote
from lib_lcm.standalone.lora_fusion import Fit, LoraFile, check_lora_file, fit, judge
from lib_lcm.standalone.model_loading import CONFIGS, bundled_config_dir, hub_tokenizer_files
from lib_lcm.standalone.model_source import (
    FOLDER,
    SINGLE_FILE,
    StandaloneError,
    architecture_of_pipeline,
    inspect_checkpoint,
    require_supported,
)


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """HF_HUB_OFFLINE with an empty cache. huggingface_hub caches its HTTP session, which mounts an
    offline adapter when made while offline (huggingface_hub/utils/_http.py): reset it both ways."""
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    reset_sessions()
    yield
    monkeypatch.undo()
    reset_sessions()


# ---- the WebUI's parameters text -----------------------------------------------------------------


def test_parameters_text_round_trips_with_quoting_and_a_multiline_negative() -> None:
    params = {"Steps": 4, "Sampler": "LCM", "CFG scale": "1.5", "Seed": 7, "Size": "512x768",
              "LCM-LoRA clamped": "steps 20 to 8; CFG 7 to 2.5", "Lora hashes": "a: 1, b: 2", "Skipped": None}
    text = format_parameters("a cat, red <lora:lcm-lora-sdv1-5:1>", "blurry\nugly", params)
    assert text.splitlines()[0] == "a cat, red <lora:lcm-lora-sdv1-5:1>"
    assert "Negative prompt: blurry" in text
    assert 'Lora hashes: "a: 1, b: 2"' in text  # commas and colons are JSON-quoted, as the WebUI does
    assert "Skipped" not in text
    parsed = parse_parameters(text)
    assert parsed["Prompt"] == "a cat, red <lora:lcm-lora-sdv1-5:1>"
    assert parsed["Negative prompt"] == "blurry\nugly"
    assert parsed["Lora hashes"] == "a: 1, b: 2"
    assert parsed["LCM-LoRA clamped"] == "steps 20 to 8; CFG 7 to 2.5"
    assert {parsed[k] for k in ("Steps", "Seed", "Size")} == {"4", "7", "512x768"}


def test_a_last_line_with_fewer_than_three_pairs_is_prompt_text() -> None:
    parsed = parse_parameters("portrait\nstyle: oil, light: warm")
    assert parsed["Prompt"] == "portrait\nstyle: oil, light: warm"
    assert quote("plain") == "plain"


# ---- command-line values -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "path", "weight"), [
    ("style.safetensors:0.6", "style.safetensors", 0.6),
    ("style.safetensors", "style.safetensors", 0.8),  # the paper's lambda 1
    ("C:\\loras\\style.safetensors", "C:\\loras\\style.safetensors", 0.8),  # a drive letter is not a weight
    ("C:\\loras\\style.safetensors:1", "C:\\loras\\style.safetensors", 1.0),
])
def test_lora_arguments(text: str, path: str, weight: float) -> None:
    assert parse_lora(text) == LoraFile(Path(path), weight)


@pytest.mark.parametrize(("text", "message"), [("s.safetensors:heavy", "must be a number"),
                                               ("s.safetensors:9", "outside -4..4")])
def test_bad_lora_arguments_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(StandaloneError, match=message):
        parse_lora(text)


def test_size_argument() -> None:
    assert parse_size("512x768") == (512, 768)
    with pytest.raises(StandaloneError, match="WIDTHxHEIGHT"):
        parse_size("512")


# ---- what --checkpoint names ---------------------------------------------------------------------

def test_pickles_are_refused_before_reading(tmp_path: Path) -> None:
    ckpt = tmp_path / "v1-5-pruned.ckpt"
    ckpt.write_bytes(b"not even opened")
    with pytest.raises(StandaloneError, match=r"pickle \(\.ckpt\).*refused"):
        inspect_checkpoint(str(ckpt))


def test_missing_file_says_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(StandaloneError, match=r"no such file or folder.*model_index.json"):
        inspect_checkpoint(str(tmp_path / "nothing.safetensors"))


def test_real_sd15_and_sdxl_layouts_are_recognised(tmp_path: Path) -> None:
    sd15 = inspect_checkpoint(str(write_layout(tmp_path / "v1-5.safetensors", "checkpoint-sd15")))
    sdxl = inspect_checkpoint(str(write_layout(tmp_path / "xl.safetensors", "checkpoint-sdxl")))
    assert (sd15.kind, sd15.architecture, sd15.name) == (SINGLE_FILE, Architecture.SD1, "v1-5")
    assert sdxl.architecture is Architecture.SDXL
    assert require_supported(sd15) is sd15


@pytest.mark.parametrize(("keys", "label"), [
    ("sd2", "SD 2.x"),
    ({"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": [24, 8]}, "SD3"),
    ({"double_blocks.0.img_attn.qkv.weight": [24, 8], "model.diffusion_model.x": [1]}, "Flux"),
])
def test_unsupported_architectures_are_named(tmp_path: Path, keys: object, label: str) -> None:
    path = tmp_path / "model.safetensors"
    if keys == "sd2":
        write_layout(path, "checkpoint-sd2")
    else:
        write_sparse_safetensors(path, {k: {"shape": s, "dtype": "F16"} for k, s in keys.items()})
    with pytest.raises(StandaloneError, match=f"is {label} .*SD 1.5, SDXL and SSD-1B only"):
        require_supported(inspect_checkpoint(str(path)))


def test_a_lora_passed_as_checkpoint_is_pointed_at_lora(tmp_path: Path) -> None:
    lora = write_layout(tmp_path / "lcm.safetensors", "lcm-lora-sdv1-5")
    with pytest.raises(StandaloneError, match="is a LoRA, not a checkpoint; pass it with --lora"):
        inspect_checkpoint(str(lora))


def test_unknown_architecture(tmp_path: Path) -> None:
    path = write_sparse_safetensors(tmp_path / "odd.safetensors",
                                    {"model.diffusion_model.conv_in.weight": {"shape": [8, 4, 3, 3], "dtype": "F16"}})
    with pytest.raises(StandaloneError, match="could not tell its architecture"):
        require_supported(inspect_checkpoint(str(path)))


def test_folder_without_model_index(tmp_path: Path) -> None:
    with pytest.raises(StandaloneError, match=r"without model_index.json"):
        inspect_checkpoint(str(tmp_path))


@pytest.mark.parametrize(("name", "architecture"), [("sd15", Architecture.SD1), ("sdxl", Architecture.SDXL),
                                                    ("ssd-1b", Architecture.SSD1B)])
def test_shipped_configs_are_detected_as_their_architecture(tmp_path: Path, name: str,
                                                            architecture: Architecture) -> None:
    folder = tmp_path / name
    (folder / "unet").mkdir(parents=True)
    for file in ("model_index.json", "unet/config.json"):
        (folder / file).write_text((CONFIGS / name / file).read_text())
    source = inspect_checkpoint(str(folder))
    assert (source.kind, source.architecture) == (FOLDER, architecture)


def test_pipeline_classes_without_lcm_lora() -> None:
    assert architecture_of_pipeline({"_class_name": "FluxPipeline"}, None)[0] is Architecture.FLUX
    assert architecture_of_pipeline({"_class_name": "StableDiffusion3Pipeline"}, None)[0] is Architecture.SD3
    refiner = {"cross_attention_dim": 1280, "addition_embed_type": "text_time"}
    assert architecture_of_pipeline({"_class_name": "StableDiffusionXLImg2ImgPipeline"}, refiner)[0] is \
        Architecture.SDXL_REFINER


def test_a_repo_id_offline_and_not_cached_says_so(offline_hub: None) -> None:
    with pytest.raises(StandaloneError, match="not in the Hugging Face cache and the hub is offline"):
        inspect_checkpoint("someone/some-model")


# ---- shipped configs against the real tensor layouts ---------------------------------------------

def _meta_model(cls: type, config_file: Path) -> object:
    import torch

    with torch.device("meta"):
        return cls.from_config(json.loads(config_file.read_text()))


@pytest.mark.parametrize(("config", "layout", "removed"), [
    ("sd15", "checkpoint-sd15", ()), ("sdxl", "checkpoint-sdxl", ()), ("ssd-1b", "checkpoint-sdxl", "ssd")])
def test_shipped_unet_and_vae_configs_match_the_real_layouts_tensor_for_tensor(
        config: str, layout: str, removed: object) -> None:
    """The diffusers models the shipped configs build have exactly the tensors (names and shapes) that
    diffusers' own converter makes of the real single-file layout: a wrong number fails here."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint
    from standalone_support import _SSD_REMOVED

    tensors = tensors_of(layout)
    if removed:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(_SSD_REMOVED)}
    for part, cls, convert, prefix in (("unet", UNet2DConditionModel, convert_ldm_unet_checkpoint,
                                        "model.diffusion_model."),
                                       ("vae", AutoencoderKL, convert_ldm_vae_checkpoint, "first_stage_model.")):
        model = _meta_model(cls, CONFIGS / config / part / "config.json")
        original = {k: torch.empty(v["shape"], device="meta") for k, v in tensors.items() if k.startswith(prefix)}
        converted = {k: tuple(v.shape) for k, v in convert(original, dict(model.config)).items()}
        assert converted == {k: tuple(v.shape) for k, v in model.state_dict().items()}, (config, part)
    if config == "ssd-1b":
        assert sum(1 for _ in model.state_dict()) > 0 and len(converted) == 248  # the VAE
        unet = _meta_model(UNet2DConditionModel, CONFIGS / config / "unet" / "config.json")
        assert len(unet.state_dict()) == 944  # SSD-1B's UNet tensor count (shared/lora-layouts README)


@pytest.mark.parametrize(("config", "layout", "prefix", "layers"), [
    ("sd15", "checkpoint-sd15", "cond_stage_model.transformer.", 12),
    ("sdxl", "checkpoint-sdxl", "conditioner.embedders.0.transformer.", 12)])
def test_shipped_clip_config_matches_the_real_layout(config: str, layout: str, prefix: str, layers: int) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel

    tensors = tensors_of(layout)
    clip = json.loads((CONFIGS / config / "text_encoder" / "config.json").read_text())
    import torch

    with torch.device("meta"):
        model = CLIPTextModel(CLIPTextConfig(**clip))
    expected = {prefix + k: list(v.shape) for k, v in model.state_dict().items()}
    real = {k: v["shape"] for k, v in tensors.items() if k.startswith(prefix) and not k.endswith("position_ids")}
    assert real == expected
    assert clip["num_hidden_layers"] == layers


def test_shipped_open_clip_config_matches_the_sdxl_layout() -> None:
    tensors = tensors_of("checkpoint-sdxl")
    bigg = json.loads((CONFIGS / "sdxl" / "text_encoder_2" / "config.json").read_text())
    prefix = "conditioner.embedders.1.model."
    blocks = {int(k[len(prefix):].split(".")[2]) for k in tensors if k.startswith(prefix + "transformer.resblocks.")}
    assert len(blocks) == bigg["num_hidden_layers"]
    assert tensors[prefix + "token_embedding.weight"]["shape"] == [bigg["vocab_size"], bigg["hidden_size"]]
    assert tensors[prefix + "transformer.resblocks.0.mlp.c_fc.weight"]["shape"] == [bigg["intermediate_size"],
                                                                                    bigg["hidden_size"]]
    assert tensors[prefix + "text_projection"]["shape"] == [bigg["hidden_size"], bigg["projection_dim"]]


# ---- tokenizer files for the shipped configs -----------------------------------------------------

def test_config_folder_gets_tokenizers_from_the_hub_cache(hub: object, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from standalone_support import write_tokenizer
    from transformers import CLIPTokenizer

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    source = write_tokenizer(tmp_path / "tok")
    for name in ("vocab.json", "merges.txt"):
        hub.add("openai/clip-vit-large-patch14", name, (source / name).read_bytes())
    folder = bundled_config_dir(Architecture.SDXL, hub_tokenizer_files(hub.url), tmp_path / "cache")
    first = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
    second = CLIPTokenizer.from_pretrained(str(folder / "tokenizer_2"))
    assert first("a cat").input_ids == second("a cat").input_ids
    assert (first.pad_token, second.pad_token) == ("<|endoftext|>", "!")  # as in SDXL base's two tokenizers
    assert (folder / "unet" / "config.json").read_text() == (CONFIGS / "sdxl" / "unet" / "config.json").read_text()


def test_without_tokenizer_files_offline_the_message_offers_config(offline_hub: None, tmp_path: Path) -> None:
    with pytest.raises(StandaloneError, match=r"offline.*--config"):
        bundled_config_dir(Architecture.SD1, hub_tokenizer_files(), tmp_path / "cache")


# ---- LoRA files against an architecture ----------------------------------------------------------

def test_wrong_architecture_lora_is_refused_from_its_header(tmp_path: Path) -> None:
    lora = write_layout(tmp_path / "lcm-lora-sdv1-5.safetensors", "lcm-lora-sdv1-5")
    with pytest.raises(StandaloneError, match=r"is a LoRA for SD 1.5 .* but the checkpoint is SDXL"):
        check_lora_file(LoraFile(lora, 1.0), Architecture.SDXL)
    check_lora_file(LoraFile(lora, 1.0), Architecture.SD1)


def test_sdxl_lora_is_accepted_on_ssd1b_and_pickled_loras_are_refused(tmp_path: Path) -> None:
    check_lora_file(LoraFile(write_layout(tmp_path / "xl.safetensors", "lcm-lora-sdxl"), 1.0), Architecture.SSD1B)
    with pytest.raises(StandaloneError, match="pickle"):
        check_lora_file(LoraFile(tmp_path / "style.pt", 1.0), Architecture.SD1)
    with pytest.raises(StandaloneError, match="no such LoRA file"):
        check_lora_file(LoraFile(tmp_path / "absent.safetensors", 1.0), Architecture.SD1)
    with pytest.raises(StandaloneError, match="not a LoRA file"):
        check_lora_file(LoraFile(write_layout(tmp_path / "c.safetensors", "checkpoint-sd15"), 1.0), Architecture.SD1)


def test_fit_counts_matching_missing_and_mismatched_layers() -> None:
    class Shape:
        def __init__(self, *shape: int) -> None:
            self.shape = shape

    state = {"lora_unet_a.lora_down.weight": Shape(4, 8), "lora_unet_a.lora_up.weight": Shape(16, 4),
             "lora_unet_b.lora_down.weight": Shape(4, 8), "lora_unet_b.lora_up.weight": Shape(16, 4),
             "lora_unet_c.lora_down.weight": Shape(4, 8, 3, 3), "lora_unet_c.lora_up.weight": Shape(8, 4, 1, 1)}
    result = fit(state, {"lora_unet_a": (8, 16), "lora_unet_c": (8, 32)})
    assert (result.matched, result.missing) == (1, 1)
    assert result.mismatched == ("lora_unet_c: LoRA 8->8, model 8->32",)
    lora = LoraFile(Path("style.safetensors"), 0.8)
    with pytest.raises(StandaloneError, match="1 of its layers have other sizes"):
        judge(lora, result, Architecture.SDXL)
    assert judge(lora, Fit(matched=3, missing=1), Architecture.SD1) == [
        "style.safetensors: 1 of its 4 layers are not in this SD 1.5 model and are skipped."]
    with pytest.raises(StandaloneError, match="none of its 2 layers exist"):
        judge(lora, Fit(missing=2), Architecture.SD1)


def test_generate_arguments_are_registered() -> None:
    from lib_lcm.cli.main import _parser

    args = _parser().parse_args(["generate", "--checkpoint", "m.safetensors", "--prompt", "p", "--lora", "s:0.5",
                                 "--sampler", "tcd", "--size", "64x64"])
    assert isinstance(args, argparse.Namespace)
    assert (args.sampler, args.steps, args.cfg, args.lora, args.size) == ("tcd", 4, 1.0, ["s:0.5"], "64x64")


def test_gpu_when_present_in_fp16_else_cpu_in_fp32() -> None:
    from lib_lcm.standalone.pipeline import device_and_dtype

    assert device_and_dtype(None, cuda_available=True) == ("cuda", "float16")
    assert device_and_dtype(None, cuda_available=False) == ("cpu", "float32")
    assert device_and_dtype("cuda:1", cuda_available=True) == ("cuda:1", "float16")
    assert device_and_dtype("cpu", cuda_available=True) == ("cpu", "float32")


@pytest.mark.parametrize(("error", "says"), [
    ("LocalEntryNotFoundError", "not in the Hugging Face cache"),
    ("GatedRepoError", "is gated"),
    ("RepositoryNotFoundError", "check the repo id"),
    ("EntryNotFoundError", "check the repo id"),
    ("HfHubHTTPError", "could not be fetched (HfHubHTTPError: boom)"),
])
def test_hub_problems_are_told_apart_by_the_hubs_own_classes(error: str, says: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import utils as hub

    from lib_lcm.standalone.model_source import hub_problem

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert says in hub_problem("someone/model", "model_index.json", getattr(hub, error)("boom"))
