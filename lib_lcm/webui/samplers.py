"""LCM and TCD inside the WebUI: registration, and the sampler class that runs lib_lcm.sampling.schedule.

- ``register_samplers()`` adds "TCD", and "LCM" only where the WebUI has none, to the registry
  of ``modules/sd_samplers.py`` (guide section 8: append, map, ``set_samplers()``, clear the
  ``get_sampler_and_scheduler`` cache). It runs from the scripts/ file body, so Reload UI repeats
  it; repeating changes nothing.
- ``ExactSampler`` is a ``KDiffusionSampler`` (``modules/sd_samplers_kdiffusion.py``) whose
  function is ours. With the accordion on, or with the "Automatic" schedule, it visits the
  reference timesteps: it hands the parent its own sigmas from ``get_sigmas`` and, for img2img
  and hires, asks the parent for an exact step count, so every requested step runs on the
  strength-shortened schedule as in diffusers.
- ``use_exact_sampler(p)`` (``process_before_every_sampling``) swaps the WebUI's own "LCM"
  sampler object for our exact twin when the accordion is on; ``p.sampler_name`` stays "LCM".
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from lib_lcm.rules import infotext
from lib_lcm.rules.settings import Settings
from lib_lcm.sampling.schedule import (
    NoiseSchedule,
    ScheduleError,
    parse_timesteps,
    pass_schedule,
    sample_lcm,
    sample_tcd,
)
from lib_lcm.webui import compat

LCM = "LCM"
TCD = "TCD"
EXACT_ATTR = "lcm_lora_exact"  # set on p by the accordion: run the reference schedule
TIMESTEPS_ATTR = "lcm_lora_timesteps"  # set on p by the accordion: the preset's explicit timesteps (DMD2)
_MARK = "lcm_lora"  # key in SamplerData.options that marks our registrations
_ALIASES = {LCM: ["k_lcm"], TCD: ["k_tcd"]}


def register_samplers() -> list[str]:
    """Make "TCD" (and "LCM" where missing) selectable; returns the names that are ours."""
    from modules import sd_samplers

    ours = []
    for name in (LCM, TCD):
        existing = sd_samplers.all_samplers_map.get(name)
        if existing is not None and not is_ours(existing):
            continue  # the WebUI's own LCM (A1111 >= 1.8, Forge) or another extension's sampler
        _put(sd_samplers, sampler_data(name))
        ours.append(name)
    sd_samplers.set_samplers()
    cached = getattr(sd_samplers, "get_sampler_and_scheduler", None)
    if hasattr(cached, "cache_clear"):  # it resolved unknown names to samplers[0] before we existed
        cached.cache_clear()
    return ours


def sampler_data(name: str) -> Any:
    from modules import sd_samplers_common

    return sd_samplers_common.SamplerData(name, functools.partial(_construct, name), list(_ALIASES[name]),
                                          {_MARK: True})


def is_ours(data: Any) -> bool:
    return bool(getattr(data, "options", {}).get(_MARK))


def use_exact_sampler(p: Any) -> None:
    """Replace the WebUI's "LCM" sampler object by ours just before it samples (accordion on only)."""
    sampler = getattr(p, "sampler", None)
    if not getattr(p, EXACT_ATTR, False) or sampler is None or isinstance(sampler, exact_sampler_class()):
        return
    config = getattr(sampler, "config", None)
    if getattr(config, "name", None) != LCM:
        return
    twin = _construct(LCM, p.sd_model)
    twin.config = sampler_data(LCM)
    p.sampler = twin


def _put(sd_samplers: Any, data: Any) -> None:
    names = [s.name for s in sd_samplers.all_samplers]
    if data.name in names:  # our own entry from before a Reload UI
        sd_samplers.all_samplers[names.index(data.name)] = data
    else:
        sd_samplers.all_samplers.append(data)
    sd_samplers.all_samplers_map[data.name] = data


def _construct(name: str, sd_model: Any) -> Any:
    return exact_sampler_class()(name, sd_model)


@functools.cache
def exact_sampler_class() -> type:
    """Defined on first use: ``modules.sd_samplers_kdiffusion`` needs a started WebUI to import."""
    from modules import sd_samplers_kdiffusion

    class ExactSampler(sd_samplers_kdiffusion.KDiffusionSampler):
        def __init__(self, name: str, sd_model: Any) -> None:
            self.kind = name
            self.planned: tuple[int, ...] | None = None
            self._schedule: NoiseSchedule | None = None
            super().__init__(self.run, sd_model)

        def sample(self, p: Any, x: Any, conditioning: Any, unconditional_conditioning: Any, steps: Any = None,
                   image_conditioning: Any = None) -> Any:
            self.planned = _plan(p, steps or p.steps, 1.0)
            steps = len(self.planned) if self.planned else steps
            return super().sample(p, x, conditioning, unconditional_conditioning, steps=steps,
                                  image_conditioning=image_conditioning)

        def sample_img2img(self, p: Any, x: Any, noise: Any, conditioning: Any, unconditional_conditioning: Any,
                           steps: Any = None, image_conditioning: Any = None) -> Any:
            strength = float(getattr(p, "denoising_strength", 0) or 0)
            self.planned = _plan(p, steps or p.steps, strength) if strength > 0 else None
            # An explicit step count makes the parent run exactly that many steps, the last ones of a
            # schedule int(steps / strength) long (sd_samplers_common.setup_img2img_steps).
            steps = len(self.planned) if self.planned else steps
            return super().sample_img2img(p, x, noise, conditioning, unconditional_conditioning, steps=steps,
                                          image_conditioning=image_conditioning)

        def schedule(self) -> NoiseSchedule:
            if self._schedule is None:  # the model's own sigma table, read once per sampler (one pass)
                self._schedule = NoiseSchedule.from_sigmas(self.model_wrap.sigmas)
            return self._schedule

        def get_sigmas(self, p: Any, steps: int) -> Any:
            if not self.planned:
                return super().get_sigmas(p, steps)
            exact = self.schedule().sigmas_for(self.planned)
            padding = exact[:1].repeat(max(0, steps - len(self.planned)))  # the part img2img skips
            return torch.cat([padding, exact])

        def run(self, model: Any, x: torch.Tensor, sigmas: torch.Tensor, extra_args: Any = None,
                callback: Any = None, disable: Any = None) -> torch.Tensor:
            import k_diffusion.sampling

            schedule = self.schedule()
            # Through k_diffusion.sampling's module-level torch, which the WebUI points at its seeded
            # per-image generator (sd_samplers_common.Sampler.initialize, TorchHijack).
            noise = k_diffusion.sampling.default_noise_sampler(x)
            settings = compat.current_settings()
            with compat.unconditional_pass_skipped(self, extra_args or {}, settings.skip_uncond):
                if self.kind == TCD:
                    self.p.extra_generation_params[infotext.KEY_TCD_GAMMA] = settings.tcd_gamma
                    return sample_tcd(model, x, sigmas, extra_args, callback, disable, noise, schedule=schedule,
                                      gamma=settings.tcd_gamma)
                return sample_lcm(model, x, sigmas, extra_args, callback, disable, noise, schedule=schedule)

    return ExactSampler


def _plan(p: Any, steps: int, strength: float) -> tuple[int, ...] | None:
    """The timesteps of this pass when it runs the reference schedule, recorded in the infotext."""
    if not (getattr(p, EXACT_ATTR, False) or _schedule_label(p) == "Automatic"):
        return None
    settings = compat.current_settings()
    explicit = _explicit_timesteps(p, settings)
    schedule = pass_schedule(int(steps), strength, explicit)
    hires = bool(getattr(p, "is_hr_pass", False))
    params = p.extra_generation_params
    params[infotext.KEY_HIRES_TIMESTEPS if hires else infotext.KEY_TIMESTEPS] = ",".join(map(str, schedule.timesteps))
    if schedule.note:
        params[infotext.KEY_HIRES_STEPS_RUN if hires else infotext.KEY_STEPS_RUN] = schedule.note
    if explicit:
        params[infotext.KEY_EXPLICIT] = ",".join(map(str, explicit))
    return schedule.timesteps


def _schedule_label(p: Any) -> str:
    # The same choice as KDiffusionSampler.get_sigmas (modules/sd_samplers_kdiffusion.py).
    name = (getattr(p, "hr_scheduler", None) if getattr(p, "is_hr_pass", False) else getattr(p, "scheduler", None))
    name = name or "Automatic"
    return "Automatic" if name.lower() == "automatic" else name


def _explicit_timesteps(p: Any, settings: Settings) -> tuple[int, ...]:
    preset = tuple(getattr(p, TIMESTEPS_ATTR, None) or ())
    if preset:  # the accordion's preset (DMD2) trained on these; the setting does not override them
        return preset
    try:
        return parse_timesteps(settings.timesteps)
    except ScheduleError as error:
        p.extra_generation_params[infotext.KEY_SETTING_IGNORED] = f"explicit timesteps: {error}"
        print(f"[LCM-LoRA] the explicit timesteps setting is ignored: {error}")
        return ()
