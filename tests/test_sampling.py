"""lib_lcm.sampling.schedule without a UNet: schedules, scalings, errors, and golden numbers in diffusers' style.

Every expected value below was printed by diffusers 0.35.2 (LCMScheduler / TCDScheduler; the fake
epsilon model below stepped from the same start with ``torch.Generator().manual_seed(0)``);
ours must reproduce them.
"""

from __future__ import annotations

import pytest
import torch

from lib_lcm.rules import catalog
from lib_lcm.sampling.samplers import sample_lcm, sample_tcd
from lib_lcm.sampling.schedule import (
    NoiseSchedule,
    ScheduleError,
    boundary_scalings,
    explicit_timesteps,
    lcm_timesteps,
    pass_schedule,
    steps_fitting_strength,
)

SCHEDULE = NoiseSchedule.scaled_linear()

DMD2 = catalog.by_key("dmd2-sdxl")


def fake_eps(x_vp: torch.Tensor, t: int) -> torch.Tensor:
    return (1 - SCHEDULE.alphas_cumprod[t]).sqrt() * x_vp + 0.05 * torch.sin(3 * x_vp) * (t / 1000)


def fake_denoiser(calls: list[int]):
    """k-diffusion convention around ``fake_eps``: VE input, x0 output."""

    def model(x, sigma):
        t = SCHEDULE.timestep(sigma[0])
        calls.append(t)
        s = sigma.view(-1, 1, 1, 1)
        return x - s * fake_eps(x / (s**2 + 1) ** 0.5, t)

    return model


def _start() -> torch.Tensor:
    return torch.linspace(-2, 2, 64, dtype=torch.float32).reshape(1, 4, 4, 4)


def _noise():
    generator = torch.Generator().manual_seed(0)
    return lambda sigma, sigma_next: torch.randn((1, 4, 4, 4), generator=generator)


@pytest.mark.parametrize(("steps", "expected"), [
    (1, (999,)),
    (2, (999, 499)),
    (3, (999, 679, 339)),
    (4, (999, 759, 499, 259)),
    (5, (999, 799, 599, 399, 199)),  # the WebUI's "SGM Uniform" differs here
    (6, (999, 839, 679, 499, 339, 179)),
    (8, (999, 879, 759, 639, 499, 379, 259, 139)),
])
def test_lcm_timesteps_golden(steps, expected):
    assert lcm_timesteps(steps) == expected


@pytest.mark.parametrize(("steps", "strength", "expected"), [
    (4, 0.5, (499, 379, 259, 139)),
    (4, 0.75, (739, 559, 379, 199)),
    (4, 0.3, (299, 239, 159, 79)),
    (2, 0.3, (299, 159)),
])
def test_img2img_keeps_every_step_on_the_truncated_grid(steps, strength, expected):
    assert lcm_timesteps(steps, strength) == expected


def test_25_and_50_steps_use_the_whole_grid():
    assert lcm_timesteps(50) == tuple(range(999, 0, -20))
    assert len(set(lcm_timesteps(25))) == 25


@pytest.mark.parametrize(("call", "message"), [
    (lambda: lcm_timesteps(0), "at least 1"),
    (lambda: lcm_timesteps(51), "use at most 50 steps"),
    (lambda: lcm_timesteps(8, 0.1), "use at most 5 steps or a strength of at least 0.16"),
    (lambda: lcm_timesteps(4, 0.0), "must lie in (0, 1]"),
    (lambda: lcm_timesteps(4, 1.5), "must lie in (0, 1]"),
    (lambda: explicit_timesteps([999, 999, 10]), "strictly descending"),
    (lambda: explicit_timesteps([1000, 10]), "0..999"),
    (lambda: explicit_timesteps([]), "at least one"),
    (lambda: explicit_timesteps(DMD2.timesteps, 0.2), "at least 0.25"),
])
def test_errors_say_what_to_change(call, message):
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        call()


def test_explicit_timesteps_keep_the_tail_for_img2img():
    assert explicit_timesteps(DMD2.timesteps) == DMD2.timesteps
    assert explicit_timesteps(DMD2.timesteps, 0.5) == (499, 249)
    assert explicit_timesteps(DMD2.timesteps, 0.6) == (499, 249)


@pytest.mark.parametrize(("steps", "strength", "expected"), [(4, 1.0, 4), (8, 0.1, 5), (4, 0.01, 1), (4, 0.0, 1)])
def test_steps_fitting_strength(steps, strength, expected):
    assert steps_fitting_strength(steps, strength) == expected


def test_boundary_scalings():
    c_skip, c_out = boundary_scalings(999)
    assert c_skip == pytest.approx(0.25 / (9990**2 + 0.25), rel=1e-12)
    assert c_out == pytest.approx(9990 / (9990**2 + 0.25) ** 0.5, rel=1e-12)
    assert boundary_scalings(0) == (1.0, 0.0)  # the consistency function is the identity at t = 0


def test_schedule_maps_table_sigmas_to_their_timesteps():
    assert [SCHEDULE.timestep(SCHEDULE.sigma(t)) for t in (0, 19, 259, 749, 999)] == [0, 19, 259, 749, 999]
    assert SCHEDULE.sigma(999).item() == pytest.approx(14.6146, abs=1e-3)  # SD 1.5's sigma_max
    sigmas = SCHEDULE.sigmas_for((999, 499))
    assert sigmas[-1] == 0 and sigmas[0] == SCHEDULE.sigma(999)
    rebuilt = NoiseSchedule.from_sigmas(SCHEDULE.sigmas)
    assert torch.allclose(rebuilt.alphas_cumprod.float(), SCHEDULE.alphas_cumprod, rtol=1e-6)


def test_lcm_golden_numbers():
    calls: list[int] = []
    x = _start() * (1 + SCHEDULE.sigma(999) ** 2) ** 0.5
    out = sample_lcm(fake_denoiser(calls), x, SCHEDULE.sigmas_for(lcm_timesteps(4)),
                     noise_sampler=_noise(), schedule=SCHEDULE)
    assert calls == [999, 759, 499, 259]
    assert out.sum().item() == pytest.approx(-1.7518301010131836, abs=1e-5)
    assert out.abs().sum().item() == pytest.approx(24.478914260864258, rel=1e-6)
    assert out[0, 0, 0, :2].tolist() == pytest.approx([-0.6154411435127258, -0.019034869968891144], abs=1e-6)


def test_tcd_golden_numbers():
    calls: list[int] = []
    x = _start() * (1 + SCHEDULE.sigma(999) ** 2) ** 0.5
    out = sample_tcd(fake_denoiser(calls), x, SCHEDULE.sigmas_for(lcm_timesteps(4)),
                     noise_sampler=_noise(), schedule=SCHEDULE, gamma=0.3)
    assert calls == [999, 759, 499, 259]
    assert out.sum().item() == pytest.approx(0.3932149410247803, abs=1e-5)
    assert out.abs().sum().item() == pytest.approx(33.69483947753906, rel=1e-6)
    assert out[0, 0, 0, :2].tolist() == pytest.approx([-1.3668748140335083, -0.5100847482681274], abs=1e-6)


def test_any_scheduler_sigmas_are_snapped_to_timesteps():
    """With the dropdown's sigmas (not ours) the model still sees whole timesteps only."""
    calls: list[int] = []
    karras_like = torch.tensor([14.0, 3.1, 0.9, 0.2, 0.0])
    sample_lcm(fake_denoiser(calls), _start() * 14.0, karras_like, noise_sampler=_noise(), schedule=SCHEDULE)
    assert calls == [SCHEDULE.timestep(s) for s in karras_like[:-1]]
    assert all(SCHEDULE.sigma(t) != s for t, s in zip(calls, karras_like.tolist(), strict=False))


def test_noise_comes_only_from_the_noise_sampler():
    draws: list[tuple[float, float]] = []

    def noise(sigma, sigma_next):
        draws.append((float(sigma), float(sigma_next)))
        return torch.zeros(1, 4, 4, 4)

    sample_lcm(fake_denoiser([]), _start(), SCHEDULE.sigmas_for(lcm_timesteps(4)), noise_sampler=noise,
               schedule=SCHEDULE)
    assert len(draws) == 3  # between steps only
    draws.clear()
    sample_tcd(fake_denoiser([]), _start(), SCHEDULE.sigmas_for(lcm_timesteps(4)), noise_sampler=noise,
               schedule=SCHEDULE, gamma=0.0)
    assert draws == []  # gamma 0 is deterministic


def test_callback_reports_each_step():
    seen: list[int] = []
    sample_lcm(fake_denoiser([]), _start(), SCHEDULE.sigmas_for(lcm_timesteps(3)), noise_sampler=_noise(),
               schedule=SCHEDULE, callback=lambda d: seen.append(d["i"]))
    assert seen == [0, 1, 2]


def test_tcd_rejects_gamma_outside_0_1():
    with pytest.raises(ScheduleError, match="gamma"):
        sample_tcd(fake_denoiser([]), _start(), SCHEDULE.sigmas_for((999,)), schedule=SCHEDULE, gamma=1.5)


@pytest.mark.parametrize(("count", "strength", "kept"), [(4, 0.5, 2), (4, 0.1, 1), (22, 0.7, 15), (3, 1.0, 3)])
def test_pass_schedule_keeps_the_tail_of_explicit_timesteps(count, strength, kept):
    """int(22 * 0.7) = 15 kept; turning 15 back into the ratio 15 / 22 and multiplying again gave 14."""
    explicit = tuple(range(999, 999 - 40 * count, -40))
    schedule = pass_schedule(4, strength, explicit)
    assert schedule.timesteps == explicit[-kept:] and schedule.note == ""


def test_pass_schedule_fits_steps_to_a_low_strength_and_says_so():
    schedule = pass_schedule(8, 0.1)
    assert schedule.timesteps == lcm_timesteps(5, 0.1) and "5 of 8 steps ran" in schedule.note
    assert pass_schedule(4, 0.0).timesteps == (19,)  # below 1/50: one step at the grid's lowest timestep


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("sampler", ["lcm", "tcd"])
def test_half_precision_latents_stay_half_and_agree_with_float32(sampler, dtype):
    """The WebUI samples in the model's half precision on GPUs: every table value follows x's dtype."""
    def run(precision):
        calls: list[int] = []
        x = (_start() * (1 + SCHEDULE.sigma(999) ** 2) ** 0.5).to(precision)
        draw = _noise()
        function, extra = (sample_tcd, {"gamma": 0.3}) if sampler == "tcd" else (sample_lcm, {})
        return function(fake_denoiser(calls), x, SCHEDULE.sigmas_for(lcm_timesteps(4)).to(precision),
                        noise_sampler=lambda s, n: draw(s, n).to(precision), schedule=SCHEDULE, **extra)

    half, full = run(dtype), run(torch.float32)
    assert half.dtype == dtype and torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), full, atol=0.05, rtol=0.02)
