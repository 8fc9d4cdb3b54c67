"""Tiny SD 1.5 / SDXL / SSD-1B pipelines from configs, written as single files in the ORIGINAL layout.

diffusers 0.35.2 converts ldm/sgm -> diffusers only. To write the original layout we run its own
converters (``convert_ldm_unet_checkpoint``, ``convert_ldm_vae_checkpoint``) on the real key lists of
``tests/data/layouts`` with one 0-dim tag tensor per key and read the mapping back; the asserts make
any structural difference between the tiny model and the real layout fail loudly. The tiny models
keep the real block structure (channels change at the same levels), so their UNet/VAE key sets equal
the real ones and kohya LoRA names over them are exactly the official LCM-LoRA names.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from helpers import tensors_of

TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1", "conv2",
           "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj")  # LCM-LoRA's 14 targets
VOCAB = 514  # 256 byte symbols, the same with "</w>", then start and end
TE1_WIDTH, TE2_WIDTH = 32, 64  # must differ: the SDXL loader tells the two encoders apart by width


def write_tokenizer(folder: Path) -> Path:
    """A byte-level CLIP tokenizer (no merges): vocab.json + merges.txt + configs."""
    from transformers import CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77,
                  pad_token="<|endoftext|>").save_pretrained(str(folder))
    return folder


def _text_config(hidden: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=77, bos_token_id=VOCAB - 2,
                          eos_token_id=VOCAB - 1, pad_token_id=VOCAB - 1, projection_dim=hidden,
                          hidden_act="quick_gelu")


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=8,
                         block_out_channels=(8, 16, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64)


def tiny_components(architecture: str, seed: int = 0) -> dict[str, Any]:
    """architecture: "sd1", "sdxl" or "ssd-1b"; random weights, 64x64 native size."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    if architecture == "sd1":
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(16, 32, 64, 64),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=TE1_WIDTH,
            attention_head_dim=8, norm_num_groups=8, use_linear_projection=False)
        text_encoder = CLIPTextModel(_text_config(TE1_WIDTH))
        return {"unet": unet.eval(), "vae": _vae().eval(), "text_encoder": text_encoder.eval()}
    ssd = architecture == "ssd-1b"
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(16, 32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 4) if ssd else (1, 2, 10),
        reverse_transformer_layers_per_block=((4, 4, 10), (2, 1, 1), (1, 1, 1)) if ssd else None,
        mid_block_type="UNetMidBlock2D" if ssd else "UNetMidBlock2DCrossAttn",
        attention_head_dim=(2, 4, 4), norm_num_groups=8, cross_attention_dim=TE1_WIDTH + TE2_WIDTH,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=TE2_WIDTH + 6 * 8)
    return {"unet": unet.eval(), "vae": _vae().eval(), "text_encoder": CLIPTextModel(_text_config(TE1_WIDTH)).eval(),
            "text_encoder_2": CLIPTextModelWithProjection(_text_config(TE2_WIDTH)).eval()}


def pipeline_of(components: dict[str, Any], tokenizer_dir: Path, scheduler: Any = None) -> Any:
    from diffusers import LCMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    scheduler = scheduler or LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                          timestep_spacing="leading", steps_offset=1, clip_sample=False,
                                          set_alpha_to_one=False)
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    if "text_encoder_2" in components:
        return StableDiffusionXLPipeline(**components, tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=scheduler)
    return StableDiffusionPipeline(**components, tokenizer=tokenizer, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def write_config_dir(components: dict[str, Any], folder: Path) -> Path:
    """A diffusers folder of configs and tokenizers only (what ``--config`` takes): no weights."""
    pipe = pipeline_of(components, write_tokenizer(folder / "_tokenizer"))
    pipe.save_pretrained(str(folder))
    for weights in folder.rglob("*.safetensors"):
        weights.unlink()
    return folder


# ---- diffusers -> original layout ------------------------------------------------------------------

def _inverse(convert: Any, ldm_keys: list[str], config: dict[str, Any]) -> dict[str, str]:
    tags = {k: torch.tensor(float(i)) for i, k in enumerate(ldm_keys)}
    out = convert(dict(tags), config)
    return {ldm_keys[int(v.item())]: diffusers_key for diffusers_key, v in out.items()}


def _to_original(model: Any, layout: dict[str, dict], prefix: str, convert: Any) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    mapping = _inverse(convert, [k for k in layout if k.startswith(prefix)], dict(model.config))
    assert set(state) == set(mapping.values()), "tiny model and real layout differ in structure"
    out = {}
    for ldm_key, diffusers_key in mapping.items():
        tensor = state[diffusers_key]
        while tensor.ndim < len(layout[ldm_key]["shape"]):  # VAE attention: 1x1 conv in ldm, linear here
            tensor = tensor.unsqueeze(-1)
        out[ldm_key] = tensor.contiguous()
    return out


def _clip_original(text_encoder: Any, prefix: str) -> dict[str, torch.Tensor]:
    state = {prefix + k: v for k, v in text_encoder.state_dict().items()}
    state[prefix + "text_model.embeddings.position_ids"] = torch.arange(77)[None]
    return state


def _open_clip_original(text_encoder: Any, prefix: str = "conditioner.embedders.1.model.") -> dict[str, torch.Tensor]:
    sd = text_encoder.state_dict()
    out = {prefix + "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
           prefix + "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
           prefix + "ln_final.weight": sd["text_model.final_layer_norm.weight"],
           prefix + "ln_final.bias": sd["text_model.final_layer_norm.bias"],
           prefix + "text_projection": sd["text_projection.weight"].T.contiguous(),
           prefix + "logit_scale": torch.tensor(4.6052)}
    for i in range(text_encoder.config.num_hidden_layers):
        hf, oc = f"text_model.encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for w in ("weight", "bias"):
            out[oc + f"attn.in_proj_{w}"] = torch.cat([sd[hf + f"self_attn.{p}_proj.{w}"] for p in "qkv"])
            out[oc + f"attn.out_proj.{w}"] = sd[hf + f"self_attn.out_proj.{w}"]
            out[oc + f"ln_1.{w}"] = sd[hf + f"layer_norm1.{w}"]
            out[oc + f"ln_2.{w}"] = sd[hf + f"layer_norm2.{w}"]
            out[oc + f"mlp.c_fc.{w}"] = sd[hf + f"mlp.fc1.{w}"]
            out[oc + f"mlp.c_proj.{w}"] = sd[hf + f"mlp.fc2.{w}"]
    return out


# SSD-1B single files are SDXL files without these blocks (A1111 1.10 sd_models_xl.convert_sdxl_to_ssd).
_SSD_REMOVED = ("model.diffusion_model.middle_block.1.", "model.diffusion_model.middle_block.2.",
                *(f"model.diffusion_model.input_blocks.{b}.1.transformer_blocks.{i}." for b in (7, 8)
                  for i in range(4, 10)),
                *(f"model.diffusion_model.output_blocks.{b}.1.transformer_blocks.{i}." for b in (0, 1)
                  for i in range(4, 10)),
                *(f"model.diffusion_model.output_blocks.{b}.1.transformer_blocks.1." for b in (4, 5)))


def original_state_dict(components: dict[str, Any], architecture: str) -> dict[str, torch.Tensor]:
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    layout = tensors_of("checkpoint-sd15" if architecture == "sd1" else "checkpoint-sdxl")
    if architecture == "ssd-1b":
        layout = {k: v for k, v in layout.items() if not k.startswith(_SSD_REMOVED)}
    sd = _to_original(components["unet"], layout, "model.diffusion_model.", convert_ldm_unet_checkpoint)
    sd.update(_to_original(components["vae"], layout, "first_stage_model.", convert_ldm_vae_checkpoint))
    if architecture == "sd1":
        sd.update(_clip_original(components["text_encoder"], "cond_stage_model.transformer."))
    else:
        sd.update(_clip_original(components["text_encoder"], "conditioner.embedders.0.transformer."))
        sd.update(_open_clip_original(components["text_encoder_2"]))
    return sd


def write_checkpoint(path: Path, components: dict[str, Any], architecture: str) -> Path:
    from safetensors.torch import save_file

    save_file(original_state_dict(components, architecture), str(path), metadata={"format": "pt"})
    return path


def write_model_with_lora_dir(root: Path, architecture: str, seed: int = 0, lora_seed: int = 10,
                              lora_scale: float = 0.1) -> tuple[dict[str, Any], Path, Path]:
    """A tiny single file in ``root`` and a Lora folder holding its acceleration LoRA under the catalog's
    name: (components, checkpoint, lora_dir)."""
    from safetensors.torch import save_file

    from lib_lcm.rules import catalog
    from lib_lcm.rules.architecture import Architecture

    components = tiny_components(architecture, seed=seed)
    checkpoint = write_checkpoint(root / f"tiny-{architecture}.safetensors", components, architecture)
    lora_dir = root / "Lora"
    lora_dir.mkdir(parents=True)
    entry = catalog.for_architecture(Architecture(architecture))
    assert entry is not None
    save_file(kohya_lora(components["unet"], seed=lora_seed, scale=lora_scale), str(lora_dir / entry.local_filename))
    return components, checkpoint, lora_dir


TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")  # kohya's text-encoder targets


def kohya_lora(model: Any, rank: int = 4, alpha: float = 8.0, seed: int = 0, scale: float = 0.1,
               targets: tuple[str, ...] = TARGETS, prefix: str = "lora_unet_") -> dict[str, torch.Tensor]:
    """A kohya-named LoRA (``<prefix><path>.lora_down/.lora_up/.alpha``) on every targeted layer."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, module in model.named_modules():
        if not any(name == t or name.endswith("." + t) for t in targets):
            continue
        if isinstance(module, torch.nn.Linear):
            down, up = (rank, module.in_features), (module.out_features, rank)
        elif isinstance(module, torch.nn.Conv2d):
            down, up = (rank, module.in_channels, *module.kernel_size), (module.out_channels, rank, 1, 1)
        else:
            continue
        key = prefix + name.replace(".", "_")
        out[key + ".lora_down.weight"] = torch.randn(down, generator=generator) * scale
        out[key + ".lora_up.weight"] = torch.randn(up, generator=generator) * scale
        out[key + ".alpha"] = torch.tensor(alpha)
    return out


def merge_by_formula(model: Any, loras: list[tuple[dict[str, torch.Tensor], float]],
                     prefix: str = "lora_unet_") -> None:
    """Fold kohya LoRAs into ``model``: W += weight * alpha/rank * up @ down (the oracle for fusion)."""
    modules = {prefix + n.replace(".", "_"): m for n, m in model.named_modules()}
    with torch.no_grad():
        for state, weight in loras:
            for key in {k.rsplit(".", 2)[0] for k in state if k.endswith(".lora_down.weight")}:
                if not key.startswith(prefix):
                    continue
                down, up = state[key + ".lora_down.weight"], state[key + ".lora_up.weight"]
                module = modules[key]
                delta = (up.flatten(1) @ down.flatten(1)).reshape(module.weight.shape)
                module.weight += weight * float(state[key + ".alpha"]) / down.shape[0] * delta


def full_components(architecture: str, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Full-size SD 1.5 or SDXL from the configs lib_lcm ships, random weights (built on ``device``: fast on a GPU)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from lib_lcm.standalone.model_loading import CONFIGS

    folder = CONFIGS / ("sd15" if architecture == "sd1" else "sdxl")
    torch.manual_seed(seed)
    with torch.device(device):
        components = {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(folder / "unet"))),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(str(folder / "vae"))),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(str(folder / "text_encoder"))),
        }
        if architecture != "sd1":
            components["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig.from_pretrained(str(folder / "text_encoder_2")))
    return {name: model.eval() for name, model in components.items()}
