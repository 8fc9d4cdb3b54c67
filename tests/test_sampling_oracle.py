"""Our samplers against diffusers' LCMScheduler / TCDScheduler loops on a tiny random UNet (fp32, CPU).

Same UNet, latents, prompt embeddings and seed on both sides; ours runs behind a k-diffusion-style
denoiser, as in the WebUI. The bar is max |difference| <= 1e-5.
"""

from __future__ import annotations

import pytest
import torch
from sampling_support import (
    LATENT,
    CountingUnet,
    KDiffusionStyleDenoiser,
    conditioning,
    diffusers_loop,
    lcm_scheduler,
    schedule_of,
    seeded_noise,
    tcd_scheduler,
    tiny_unet,
)

from lib_lcm.rules import catalog
from lib_lcm.sampling.samplers import sample_lcm, sample_tcd
from lib_lcm.sampling.schedule import explicit_timesteps, lcm_timesteps

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5

DMD2 = catalog.by_key("dmd2-sdxl")


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


def _start(seed: int = 7) -> torch.Tensor:
    return torch.randn(LATENT, generator=torch.Generator().manual_seed(seed))


def _txt2img_pair(scheduler, unet, sampler, timesteps, cfg=1.0, **kwargs):
    """(diffusers result, ours, our UNet timesteps) for txt2img from the same pure noise."""
    c = conditioning(scale=cfg)
    schedule = schedule_of(scheduler)
    noise = _start()
    reference = diffusers_loop(scheduler, CountingUnet(unet), noise, c, seed=3, **_diffusers_kwargs(kwargs))
    ours_unet = CountingUnet(unet)
    sigmas = schedule.sigmas_for(timesteps)
    # diffusers starts from latents = noise (init_noise_sigma 1) at t = 999: x_ve = x_vp / sqrt(alpha)
    x = noise * (1 + sigmas[0] ** 2) ** 0.5
    ours = sampler(KDiffusionStyleDenoiser(ours_unet, schedule, c), x, sigmas,
                   noise_sampler=seeded_noise(x.shape, 3), schedule=schedule, **kwargs)
    return reference, ours, ours_unet.timesteps


def _diffusers_kwargs(kwargs):
    return {"eta": kwargs["gamma"]} if "gamma" in kwargs else {}


def _assert_close(reference, ours):
    difference = (reference - ours).abs().max().item()
    assert difference <= TOLERANCE, f"max |difference| {difference:.2e} > {TOLERANCE}"
    assert 0.5 < reference.abs().max() < 20  # SD-sized latents, not two zeros


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 6, 7, 8, 12, 25])
def test_lcm_txt2img_matches_diffusers(unet, steps):
    scheduler = lcm_scheduler()
    scheduler.set_timesteps(steps)
    reference, ours, visited = _txt2img_pair(scheduler, unet, sample_lcm, lcm_timesteps(steps))
    assert visited == scheduler.timesteps.tolist()
    _assert_close(reference, ours)


@pytest.mark.parametrize("cfg", [1.5, 2.5])
def test_lcm_with_guidance_matches_diffusers(unet, cfg):
    scheduler = lcm_scheduler()
    scheduler.set_timesteps(4)
    reference, ours, _ = _txt2img_pair(scheduler, unet, sample_lcm, lcm_timesteps(4), cfg=cfg)
    _assert_close(reference, ours)


@pytest.mark.parametrize("strength", [0.3, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("steps", [2, 4, 8])
def test_lcm_img2img_matches_diffusers(unet, steps, strength):
    """As ``LatentConsistencyModelImg2ImgPipeline``: every step runs, on the strength-truncated grid."""
    scheduler = lcm_scheduler()
    scheduler.set_timesteps(steps, strength=strength)
    timesteps = lcm_timesteps(steps, strength)
    assert list(timesteps) == scheduler.timesteps.tolist()
    schedule, c = schedule_of(scheduler), conditioning()
    image_latents, noise = _start(11), _start(12)
    start = scheduler.timesteps[:1]
    reference = diffusers_loop(scheduler, CountingUnet(unet), scheduler.add_noise(image_latents, noise, start), c, 3)
    sigmas = schedule.sigmas_for(timesteps)
    ours_unet = CountingUnet(unet)
    ours = sample_lcm(KDiffusionStyleDenoiser(ours_unet, schedule, c), image_latents + noise * sigmas[0], sigmas,
                      noise_sampler=seeded_noise(noise.shape, 3), schedule=schedule)
    assert ours_unet.calls == steps
    _assert_close(reference, ours)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_tcd_matches_diffusers(unet, steps, gamma):
    scheduler = tcd_scheduler()
    scheduler.set_timesteps(steps)
    reference, ours, visited = _txt2img_pair(scheduler, unet, sample_tcd, lcm_timesteps(steps), gamma=gamma)
    assert visited == scheduler.timesteps.tolist()
    _assert_close(reference, ours)


def test_tcd_img2img_matches_diffusers(unet):
    scheduler = tcd_scheduler()
    scheduler.set_timesteps(4, strength=0.5)
    schedule, c = schedule_of(scheduler), conditioning()
    image_latents, noise = _start(11), _start(12)
    reference = diffusers_loop(scheduler, CountingUnet(unet),
                               scheduler.add_noise(image_latents, noise, scheduler.timesteps[:1]), c, 3, eta=0.3)
    sigmas = schedule.sigmas_for(lcm_timesteps(4, 0.5))
    ours = sample_tcd(KDiffusionStyleDenoiser(CountingUnet(unet), schedule, c), image_latents + noise * sigmas[0],
                      sigmas, noise_sampler=seeded_noise(noise.shape, 3), schedule=schedule, gamma=0.3)
    _assert_close(reference, ours)


@pytest.mark.parametrize("sampler", ["lcm", "tcd"])
def test_dmd2_explicit_timesteps_match_diffusers(unet, sampler):
    scheduler = lcm_scheduler() if sampler == "lcm" else tcd_scheduler()
    scheduler.set_timesteps(timesteps=list(DMD2.timesteps))
    function, kwargs = (sample_lcm, {}) if sampler == "lcm" else (sample_tcd, {"gamma": 0.3})
    reference, ours, visited = _txt2img_pair(scheduler, unet, function, explicit_timesteps(DMD2.timesteps), **kwargs)
    assert visited == [999, 749, 499, 249]
    _assert_close(reference, ours)


def test_each_model_call_is_one_batch_at_cfg_1(unet):
    """At CFG 1 the sampler itself never asks for an unconditional pass: one call per step."""
    schedule = schedule_of(lcm_scheduler())
    counting = CountingUnet(unet)
    sigmas = schedule.sigmas_for(lcm_timesteps(4))
    sample_lcm(KDiffusionStyleDenoiser(counting, schedule, conditioning()), _start() * sigmas[0], sigmas,
               noise_sampler=seeded_noise(LATENT, 0), schedule=schedule)
    assert (counting.calls, counting.latents) == (4, 4 * LATENT[0])
