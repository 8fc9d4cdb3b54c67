import re

import pytest
from helpers import tensors_of, write_layout, write_sparse_safetensors

from lib_lcm.lora_files.header import read_header
from lib_lcm.rules.architecture import (
    Architecture,
    ModelFlags,
    TensorInfo,
    architecture_from_flags,
    detect_architecture,
    unsupported_reason,
)

A = Architecture

# README of the layouts: an SSD-1B single-file checkpoint is the SDXL one minus these keys.
SSD_REMOVED = re.compile(
    r"model\.diffusion_model\.(middle_block\.[12]\.|(input_blocks\.[78]|output_blocks\.[01])\.1\.transformer_blocks\.[4-9]\."
    r"|output_blocks\.[45]\.1\.transformer_blocks\.1\.)")


def info(*shape: int) -> TensorInfo:
    return TensorInfo(shape=shape, dtype="F16")


@pytest.mark.parametrize(("layout", "expected", "kind"), [
    ("lcm-lora-sdv1-5", A.SD1, "lora"),
    ("lcm-lora-sdxl", A.SDXL, "lora"),
    ("lcm-lora-ssd-1b", A.SSD1B, "lora"),
    ("checkpoint-sd15", A.SD1, "checkpoint"),
    ("checkpoint-sd2", A.SD2, "checkpoint"),
    ("checkpoint-sdxl", A.SDXL, "checkpoint"),
])
def test_real_layouts_are_recognised_from_the_file_header(tmp_path, layout, expected, kind):
    path = write_layout(tmp_path / f"{layout}.safetensors", layout)
    detection = read_header(path).detect()
    assert (detection.architecture, detection.kind) == (expected, kind)


def test_ssd1b_checkpoint_is_sdxl_minus_the_removed_blocks(tmp_path):
    tensors = {k: v for k, v in tensors_of("checkpoint-sdxl").items() if not SSD_REMOVED.match(k)}
    assert sum(k.startswith("model.diffusion_model.") for k in tensors) == 944  # README's count
    path = write_sparse_safetensors(tmp_path / "ssd-1b.safetensors", tensors)
    assert read_header(path).detect().architecture is A.SSD1B


def test_a_small_sdxl_style_lora_that_skips_the_deep_blocks_stays_sdxl():
    tensors = {
        "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": info(8, 2048),
        "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": info(640, 8),
    }
    assert detect_architecture(tensors).architecture is A.SDXL


def test_sdxl_lora_keeping_only_four_deep_blocks_without_mid_block_is_ssd1b():
    names = {k: v for k, v in tensors_of("lcm-lora-sdxl").items()}
    pruned = {k: TensorInfo(tuple(v["shape"]), v["dtype"]) for k, v in names.items()
              if "mid_block" not in k and not re.search(r"down_blocks_2_attentions_\d_transformer_blocks_[4-9]_", k)}
    assert detect_architecture(pruned).architecture is A.SSD1B


@pytest.mark.parametrize(("tensors", "expected"), [
    # PEFT / diffusers LoRA names
    ({"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": info(4, 768)}, A.SD1),
    ({"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": info(4, 1024)}, A.SD2),
    # kohya names in the compvis (sgm) layout, as sd-scripts writes for SDXL
    ({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": info(4, 2048)}, A.SDXL),
    # text-encoder-only LoRAs
    ({"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": info(4, 768)}, A.SD1),
    ({"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": info(4, 1024)}, A.SD2),
    ({"lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": info(4, 768)}, A.SDXL),
    # full diffusers UNet state dict
    ({"down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": info(640, 2048)}, A.SDXL),
    # the SDXL refiner reads 1280-wide OpenCLIP bigG embeddings
    ({"model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": info(768, 1280)},
     A.SDXL_REFINER),
    ({"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": info(4608, 1536)}, A.SD3),
    ({"double_blocks.0.img_attn.qkv.weight": info(9216, 3072)}, A.FLUX),
    ({"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": info(16, 3072)}, A.FLUX),
    ({"some.other.weight": info(3, 3)}, A.UNKNOWN),
    ({}, A.UNKNOWN),
])
def test_other_formats_and_architectures(tensors, expected):
    assert detect_architecture(tensors).architecture is expected


def test_lora_up_weights_do_not_decide_the_width():
    tensors = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": info(320, 64),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": info(64, 768)}
    assert detect_architecture(tensors).architecture is A.SD1


@pytest.mark.parametrize(("flags", "from_file", "expected"), [
    # A1111 1.10.1 sets every flag (modules/sd_models.py set_model_type)
    (ModelFlags(True, False, False, False, False), A.UNKNOWN, A.SD1),
    (ModelFlags(False, True, False, False, False), A.UNKNOWN, A.SD2),
    (ModelFlags(False, False, True, False, False), A.SDXL, A.SDXL),
    (ModelFlags(False, False, True, True, False), A.UNKNOWN, A.SSD1B),
    (ModelFlags(False, False, False, False, True), A.UNKNOWN, A.SD3),
    (ModelFlags(False, False, True, False, False), A.SDXL_REFINER, A.SDXL_REFINER),
    # Forge: no is_ssd, so the file decides between SDXL and SSD-1B
    (ModelFlags(False, False, True, None, False), A.SSD1B, A.SSD1B),
    (ModelFlags(False, False, True, None, False), A.UNKNOWN, A.SDXL),
    # the SD1 flag wins over a misleading file
    (ModelFlags(True, False, False, None, False), A.SDXL, A.SD1),
    # Forge's FakeInitialModel and Flux engines: no flags at all
    (ModelFlags(), A.SD1, A.SD1),
    (ModelFlags(), A.UNKNOWN, A.UNKNOWN),
    (ModelFlags(False, False, False, None, False), A.FLUX, A.FLUX),
])
def test_architecture_from_flags(flags, from_file, expected):
    assert architecture_from_flags(flags, from_file) is expected


def test_supported_set_and_messages():
    assert {a for a in A if a.is_supported} == {A.SD1, A.SDXL, A.SSD1B}
    message = unsupported_reason(A.SD2)
    assert "SD 2.x" in message and "unchanged" in message
    assert all(a.label for a in A)
