"""Latent consistency distillation (lib_lcm.training.distill): each piece of the loss against hand-computed
values and diffusers' DDIMScheduler, the saved layout against the published LCM-LoRA files, and short
runs that lower the loss, repeat exactly and resume bit for bit."""

from __future__ import annotations

import math

import pytest
import torch
from device_check import DeviceMixError, StrictDevices
from diffusers import DDIMScheduler, UNet2DConditionModel
from helpers import layout
from safetensors import safe_open
from sampling_support import ALPHAS_CUMPROD, tiny_unet

from lib_lcm.sampling import schedule as sampling
from lib_lcm.standalone.model_loading import CONFIGS
from lib_lcm.training import distill, loop
from lib_lcm.training.distill import DDIMSolver, DistillConfig, DistillError, LatentBatch

SOLVER = DDIMSolver.build(ALPHAS_CUMPROD)


def test_the_solver_grid_is_the_skipping_grid_of_the_paper():
    assert SOLVER.timesteps.tolist() == [20 * n - 1 for n in range(1, 51)]
    assert SOLVER.skip == 20
    assert SOLVER.alphas_prev[0] == ALPHAS_CUMPROD[0]  # t_n of the first index is 0 (19 - 20, clamped)
    assert torch.equal(SOLVER.alphas_prev[1:], ALPHAS_CUMPROD[SOLVER.timesteps[:-1]])
    assert torch.equal(SOLVER.alphas, ALPHAS_CUMPROD[SOLVER.timesteps])


def test_ddim_step_by_hand():
    x0, eps = torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), -2.0)
    index = torch.tensor([10])  # from t = 219 to t = 199
    a_prev = float(ALPHAS_CUMPROD[199])
    expected = math.sqrt(a_prev) * 0.5 + math.sqrt(1 - a_prev) * -2.0
    assert SOLVER.step(x0, eps, index).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("index", [0, 1, 17, 49])
def test_ddim_step_equals_diffusers_ddim_scheduler(index):
    """diffusers' DDIM (eta 0) with trailing spacing walks exactly the grid 999, 979, ..., 19, 0."""
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing")
    scheduler.set_timesteps(50)
    generator = torch.Generator().manual_seed(index)
    x, eps = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 4, 8, 8, generator=generator)
    t = int(SOLVER.timesteps[index])
    reference = scheduler.step(eps, t, x, eta=0.0).prev_sample
    indices = torch.tensor([index, index])
    ours = SOLVER.step(distill.predicted_x0(eps, x, SOLVER.alphas[indices]), eps, indices)
    torch.testing.assert_close(ours, reference, atol=2e-5, rtol=1e-5)


def test_predicted_x0_by_hand():
    a = torch.tensor([0.64])
    x, eps = torch.full((1, 1, 1, 1), 1.0), torch.full((1, 1, 1, 1), 0.5)
    assert distill.predicted_x0(eps, x, a).item() == pytest.approx((1.0 - 0.6 * 0.5) / 0.8)


def test_guided_target_is_one_plus_w_cond_minus_w_uncond():
    cond, uncond = torch.tensor([[2.0], [2.0]]), torch.tensor([[1.0], [1.0]])
    w = torch.tensor([3.0, 0.0])
    assert distill.guided(cond, uncond, w).flatten().tolist() == [4 * 2.0 - 3 * 1.0, 2.0]


def test_boundary_scalings_by_hand_and_as_the_sampler_uses_them():
    t = torch.tensor([0, 19, 999])
    c_skip, c_out = distill.boundary_scalings(t)
    assert c_skip[0] == 1 and c_out[0] == 0  # f(x, 0) = x: the boundary condition
    assert c_skip[1].item() == pytest.approx(0.25 / (190**2 + 0.25), rel=1e-6)
    assert c_out[1].item() == pytest.approx(190 / math.sqrt(190**2 + 0.25), rel=1e-6)
    for i, step in enumerate(t.tolist()):
        expected = sampling.boundary_scalings(step)
        assert (c_skip[i].item(), c_out[i].item()) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_consistency_function_is_the_identity_at_t_0_and_x0_far_away():
    x, x0 = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    f = distill.consistency(x, x0, torch.tensor([0, 999]))
    assert torch.equal(f[0], x[0])
    torch.testing.assert_close(f[1], x0[1], atol=1e-6, rtol=1e-4)


def test_huber_and_l2_distances_by_hand():
    a, b = torch.tensor([0.0, 0.0]), torch.tensor([0.003, 0.0])
    huber = (math.sqrt(0.003**2 + 0.001**2) - 0.001) / 2
    assert distill.distance(a, b, "huber", 0.001).item() == pytest.approx(huber, rel=1e-5)
    assert distill.distance(a, b, "l2").item() == pytest.approx(0.003**2 / 2, rel=1e-5)


def test_ema_update_by_hand():
    target = {"p": torch.tensor([1.0])}
    distill.ema_update(target, {"p": torch.tensor([3.0])}, 0.95)
    assert target["p"].item() == pytest.approx(0.95 * 1 + 0.05 * 3)


@pytest.mark.parametrize(("config", "message"), [
    (DistillConfig(loss="l1"), "loss must be"),
    (DistillConfig(w_min=3.0, w_max=1.0), "w_min <= w_max"),
    (DistillConfig(ema_decay=1.0), "ema_decay"),
    (DistillConfig(steps=0), "at least 1"),
])
def test_bad_settings_say_what_to_change(config, message):
    with pytest.raises(DistillError, match=message):
        config.check()


# ---------------------------------------------------------------- the saved file's layout

@pytest.mark.parametrize(("config", "layout_name"), [("sd15", "lcm-lora-sdv1-5"), ("sdxl", "lcm-lora-sdxl")])
def test_lora_of_a_real_unet_has_exactly_the_published_keys_and_shapes(config, layout_name):
    """Distilling SD 1.5 or SDXL at rank 64 would save the published files' tensors, name for name."""
    from peft import LoraConfig

    unet_config = UNet2DConditionModel.load_config(CONFIGS / config / "unet")
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config)
        unet.add_adapter(LoraConfig(r=64, lora_alpha=8, target_modules=list(distill.LCM_LORA_TARGETS)))
    ours = {}
    for name, parameter in unet.named_parameters():
        if "lora_" in name:
            module, role = distill.kohya_key(name)
            ours[f"{module}.{role}"] = list(parameter.shape)
            ours[f"{module}.alpha"] = []
    published = {k: v["shape"] for k, v in layout(layout_name)["tensors"].items()}
    assert ours == published


def test_kohya_key_refuses_what_is_not_a_lora_weight():
    assert distill.kohya_key("mid_block.resnets.0.conv1.lora_B.default.weight") == (
        "lora_unet_mid_block_resnets_0_conv1", "lora_up.weight")
    with pytest.raises(DistillError):
        distill.kohya_key("mid_block.resnets.0.conv1.weight")


# ---------------------------------------------------------------- short runs on a tiny random teacher

def _data():
    """A fixed little dataset: 16 latents, two "prompts" (random 16-d tokens, as tiny_unet reads)."""
    generator = torch.Generator().manual_seed(5)
    latents = torch.randn(16, 4, 8, 8, generator=generator) * 0.8
    tokens = torch.randn(3, 1, 16, generator=generator)
    classes = torch.arange(16) % 2

    def draw(batch: int, g: torch.Generator) -> LatentBatch:
        pick = torch.randint(0, 16, (batch,), generator=g)
        return LatentBatch(latents[pick], tokens[classes[pick]], tokens[2].expand(batch, -1, -1))

    return draw


def _loss_on_fixed_draws(state: distill.Distillation, config: DistillConfig) -> float:
    data, generator = _data(), torch.Generator().manual_seed(123)
    total = 0.0
    with torch.no_grad():
        for _ in range(6):
            batch = data(8, generator)
            draw = distill.Draw.sample(batch.latents.shape, SOLVER, config, generator)
            total += float(distill.lcd_loss(state.unet, state.ema, batch, draw, SOLVER, config))
    return total / 6


def test_a_short_distillation_lowers_the_loss():
    config = DistillConfig(steps=60, batch=8, learning_rate=3e-3, warmup=5, rank=4, alpha=4, loss="l2",
                           ema_decay=0.0)
    state = distill.start(tiny_unet(), config)
    before = _loss_on_fixed_draws(state, config)
    loop.train(state, loop.GlobalDraws(_data()), ALPHAS_CUMPROD, config, loop.accelerator_for("cpu"),
               echo=lambda _: None, progress=False)
    after = _loss_on_fixed_draws(state, config)
    assert after < 0.7 * before, (before, after)
    assert state.step == 60


def test_the_student_starts_as_the_teacher():
    """peft's zero-initialised up matrices: the LoRA changes nothing until it is trained."""
    teacher = tiny_unet()
    x, t, c = torch.randn(2, 4, 8, 8), torch.tensor([999, 19]), torch.randn(2, 1, 16)
    with torch.no_grad():
        before = teacher(x, t, encoder_hidden_states=c).sample
    state = distill.start(teacher, DistillConfig(rank=4))
    with torch.no_grad():
        assert torch.equal(state.unet(x, t, encoder_hidden_states=c).sample, before)


def _run(config: DistillConfig, out=None, resume_from=None):
    state = distill.start(tiny_unet(), config)
    if resume_from is not None:
        assert distill.resume(state, config, resume_from)
    loop.train(state, loop.GlobalDraws(_data()), ALPHAS_CUMPROD, config, loop.accelerator_for("cpu"), out,
               echo=lambda _: None, progress=False)
    return state


def test_runs_repeat_exactly_and_resume_bit_for_bit(tmp_path):
    base = DistillConfig(batch=4, rank=2, alpha=2, warmup=2, ema_decay=0.9, checkpoint_every=3)
    whole = _run(DistillConfig(**{**base.__dict__, "steps": 6}))
    again = _run(DistillConfig(**{**base.__dict__, "steps": 6}))
    _run(DistillConfig(**{**base.__dict__, "steps": 3}), out=tmp_path)
    resumed = _run(DistillConfig(**{**base.__dict__, "steps": 6}), resume_from=tmp_path)
    assert resumed.step == 6
    for name, value in whole.lora().items():
        assert torch.equal(value, again.lora()[name])
        assert torch.equal(value, resumed.lora()[name]), name
        assert torch.equal(whole.ema[name], resumed.ema[name])
    assert any(float(v.detach().abs().sum()) > 0 for k, v in whole.lora().items() if "lora_B" in k)  # trained


def test_resume_refuses_a_state_made_with_other_settings(tmp_path):
    _run(DistillConfig(steps=2, batch=2, rank=2, w_max=3.0, checkpoint_every=1), out=tmp_path)
    state = distill.start(tiny_unet(), DistillConfig(steps=4, batch=2, rank=2, w_max=5.0))
    with pytest.raises(DistillError, match=r"w_max: 3\.0 there, 5\.0 now"):
        distill.resume(state, DistillConfig(steps=4, batch=2, rank=2, w_max=5.0), tmp_path)


def test_saved_lora_follows_the_published_file_format(tmp_path):
    config = DistillConfig(steps=2, batch=2, rank=2, alpha=2)
    state = _run(config)
    path = distill.save_lora(state.unet, config, tmp_path / "lcm.safetensors", lora=state.final_lora(config))
    with safe_open(str(path), "pt") as handle:
        keys = list(handle.keys())
        assert handle.metadata() == {"format": "pt"}
        tensors = {k: handle.get_tensor(k) for k in keys}
    assert all(k.startswith("lora_unet_") for k in keys)
    assert {k.rsplit(".", 2)[-2] if k.endswith(".weight") else "alpha" for k in keys} == {
        "lora_down", "lora_up", "alpha"}
    assert all(v.dtype == torch.float16 for v in tensors.values())
    assert all(float(v) == 2.0 for k, v in tensors.items() if k.endswith(".alpha"))
    adapted = {n for n, _ in tiny_unet().named_modules() if n.endswith(distill.LCM_LORA_TARGETS)}
    assert {k.rsplit(".", 1)[0] for k in keys if k.endswith(".alpha")} == {
        "lora_unet_" + n.replace(".", "_") for n in adapted}
    assert not list(tmp_path.glob("*.partial"))


# ---------------------------------------------------------------- devices

def _on_meta(config: DistillConfig):
    state = distill.start(tiny_unet().to("meta"), config)
    batch = LatentBatch(*(torch.randn(*shape).to("meta") for shape in ((2, 4, 8, 8), (2, 1, 16), (2, 1, 16))))
    return state, batch


def test_a_training_step_keeps_every_tensor_on_the_training_device():
    """The class of bug the first GPU run found (a CPU table indexed by CUDA indices), caught on the CPU:
    the model and data sit on the meta device and StrictDevices fails every op CUDA would refuse."""
    config = DistillConfig(batch=2, rank=2, alpha=2)
    state, batch = _on_meta(config)
    solver = loop.solver_for(state, ALPHAS_CUMPROD, config)
    with StrictDevices():
        loss = loop.train_step(state, batch, solver, config)
    assert loss.device.type == "meta" and state.step == 1


def test_the_watch_catches_a_table_left_on_the_cpu():
    """What the old code did: the solver built on the CPU, indexed with the batch's device indices."""
    config = DistillConfig(batch=2, rank=2, alpha=2)
    state, batch = _on_meta(config)
    with StrictDevices(), pytest.raises(DeviceMixError, match="indexed by a meta index"):
        loop.train_step(state, batch, DDIMSolver.build(ALPHAS_CUMPROD), config)


def _gradients_stepped(accumulate: int, steps: int = 2) -> list[torch.Tensor]:
    """The gradients the optimizer really stepped with (a hook on the wrapped optimizer's step)."""
    config = DistillConfig(steps=steps, batch=8, rank=2, alpha=2, learning_rate=0.01, warmup=2)
    state = distill.start(tiny_unet(), config)
    stepped: list[torch.Tensor] = []
    state.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: stepped.append(
        torch.cat([p.grad.flatten() for group in optimizer.param_groups for p in group["params"]]).clone()))
    accelerator = loop.accelerator_for("cpu", accumulate=accumulate)
    loop.train(state, loop.GlobalDraws(_data()), ALPHAS_CUMPROD, config, accelerator, echo=lambda _: None,
               progress=False)
    return stepped


def test_gradient_accumulation_steps_once_per_global_batch_with_its_whole_gradient():
    """Two micro-batches of 4 per step: one optimizer step per global batch of 8, with the gradient of all 8
    (up to float noise: 1.3e-4 of its size measured). Compared on the first step, before Adam's first steps,
    which divide every gradient by its own size, make the noise of near-zero gradients visible in the LoRA
    of this tiny model; tests/test_distill_parallel.py compares whole LoRAs of the toy."""
    whole, in_two = _gradients_stepped(1), _gradients_stepped(2)
    assert len(whole) == len(in_two) == 2
    assert float((whole[0] - in_two[0]).norm() / whole[0].norm()) < 1e-3


def test_a_batch_that_does_not_split_is_refused(tmp_path, capsys):
    from lib_lcm.cli.main import main

    assert main(["distill", "--out", str(tmp_path), "--steps", "1", "--batch", "6", "--accumulate", "4"]) == 2
    err = capsys.readouterr().err
    assert "--batch 6 must split evenly over 1 process(es) x 4 accumulation step(s)" in err and "Traceback" not in err


def test_8_bit_adam_without_bitsandbytes_says_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError("none"))
                        if name == "bitsandbytes" else real(name, *a, **k))
    with pytest.raises(DistillError, match="pip install bitsandbytes"):
        distill.start(tiny_unet(), DistillConfig(rank=2, optimizer="adamw8bit"))


def test_gradient_checkpointing_computes_the_same_loss_and_gradients():
    config = DistillConfig(batch=2, rank=2, alpha=2)
    results = []
    for checkpointing in (False, True):
        unet = tiny_unet()
        if checkpointing:
            unet.enable_gradient_checkpointing()
        state = distill.start(unet, config)
        unet.train(checkpointing)  # diffusers checkpoints only in training mode
        batch = _data()(2, torch.Generator().manual_seed(0))
        draw = distill.Draw.sample(batch.latents.shape, SOLVER, config, torch.Generator().manual_seed(1))
        loss = distill.lcd_loss(unet, state.ema, batch, draw, SOLVER, config)
        loss.backward()
        results.append((loss.detach(), torch.cat([p.grad.flatten() for _, p in sorted(state.lora().items())])))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-7, rtol=1e-5)
