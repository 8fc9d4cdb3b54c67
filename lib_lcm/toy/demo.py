"""``python -m lib_lcm demo``: the shipped toy LCM-LoRA beside its teacher, measured.

The LCM-LoRA paper's claim at toy scale, offline: a LoRA distilled with latent consistency
distillation (``python -m lib_lcm distill``) lets the teacher sample in 2-8 steps at the quality of
its 50-step, guided sampling. Same seeds and digits for every row; see :mod:`lib_lcm.toy.evaluation`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lib_lcm.toy import files


def main(out_dir: Path, seeds: Sequence[int], count: int = 500, lib_lcm_samplers: bool = False,
         echo: Callable[[str], None] = print) -> int:
    import torch

    from lib_lcm.toy import evaluation as toy_eval

    needed = (files.TEACHER_FILE, files.AUTOENCODER_FILE, files.CLASSIFIER_FILE, files.STUDENT_LORA_FILE)
    missing = [name for name in needed if not (files.WEIGHTS_DIR / name).is_file()]
    if missing:
        print(f"error: the shipped toy weights are missing ({', '.join(missing)} in {files.WEIGHTS_DIR}); "
              "re-create them with the commands in README.md", file=sys.stderr)
        return 2
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("error: the demo judges samples against scikit-learn's digits: pip install scikit-learn",
              file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    models = toy_eval.load_models()
    params = sum(p.numel() for p in models.teacher.unet.parameters())
    lora = sum(p.numel() for p in _lora_tensors())
    echo(f"Toy latent diffusion on scikit-learn's digits (32x32 -> 4x8x8 latents), SD 1.5's noise schedule. "
         f"Teacher UNet: {params / 1e6:.2f}M parameters; its LCM-LoRA: {lora / 1e3:.0f}k parameters, fused.")
    implementation: toy_eval.Implementation = "lib_lcm" if lib_lcm_samplers else "diffusers"
    echo(f"LCM/TCD rows sampled with {'lib_lcm.sampling' if lib_lcm_samplers else 'diffusers schedulers'}; "
         f"{count} images per row and seed, digit i % 10 for image i.")
    table = toy_eval.run_table(models, count=count, seeds=seeds, implementation=implementation)
    echo(toy_eval.format_table(table))
    grid = toy_eval.save_grid(table, out_dir / "lcm-digits.png")
    echo(f"Wrote {grid}")
    return 0


def _lora_tensors() -> list:
    from safetensors.torch import load_file

    tensors = load_file(str(files.WEIGHTS_DIR / files.STUDENT_LORA_FILE))
    return [v for k, v in tensors.items() if not k.endswith(".alpha")]
