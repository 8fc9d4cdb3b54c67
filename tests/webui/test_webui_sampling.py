"""Our samplers inside the WebUI stand-ins: registration, the exact schedule, img2img, TCD, and CFG 1.

The stand-ins run the real call chain of A1111 1.10.1 (processing -> create_sampler ->
process_before_every_sampling -> KDiffusionSampler.sample/sample_img2img -> CFGDenoiser.forward ->
CompVisDenoiser -> apply_model) around the tiny random UNet of tests/sampling_support.py.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import TCDScheduler
from sampling_support import ALPHAS_CUMPROD, lcm_scheduler, tcd_scheduler

from lib_lcm.sampling.schedule import lcm_timesteps

pytestmark = pytest.mark.slow
ON = [True, 1.0, 4, 1.0]
SIZE = {"width": 64, "height": 64}


@pytest.fixture
def sd15(webui):
    from modules import sd_samplers

    webui.add_lora()
    webui.load_model(is_sd1=True, sampling=True)
    sd_samplers.get_sampler_and_scheduler.cache_clear()
    return webui


def model():
    from modules import shared

    return shared.sd_model


def test_tcd_is_registered_and_the_builtin_lcm_kept(webui):
    from modules import sd_samplers

    from lib_lcm.webui.samplers import is_ours

    assert is_ours(sd_samplers.all_samplers_map["TCD"])
    assert not is_ours(sd_samplers.all_samplers_map["LCM"])  # A1111 >= 1.8 has its own
    assert sd_samplers.samplers_map["k_tcd"] == "TCD"
    assert "TCD" in sd_samplers.visible_sampler_names()
    assert sd_samplers.get_sampler_and_scheduler("TCD", "Automatic") == ("TCD", "Automatic")


def test_registration_survives_reload_ui_without_duplicates(webui):
    from modules import scripts, sd_samplers
    from webui_env import SCRIPT_FILE

    scripts.load_script_classes(str(SCRIPT_FILE))  # Reload UI re-executes the file body
    scripts.load_script_classes(str(SCRIPT_FILE))
    names = [s.name for s in sd_samplers.all_samplers]
    assert names.count("TCD") == 1 and names.count("LCM") == 1


def test_a_stale_name_lookup_is_forgotten(webui, monkeypatch):
    """get_sampler_and_scheduler is functools.cache'd and maps unknown names to samplers[0]."""
    from modules import sd_samplers

    from lib_lcm.webui.samplers import register_samplers

    index = next(i for i, s in enumerate(sd_samplers.all_samplers) if s.name == "TCD")
    ours = sd_samplers.all_samplers.pop(index)
    del sd_samplers.all_samplers_map["TCD"]
    sd_samplers.get_sampler_and_scheduler.cache_clear()
    assert sd_samplers.get_sampler_and_scheduler("TCD", "Automatic")[0] == "Euler"
    register_samplers()
    assert sd_samplers.get_sampler_and_scheduler("TCD", "Automatic")[0] == "TCD"
    assert sd_samplers.all_samplers_map["TCD"].options == ours.options


def test_lcm_is_registered_where_the_webui_lacks_it(webui, monkeypatch):
    from modules import sd_samplers

    from lib_lcm.webui.samplers import is_ours, register_samplers

    without = [s for s in sd_samplers.all_samplers if s.name != "LCM"]
    monkeypatch.setattr(sd_samplers, "all_samplers", without)
    monkeypatch.setattr(sd_samplers, "all_samplers_map", {s.name: s for s in without})
    assert register_samplers() == ["LCM", "TCD"]
    assert is_ours(sd_samplers.all_samplers_map["LCM"]) and sd_samplers.samplers_map["k_lcm"] == "LCM"


def test_forge_add_sampler_by_another_extension_keeps_ours(webui, monkeypatch):
    """Forge's add_sampler rebinds all_samplers_map from all_samplers; ours is in that list."""
    from modules import sd_samplers, sd_samplers_common

    monkeypatch.setattr(sd_samplers, "all_samplers", list(sd_samplers.all_samplers))
    sd_samplers.forge_add_sampler(sd_samplers_common.SamplerData("Other", None, [], {}))
    assert "TCD" in sd_samplers.all_samplers_map and "Other" in sd_samplers.all_samplers_map


def test_another_extensions_tcd_is_left_alone(webui, monkeypatch):
    from modules import sd_samplers, sd_samplers_common

    from lib_lcm.webui.samplers import register_samplers

    theirs = sd_samplers_common.SamplerData("TCD", None, [], {})
    monkeypatch.setitem(sd_samplers.all_samplers_map, "TCD", theirs)
    assert register_samplers() == []
    assert sd_samplers.all_samplers_map["TCD"] is theirs


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, (999, 759, 499, 259)),
    ({"init_images": ["image"], "denoising_strength": 0.5}, (499, 379, 259, 139)),
    ({"is_hr_pass": True, "hr_second_pass_steps": 2, "denoising_strength": 0.5}, (499, 259)),
])
def test_get_sigmas_needs_nothing_but_its_arguments(sd15, fields, expected):
    """A fresh sampler answers get_sigmas(p, steps) at once, with no sample() before it."""
    from modules import processing

    from lib_lcm.webui.attributes import EXACT_ATTR
    from lib_lcm.webui.exact_sampler import ExactSampler

    p = processing.StableDiffusionProcessingTxt2Img(prompt="a cat", steps=4, **SIZE)
    p.__dict__.update(fields)
    setattr(p, EXACT_ATTR, True)
    sampler = ExactSampler("LCM", model())
    sigmas = sampler.get_sigmas(p, 10)
    exact = sampler.schedule.sigmas_for(expected)
    assert torch.equal(sigmas[-len(exact):], exact) and len(sigmas) == 11  # padded in front to the steps asked
    assert torch.equal(sigmas[: 11 - len(exact)], exact[:1].repeat(11 - len(exact)))


def test_txt2img_runs_the_reference_timesteps_and_keeps_the_name_lcm(sd15):
    p, processed = sd15.txt2img(ON, steps=20, scheduler="Karras", **SIZE)
    from lib_lcm.webui.exact_sampler import ExactSampler

    assert isinstance(p.sampler, ExactSampler)
    assert model().timesteps_called() == [999, 759, 499, 259]
    assert all(t == int(t) for _, ts in model().calls for t in ts)  # whole timesteps, never interpolated
    text = processed.infotexts[0]
    assert "Sampler: LCM" in text and 'LCM-LoRA timesteps: "999,759,499,259"' in text


@pytest.mark.parametrize("steps", [2, 5, 8])
def test_step_counts_where_the_webuis_schedules_differ(sd15, steps):
    sd15.txt2img([True, 1.0, steps, 1.0], **SIZE)
    assert model().timesteps_called() == list(lcm_timesteps(steps))


def test_cfg_1_skips_the_unconditional_pass_and_gives_the_same_image(sd15):
    from modules import shared

    p, processed = sd15.txt2img(ON, batch_size=2, negative_prompt="blurry", **SIZE)
    skipped, calls = p.samples, list(model().calls)
    assert [batch for batch, _ in calls] == [2, 2, 2, 2]  # the cond half only
    text = processed.infotexts[0]
    assert "LCM-LoRA uncond: skipped at CFG 1" in text and "Skip Early CFG" not in text
    assert "skip_early_cond" not in vars(shared.opts) and shared.opts.skip_early_cond == 0.0
    assert shared.opts.data["skip_early_cond"] == 0.0
    assert "negative prompt has no effect" in processed.comments

    model().calls.clear()
    shared.opts.lcm_lora_skip_uncond = False
    p, processed = sd15.txt2img(ON, batch_size=2, negative_prompt="blurry", **SIZE)
    assert [batch for batch, _ in model().calls] == [4, 4, 4, 4]  # what A1111 computes by itself
    assert "LCM-LoRA uncond" not in processed.infotexts[0]
    assert (p.samples - skipped).abs().max() <= 1e-5


@pytest.mark.parametrize(("prompt", "cfg", "skips"), [
    ("a cat AND a hat :0.5", 1.0, False),  # weights 1.5: CFG 1 still depends on the uncond
    ("a cat AND a hat :0", 1.0, True),
    ("a cat", 1.5, False),
])
def test_skip_only_where_it_is_exact(sd15, prompt, cfg, skips):
    _, processed = sd15.txt2img([True, 1.0, 4, cfg], prompt=prompt, **SIZE)
    assert ("LCM-LoRA uncond" in processed.infotexts[0]) is skips
    parts = len(prompt.split(" AND "))  # one cond row per AND-part, plus one uncond row unless skipped
    assert [batch for batch, _ in model().calls] == [parts + (0 if skips else 1)] * 4


def test_a_user_skip_early_cond_setting_is_kept(sd15):
    from modules import shared

    shared.opts.skip_early_cond = 0.25
    _, processed = sd15.txt2img(ON, **SIZE)
    assert "Skip Early CFG: 0.25" in processed.infotexts[0]
    assert shared.opts.skip_early_cond == 0.25


def diffusers_reference(scheduler, seed, monkeypatch, **step_kwargs):
    """diffusers' loop on the same UNet, prompt and noise as the WebUI run with ``seed``.

    The stand-in ImageRNG draws the initial noise first, then whatever the sampler asks for; here
    the scheduler's step noise (``randn_tensor``) is taken from the same generator in the same order.
    """
    import diffusers.schedulers.scheduling_lcm as lcm_module
    import diffusers.schedulers.scheduling_tcd as tcd_module

    generator = torch.Generator().manual_seed(seed)
    draw = lambda *args, **kwargs: torch.randn((1, 4, 8, 8), generator=generator)  # noqa: E731
    monkeypatch.setattr(lcm_module, "randn_tensor", draw)
    monkeypatch.setattr(tcd_module, "randn_tensor", draw)
    sigma_max = ((1 - ALPHAS_CUMPROD[999]) / ALPHAS_CUMPROD[999]).sqrt()
    # The WebUI starts from noise * sigma_max (k-diffusion's scale); diffusers' scale is that * sqrt(alpha).
    latents = draw() * sigma_max * ALPHAS_CUMPROD[999].sqrt()
    context = model().get_learned_conditioning(["a cat"])
    denoised = latents
    for t in scheduler.timesteps:
        eps = model().unet.eps(latents, int(t), context)
        latents, denoised = scheduler.step(eps, t, latents, return_dict=False, **step_kwargs)
    # The LCM pipelines decode the last ``denoised``; TCD is used with the plain pipelines' ``latents``.
    return latents if isinstance(scheduler, TCDScheduler) else denoised


def test_webui_path_equals_diffusers_lcm(sd15, monkeypatch):
    """txt2img through processing, the hook, KDiffusionSampler and CFGDenoiser vs LCMScheduler."""
    p, _ = sd15.txt2img(ON, seed=5, **SIZE)
    scheduler = lcm_scheduler()
    scheduler.set_timesteps(4)
    assert (p.samples - diffusers_reference(scheduler, 5, monkeypatch)).abs().max() <= 1e-5


@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_webui_path_equals_diffusers_tcd(sd15, monkeypatch, gamma):
    from modules import shared

    shared.opts.lcm_lora_tcd_gamma = gamma
    p, _ = sd15.txt2img(ON, sampler_name="TCD", seed=9, ui=False, **SIZE)
    scheduler = tcd_scheduler()
    scheduler.set_timesteps(4)
    assert (p.samples - diffusers_reference(scheduler, 9, monkeypatch, eta=gamma)).abs().max() <= 1e-5


@pytest.mark.parametrize("strength", [0.3, 0.5, 0.75, 1.0])
def test_img2img_runs_every_step_on_the_shortened_schedule(sd15, strength):
    _, processed = sd15.img2img(ON, denoising_strength=strength, **SIZE)
    expected = lcm_timesteps(4, strength)
    assert model().timesteps_called() == list(expected)
    assert f'LCM-LoRA timesteps: "{",".join(map(str, expected))}"' in processed.infotexts[0]


def test_img2img_with_a_strength_too_low_for_the_steps_says_so(sd15):
    _, processed = sd15.img2img([True, 1.0, 8, 1.0], denoising_strength=0.1, **SIZE)
    assert model().timesteps_called() == list(lcm_timesteps(5, 0.1))
    assert "5 of 8 steps ran" in processed.infotexts[0]


def test_hires_pass_uses_its_own_steps_and_strength(sd15):
    _, processed = sd15.txt2img(ON, enable_hr=True, hr_second_pass_steps=2, denoising_strength=0.5, **SIZE)
    assert model().timesteps_called() == [*lcm_timesteps(4), *lcm_timesteps(2, 0.5)]
    assert 'LCM-LoRA hires timesteps: "499,259"' in processed.infotexts[0]


def test_tcd_chosen_in_the_dropdown_is_kept_with_its_gamma_not_the_webuis_eta(sd15):
    from modules import shared

    shared.opts.eta_ancestral = 1.0  # what Sampler.initialize would hand a parameter named eta
    p, processed = sd15.txt2img(ON, sampler_name="TCD", seed=5, ui=False, **SIZE)
    text = processed.infotexts[0]
    assert "Sampler: TCD" in text and "TCD gamma: 0.3" in text and "Eta" not in text
    assert model().timesteps_called() == [999, 759, 499, 259]

    shared.opts.lcm_lora_tcd_gamma = 0.0  # deterministic: only the initial noise matters
    p0, processed = sd15.txt2img(ON, sampler_name="TCD", seed=5, ui=False, **SIZE)
    assert "TCD gamma: 0.0" in processed.infotexts[0]
    assert not torch.equal(p.samples, p0.samples)


def test_tcd_without_the_accordion_follows_the_schedule_dropdown(sd15):
    _, processed = sd15.txt2img([False], sampler_name="TCD", scheduler="Automatic", steps=4, ui=False, **SIZE)
    assert model().timesteps_called() == [999, 759, 499, 259]
    model().calls.clear()
    _, processed = sd15.txt2img([False], sampler_name="TCD", scheduler="Karras", steps=4, ui=False, **SIZE)
    called = model().timesteps_called()
    assert called != [999, 759, 499, 259] and len(called) == 4
    assert "LCM-LoRA timesteps" not in processed.infotexts[0]


def test_the_builtin_lcm_is_untouched_without_the_accordion(sd15):
    p, _ = sd15.txt2img([False], sampler_name="LCM", scheduler="Automatic", steps=4, ui=False,
                          **SIZE)
    from lib_lcm.webui.exact_sampler import ExactSampler

    assert not isinstance(p.sampler, ExactSampler)
    assert model().timesteps_called() == [999, 679, 339, 19]  # the WebUI's own "Automatic" LCM schedule


def test_exact_schedule_can_be_turned_off(sd15):
    from modules import shared

    shared.opts.lcm_lora_exact_schedule = False
    p, processed = sd15.txt2img(ON, **SIZE)
    from lib_lcm.webui.exact_sampler import ExactSampler

    assert not isinstance(p.sampler, ExactSampler)
    assert "LCM-LoRA timesteps" not in processed.infotexts[0]


def test_explicit_timesteps_setting_dmd2(sd15):
    from modules import shared

    shared.opts.lcm_lora_timesteps = "999, 749, 499, 249"
    _, processed = sd15.txt2img(ON, **SIZE)
    assert model().timesteps_called() == [999, 749, 499, 249]
    assert 'LCM-LoRA explicit timesteps: "999,749,499,249"' in processed.infotexts[0]
    model().calls.clear()
    sd15.img2img(ON, denoising_strength=0.5, **SIZE)
    assert model().timesteps_called() == [499, 249]


def test_a_broken_explicit_timesteps_setting_is_reported_and_ignored(sd15):
    from modules import shared

    shared.opts.lcm_lora_timesteps = "999, 100, 500"
    _, processed = sd15.txt2img(ON, **SIZE)
    assert model().timesteps_called() == [999, 759, 499, 259]
    assert "strictly descending" in processed.infotexts[0]


def test_other_samplers_are_never_swapped(sd15):
    from modules import shared

    from lib_lcm.webui.exact_sampler import ExactSampler

    shared.opts.lcm_lora_set_sampler = False  # the user keeps Euler with the accordion on
    p, processed = sd15.txt2img(ON, sampler_name="Euler", ui=False, **SIZE)
    assert p.sampler_name == "Euler" and not isinstance(p.sampler, ExactSampler)
    assert "LCM-LoRA timesteps" not in processed.infotexts[0]


def test_forge_skips_the_uncond_pass_itself(sd15, monkeypatch):
    """On Forge nothing is shadowed: its sampling_function drops the uncond at CFG 1 on its own."""
    from modules import shared

    from lib_lcm.webui import compat

    monkeypatch.setattr(compat, "is_forge", lambda: True)
    _, processed = sd15.txt2img(ON, **SIZE)
    assert "LCM-LoRA uncond" not in processed.infotexts[0] and "skip_early_cond" not in vars(shared.opts)


def test_the_dmd2_preset_runs_its_training_timesteps_whatever_the_setting(webui):
    from modules import sd_samplers, shared

    webui.add_lora("lcm-lora-sdxl", name="dmd2_sdxl_4step_lora_fp16")
    webui.load_model("checkpoint-sdxl", is_sdxl=True, sampling=True)
    sd_samplers.get_sampler_and_scheduler.cache_clear()
    shared.opts.lcm_lora_timesteps = "999, 500"  # the preset's own timesteps win over the setting
    p, processed = webui.txt2img([True, 1.0, 8, 2.0, "DMD2"], steps=20, sampler_name="Euler a", **SIZE)
    assert (p.sampler_name, p.steps, p.cfg_scale) == ("LCM", 4, 1.0)
    assert model().timesteps_called() == [999, 749, 499, 249]
    text = processed.infotexts[0]
    assert 'LCM-LoRA explicit timesteps: "999,749,499,249"' in text and "LCM-LoRA preset: DMD2" in text
    assert "<lora:dmd2_sdxl_4step_lora_fp16:1>" in p.all_prompts[0]


def test_the_lightning_preset_runs_the_webuis_euler_on_sgm_uniform(webui):
    from modules import sd_samplers

    webui.add_lora("lcm-lora-sdxl", name="sdxl_lightning_4step_lora")
    webui.load_model("checkpoint-sdxl", is_sdxl=True, sampling=True)
    sd_samplers.get_sampler_and_scheduler.cache_clear()
    p, processed = webui.txt2img([True, 1.0, 4, 1.0, "SDXL-Lightning"], steps=20, **SIZE)
    from lib_lcm.webui.exact_sampler import ExactSampler

    assert (p.sampler_name, p.scheduler, p.steps) == ("Euler", "SGM Uniform", 4)
    assert not isinstance(p.sampler, ExactSampler)
    assert "LCM-LoRA timesteps" not in processed.infotexts[0]


def test_cfg_1_keeps_the_unconditional_pass_when_animatediff_is_on(sd15, monkeypatch):
    """AnimateDiff's before_process writes its infotext entry before our process; its CFG hook needs the
    uncond rows (scripts/animatediff_infv2v.py), so CFG 1 must not skip them."""
    from modules import scripts

    class AnimateDiffStandIn(scripts.Script):  # only its infotext entry, written in before_process
        def title(self):
            return "AnimateDiff"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def before_process(self, p, *args):
            p.extra_generation_params["AnimateDiff"] = "model: mm.safetensors, video_length: 2"

    sd15.classes = [AnimateDiffStandIn, *sd15.classes]
    _, processed = sd15.txt2img(ON, batch_size=2, **SIZE)
    assert [batch for batch, _ in model().calls] == [4, 4, 4, 4]
    text = processed.infotexts[0]
    assert "LCM-LoRA uncond: kept for AnimateDiff" in text and "needs the unconditional pass" in text
