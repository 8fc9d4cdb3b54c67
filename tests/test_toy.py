"""The shipped toy teacher and its distilled LCM-LoRA (lib_lcm/toy_weights): what the files are, how
the LoRA loads, and the demo's table on those weights with tolerances, at two seeds.

The table is the paper's claim at toy scale: at equal UNet evaluations the student beats the guided
teacher, 4 student steps match 50 guided teacher steps, 2 student steps already draw the right digit,
and the LCM sampler alone (no LoRA) does not explain it. The project's own samplers must reproduce
what diffusers' schedulers give on the same model.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from lib_lcm.cli.main import main
from lib_lcm.lora_files.header import read_header
from lib_lcm.toy import digits as toy
from lib_lcm.toy import evaluation as toy_eval
from lib_lcm.toy import files
from lib_lcm.training import distill

SEEDS = (0, 1)
COUNT = 500


def test_the_weights_are_shipped_and_small():
    sizes = {name: (files.WEIGHTS_DIR / name).stat().st_size for name in (
        files.TEACHER_FILE, files.AUTOENCODER_FILE, files.CLASSIFIER_FILE, files.STUDENT_LORA_FILE)}
    assert sum(sizes.values()) < 8_000_000, sizes


def test_the_teacher_is_a_small_sd_shaped_unet_on_sd_15s_schedule():
    teacher = toy.load_teacher()
    params = sum(p.numel() for p in teacher.unet.parameters())
    assert 1_000_000 <= params <= 3_000_000
    assert type(teacher.unet).__name__ == "UNet2DConditionModel"
    assert teacher.unet.config.cross_attention_dim == toy.TOKEN_DIM
    with safe_open(str(files.WEIGHTS_DIR / files.TEACHER_FILE), "pt") as handle:
        assert {handle.get_tensor(k).dtype for k in handle.keys()} == {torch.float16}  # noqa: SIM118


def test_the_lora_file_has_the_published_layout_over_every_target_module():
    path = files.WEIGHTS_DIR / files.STUDENT_LORA_FILE
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata() == {"format": "pt"}
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    pattern = re.compile(r"lora_unet_[a-z0-9_]+\.(lora_down\.weight|lora_up\.weight|alpha)")
    assert all(pattern.fullmatch(k) for k in tensors), [k for k in tensors if not pattern.fullmatch(k)][:3]
    assert {v.dtype for v in tensors.values()} == {torch.float16}
    unet = toy.load_teacher().unet
    targets = {"lora_unet_" + n.replace(".", "_"): m for n, m in unet.named_modules()
               if n.endswith(distill.LCM_LORA_TARGETS)}
    assert {k.rsplit(".", 1)[0] for k in tensors if k.endswith(".alpha")} == set(targets)
    for name, module in targets.items():  # down [r, in(, k, k)], up [out, r(, 1, 1)], as the published files
        down, up = tensors[f"{name}.lora_down.weight"], tensors[f"{name}.lora_up.weight"]
        weight = module.weight
        assert down.shape[1] == weight.shape[1] and up.shape[0] == weight.shape[0]
        assert down.shape[2:] == weight.shape[2:] and up.shape[1] == down.shape[0]


def test_the_extensions_header_reader_sees_a_lora():
    detection = read_header(files.WEIGHTS_DIR / files.STUDENT_LORA_FILE).detect()
    assert detection.kind == "lora"


def test_fusing_through_the_standalone_lora_path_equals_the_hand_merge():
    teacher = toy.load_teacher()
    fused = toy.load_teacher().unet
    toy_eval.fuse_lora(fused, files.WEIGHTS_DIR / files.STUDENT_LORA_FILE)
    with safe_open(str(files.WEIGHTS_DIR / files.STUDENT_LORA_FILE), "pt") as handle:
        lora = {k: handle.get_tensor(k).float() for k in handle.keys()}  # noqa: SIM118
    modules = dict(teacher.unet.named_modules())
    fused_modules = dict(fused.named_modules())
    largest = 0.0
    for name in ("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", "mid_block.resnets.0.conv1",
                 "up_blocks.2.attentions.1.proj_out", "time_embedding.linear_1"):
        key = "lora_unet_" + name.replace(".", "_")
        if f"{key}.alpha" not in lora:
            assert name == "time_embedding.linear_1"  # not one of the 14 adapted kinds: untouched
            assert torch.equal(modules[name].weight, fused_modules[name].weight)
            continue
        down, up, alpha = lora[f"{key}.lora_down.weight"], lora[f"{key}.lora_up.weight"], lora[f"{key}.alpha"]
        delta = (up.flatten(1) @ down.flatten(1)).reshape(modules[name].weight.shape) * alpha / down.shape[0]
        torch.testing.assert_close(fused_modules[name].weight, modules[name].weight + delta, atol=1e-5, rtol=1e-4)
        largest = max(largest, float(delta.abs().max()))
    assert largest > 1e-3  # the LoRA is not empty
    assert not any("lora" in n for n, _ in fused.named_parameters())


def test_the_judges_work_on_real_digits():
    images, labels = toy.real_digits()
    classifier, autoencoder = toy.load_classifier(), toy.load_autoencoder()
    with torch.no_grad():
        assert (classifier(images).argmax(1) == labels).float().mean() > 0.99
        reconstructed = autoencoder.decode(autoencoder.encode(images))
        assert (reconstructed - images).pow(2).mean() < 0.01
        assert (classifier(reconstructed).argmax(1) == labels).float().mean() > 0.99
    real = classifier.features(images)
    # two halves of the real digits: the floor of the measure at this sample size (13.3 here)
    assert toy_eval.frechet_distance(real[::2], real[1::2]) < 20


def test_frechet_distance_by_hand():
    a = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    assert toy_eval.frechet_distance(a, a) == pytest.approx(0, abs=1e-9)
    assert toy_eval.frechet_distance(a, a + torch.tensor([3.0, 4.0])) == pytest.approx(25, abs=1e-9)
    # equal means, covariances (4/3) I and 12 I: 2 * (sqrt(4/3) - sqrt(12))^2 = 32/3
    centred = a - a.mean(0)
    assert toy_eval.frechet_distance(centred, 3 * centred) == pytest.approx(32 / 3, rel=1e-9)


# ---------------------------------------------------------------- the table (slow: ~3 minutes)

@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return toy_eval.load_models()


@pytest.fixture(scope="module")
def table(models):
    results = toy_eval.run_table(models, count=COUNT, seeds=SEEDS)
    print("\n" + toy_eval.format_table(results))
    for row in results:  # the per-seed numbers behind the means
        print(f"{row[0].spec.label:<34}", "  ".join(f"seed {r.seed}: {r.accuracy:.3f} {r.frechet:6.2f}" for r in row))
    return {results_[0].spec.label: results_ for results_ in results}


def _row(table, label):
    return {r.seed: r for r in table[label]}


slow = pytest.mark.slow


@slow
def test_at_equal_unet_evaluations_the_student_clearly_beats_the_guided_teacher(table):
    """4 evaluations: 4 student LCM steps at CFG 1 against 2 guided teacher steps (cond + uncond)."""
    student = _row(table, "student, 4 LCM steps")
    for label in ("teacher, 2 DDIM steps", "teacher, 2 DPM-Solver++ steps"):
        teacher = _row(table, label)
        for seed in SEEDS:
            assert student[seed].frechet < 0.6 * teacher[seed].frechet, (label, seed)
            assert student[seed].accuracy >= teacher[seed].accuracy, (label, seed)


@slow
def test_four_student_steps_match_fifty_guided_teacher_steps(table):
    """At least as good on the mean Fréchet distance over the seeds; per seed within 5% (the seed-to-seed
    spread is of that order: measured 29.00 against 33.40 and 33.23 against 33.12)."""
    student, teacher = _row(table, "student, 4 LCM steps"), _row(table, "teacher, 50 DDIM steps")
    mean = lambda row: sum(r.frechet for r in row.values()) / len(row)  # noqa: E731
    assert mean(student) <= mean(teacher), (mean(student), mean(teacher))
    for seed in SEEDS:
        assert student[seed].frechet <= 1.05 * teacher[seed].frechet, seed
        assert student[seed].accuracy >= teacher[seed].accuracy - 0.01, seed


@slow
def test_two_student_steps_draw_the_right_digit(table):
    for result in table["student, 2 LCM steps"]:
        assert result.accuracy >= 0.95, result.seed


@slow
@pytest.mark.parametrize(("steps", "factor"), [(1, 2.0), (2, 2.0), (4, 1.25)])
def test_the_lcm_sampler_without_the_lora_is_clearly_worse(table, steps, factor):
    """The ablation: the same sampler and steps on the teacher alone. What the student gains is the LoRA's."""
    plural = "step" if steps == 1 else "steps"
    ablation = _row(table, f"teacher, {steps} LCM {plural}, no LoRA")
    student = _row(table, f"student, {steps} LCM {plural}")
    for seed in SEEDS:
        assert ablation[seed].frechet > factor * student[seed].frechet, seed
        assert ablation[seed].accuracy <= student[seed].accuracy, seed


@slow
def test_few_step_teacher_solvers_degrade(table):
    """The toy is hard enough that 2-4 step solvers visibly lose quality (DPM-Solver++ holds up at 4)."""
    for seed in SEEDS:
        fifty = _row(table, "teacher, 50 DDIM steps")[seed].frechet
        assert _row(table, "teacher, 4 DDIM steps")[seed].frechet > 1.3 * fifty
        assert _row(table, "teacher, 2 DDIM steps")[seed].frechet > 2 * fifty
        assert _row(table, "teacher, 2 DPM-Solver++ steps")[seed].frechet > 1.5 * fifty


@slow
def test_lib_lcm_samplers_reproduce_the_diffusers_rows(models, table):
    """sample_lcm / sample_tcd, driven as the WebUI drives them, on a model whose output can be judged."""
    rows = [r[0].spec for r in table.values() if r[0].spec.sampler in ("lcm", "tcd")]
    ours = toy_eval.run_table(models, rows, count=COUNT, seeds=SEEDS, implementation="lib_lcm")
    for results in ours:
        for mine, reference in zip(results, table[results[0].spec.label], strict=True):
            assert (mine.images - reference.images).abs().max() < 1e-3, mine.spec.label
            assert mine.accuracy == pytest.approx(reference.accuracy, abs=0.004)
            assert mine.frechet == pytest.approx(reference.frechet, rel=0.01)


# ---------------------------------------------------------------- commands

@slow
def test_demo_command_prints_the_table_and_writes_the_grid(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--count", "20", "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    for spec in toy_eval.DEMO_ROWS:
        assert spec.label in out
    assert (tmp_path / "lcm-digits.png").is_file()
    assert main(["demo", "--count", "5"]) == 2


@slow
def test_distill_command_writes_a_lora_and_resumes(tmp_path, capsys):
    args = ["distill", "--out", str(tmp_path), "--batch", "4", "--checkpoint-every", "1"]
    assert main([*args, "--steps", "2"]) == 0
    first = (tmp_path / files.STUDENT_LORA_FILE).read_bytes()
    assert main([*args, "--steps", "3"]) == 0
    assert "resuming from step 2" in capsys.readouterr().out
    assert (tmp_path / files.STUDENT_LORA_FILE).read_bytes() != first
    assert main([*args, "--steps", "4", "--w-max", "9"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_commands_refuse_missing_folders(tmp_path, capsys):
    assert main(["distill", "--teacher", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "toy-train" in capsys.readouterr().err
    assert main(["toy-train", "--out", str(tmp_path), "--teacher-only"]) == 2
    assert "run without it first" in capsys.readouterr().err
    assert not Path(tmp_path / "o").exists()
