"""The standalone fast path on the CPU, tiny random models: each part against the eager path.

- the prompt cache encodes a repeated prompt once and changes nothing in the image;
- the tiny decoder (a file in TAESD's diffusers layout, served by the local hub) is downloaded,
  verified, used offline afterwards, and decodes exactly as diffusers' AutoencoderTiny by hand;
- the compiled path (inductor compiles on the CPU too) gives the eager images within float noise and
  compiles nothing new for a new prompt or seed;
- SDXL's VAE, which overflows in float16, decodes from a float32 copy;
- style weights change exactly on a pipeline built with adjustable styles; 1 step passes the live bounds;
- offload asks for a GPU, and refuses to combine with compiling.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from standalone_support import kohya_lora, tiny_components, write_config_dir, write_model_with_lora_dir, write_tokenizer

from lib_lcm.rules import catalog
from lib_lcm.rules.architecture import Architecture
from lib_lcm.rules.choice import Bounds
from lib_lcm.rules.tiny_decoders import tiny_decoder_for
from lib_lcm.standalone import fast_path
from lib_lcm.standalone.lora_fusion import LoraFile
from lib_lcm.standalone.model_source import StandaloneError
from lib_lcm.standalone.pipeline import Job, Options, ReadyPipeline, build_pipeline

pytestmark = pytest.mark.slow
PROMPT = "a cat in a hat"
TAESD = tiny_decoder_for(Architecture.SD1)


@dataclass
class World:
    root: Path
    checkpoint: Path
    config: Path
    lora_dir: Path
    style: Path
    taesd: Path  # a random AutoencoderTiny in TAESD's diffusers layout
    tiny_vae: object


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from diffusers import AutoencoderTiny

    root = tmp_path_factory.mktemp("fast")
    components, checkpoint, lora_dir = write_model_with_lora_dir(root, "sd1", seed=5, lora_seed=11)
    style = root / "ink.safetensors"
    save_file(kohya_lora(components["unet"], rank=2, seed=12, targets=("to_k", "to_v"), scale=0.5), str(style))
    torch.manual_seed(3)
    tiny_vae = AutoencoderTiny().eval()
    taesd = root / "taesd-layout.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_vae.state_dict().items()}, str(taesd))
    write_tokenizer(root / "tokenizer")
    return World(root, checkpoint, write_config_dir(components, root / "config"), lora_dir, style, taesd, tiny_vae)


def build(world: World, **options: object) -> ReadyPipeline:
    return build_pipeline(str(world.checkpoint), Options(lora_dir=world.lora_dir, config=world.config, **options))


@pytest.fixture(scope="module")
def eager(world: World) -> ReadyPipeline:
    return build(world)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def largest_difference(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    return int(np.abs(pixels(a) - pixels(b)).max())


# ---- 1. the prompt cache --------------------------------------------------------------------------

def test_a_repeated_prompt_is_encoded_once_and_a_new_one_again(eager: ReadyPipeline) -> None:
    before = eager.prompts.encodings
    first = eager.generate(Job(PROMPT, seed=1))[0].image
    again = eager.generate(Job(PROMPT, seed=1))[0].image
    assert eager.prompts.encodings == before + 1
    assert largest_difference(first, again) == 0
    eager.generate(Job("a dog", seed=1))
    assert eager.prompts.encodings == before + 2


def test_the_cached_embeddings_are_the_pipelines_own(eager: ReadyPipeline) -> None:
    """With cfg above 1 the negative prompt's embedding is cached too: the image equals the uncached call."""
    [ours] = eager.generate(Job(PROMPT, negative_prompt="blurry", cfg=1.8, seed=4))
    theirs = eager.pipe(prompt=PROMPT, negative_prompt="blurry", guidance_scale=1.8, num_inference_steps=4,
                        generator=[torch.Generator().manual_seed(4)], height=64, width=64).images[0]
    assert largest_difference(ours.image, theirs) == 0


# ---- 2. the tiny decoder --------------------------------------------------------------------------

def test_the_tiny_decoder_is_downloaded_verified_and_decodes_as_diffusers(world: World, eager: ReadyPipeline,
                                                                          hub) -> None:
    hub.add(TAESD.repo_id, TAESD.repo_file, world.taesd)
    folder = world.root / "decoders"
    ready = build(world, decoder="tiny", decoder_dir=folder, endpoint=hub.url)
    assert (folder / "taesd.safetensors").read_bytes() == world.taesd.read_bytes()
    assert type(ready.pipe.vae).__name__ == "AutoencoderTiny"
    [ours] = ready.generate(Job(PROMPT, seed=2))
    latents = eager.pipe(prompt=PROMPT, num_inference_steps=4, guidance_scale=1.0, height=64, width=64,
                         generator=[torch.Generator().manual_seed(2)], output_type="latent").images
    with torch.no_grad():
        decoded = world.tiny_vae.decode(latents).sample  # TAESD's scaling factor is 1
    theirs = eager.pipe.image_processor.postprocess(decoded, output_type="pil")[0]
    assert largest_difference(ours.image, theirs) <= 1
    [img2img] = ready.generate(Job(PROMPT, seed=2, init_image=ours.image, strength=0.5))
    assert img2img.unet_calls == 2 and img2img.image.size == (64, 64)  # encoded by the tiny encoder


def test_a_downloaded_tiny_decoder_is_used_offline(world: World, hub, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = world.root / "decoders-offline"
    folder.mkdir()
    (folder / TAESD.local_filename).write_bytes(world.taesd.read_bytes())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ready = build(world, decoder="tiny", decoder_dir=folder, endpoint=hub.url)
    assert ready.generate(Job(PROMPT, seed=1))[0].image.size == (64, 64)
    assert hub.log == []


def test_a_file_that_is_not_a_tiny_autoencoder_is_refused_and_discarded(world: World, hub) -> None:
    hub.add(TAESD.repo_id, TAESD.repo_file, world.lora_dir / "lcm-lora-sdv1-5.safetensors")
    folder = world.root / "decoders-wrong"
    with pytest.raises(StandaloneError, match=r"not a tiny autoencoder.*--vae full"):
        build(world, decoder="tiny", decoder_dir=folder, endpoint=hub.url)
    assert not (folder / TAESD.local_filename).exists()


def test_a_damaged_local_tiny_decoder_says_to_delete_it(world: World, tmp_path: Path) -> None:
    save_file({"decoder.layers.0.weight": torch.zeros(64, 4, 3, 3)}, str(tmp_path / TAESD.local_filename))
    with pytest.raises(StandaloneError, match=r"not a usable tiny autoencoder.*delete it"):
        build(world, decoder="tiny", decoder_dir=tmp_path)


# ---- 3. compiled ----------------------------------------------------------------------------------

def test_the_compiled_path_gives_the_eager_images_and_compiles_once_per_shape(world: World,
                                                                              eager: ReadyPipeline) -> None:
    from torch._dynamo.utils import counters

    fast = build(world, compile=True)
    assert type(fast.pipe.unet).__name__ == "OptimizedModule"
    [ours] = fast.generate(Job(PROMPT, seed=7))
    [theirs] = eager.generate(Job(PROMPT, seed=7))
    assert largest_difference(ours.image, theirs.image) <= 2  # inductor's kernels reorder float sums
    assert ours.unet_calls == 4 and ours.parameters == theirs.parameters
    graphs = counters["stats"]["unique_graphs"]
    [other] = fast.generate(Job("a dog on a skateboard", seed=8))
    assert counters["stats"]["unique_graphs"] == graphs, "a new prompt or seed compiled again"
    assert largest_difference(other.image, eager.generate(Job("a dog on a skateboard", seed=8))[0].image) <= 2
    conv = next(m for m in fast.pipe.unet._orig_mod.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


# ---- 4. SDXL's VAE in float16 ---------------------------------------------------------------------

def test_sdxls_float16_vae_decodes_from_a_float32_copy() -> None:
    from diffusers.image_processor import VaeImageProcessor

    vae = tiny_components("sdxl")["vae"]
    assert vae.config.force_upcast  # as the shipped SDXL config says
    half = copy.deepcopy(vae).half()

    class Pipe:
        image_processor = VaeImageProcessor(vae_scale_factor=8)

    Pipe.vae = half
    decoder = fast_path.decoder_for(Pipe, None, Architecture.SDXL)
    assert decoder.dtype == torch.float32 and half.dtype == torch.float16  # the pipeline's VAE is left alone
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)).half()
    [image] = decoder(latents)
    with torch.no_grad():
        expected = vae.decode(latents.float() / vae.config.scaling_factor).sample
    assert largest_difference(image, Pipe.image_processor.postprocess(expected, output_type="pil")[0]) <= 1
    assert fast_path.decoder_for(Pipe, None, Architecture.SSD1B).dtype == torch.float32
    assert fast_path.decoder_for(Pipe, None, Architecture.SD1).vae is half  # SD 1.5's VAE is fine in float16


# ---- 5. live-page controls ------------------------------------------------------------------------

def test_style_weights_change_exactly_on_a_pipeline_with_adjustable_styles(world: World) -> None:
    live = build(world, styles=(LoraFile(world.style, 0.8),), adjustable_styles=True)
    live.set_style_weights((0.3,))
    [changed] = live.generate(Job(PROMPT, seed=9))
    [built] = build(world, styles=(LoraFile(world.style, 0.3),)).generate(Job(PROMPT, seed=9))
    assert largest_difference(changed.image, built.image) <= 1
    assert "<lora:ink:0.3>" in changed.parameters
    fused = build(world, styles=(LoraFile(world.style, 0.8),))
    with pytest.raises(StandaloneError, match="adjustable_styles=True"):
        fused.set_style_weights((0.3,))


def test_the_live_bounds_allow_one_step(world: World) -> None:
    live_steps = catalog.LIVE_STEPS
    ready = build(world, bounds=Bounds(min_steps=live_steps.minimum, max_steps=live_steps.maximum))
    [one] = ready.generate(Job(PROMPT, steps=1, seed=1))
    assert one.unet_calls == 1
    [clamped] = ready.generate(Job(PROMPT, steps=8, seed=1))
    assert clamped.unet_calls == live_steps.maximum


# ---- 6. offload -----------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_offload_asks_for_a_gpu_and_never_combines_with_compiling(world: World) -> None:
    with pytest.raises(StandaloneError, match="--offload model needs a CUDA GPU"):
        build(world, offload="model")
    with pytest.raises(StandaloneError, match="don't combine"):
        fast_path.check_placement("cuda", "sequential", compiled=True)


def test_offload_without_accelerate_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    with pytest.raises(StandaloneError, match="needs the accelerate package"):
        fast_path.check_placement("cuda", "model", compiled=False)
