"""The WebUI sampler object that runs lib_lcm.sampling's LCM and TCD on the reference timesteps.

``ExactSampler`` is a ``KDiffusionSampler`` (``modules/sd_samplers_kdiffusion.py``) whose sampling
function is ours. Imported only when the WebUI creates one of our samplers: importing
``modules.sd_samplers_kdiffusion`` needs a started WebUI.

Which timesteps a pass visits is a function of the processing object alone (:func:`pass_timesteps`):
the accordion's flags on ``p``, the pass (first pass, img2img, or hires), its steps and denoising
strength, and the settings. ``sample``/``sample_img2img`` ask it to choose the step count they hand
to the parent, and ``get_sigmas(p, steps)`` asks it again for the sigmas, so nothing has to be
remembered between the calls. For img2img and hires an explicit step count makes the parent run
exactly that many steps, the last ones of a schedule ``int(steps / strength)`` long
(``sd_samplers_common.setup_img2img_steps``); ``get_sigmas`` pads the front of that schedule.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from modules import sd_samplers_kdiffusion

from lib_lcm.rules import infotext
from lib_lcm.rules.catalog import TCD_SAMPLER
from lib_lcm.rules.settings import Settings
from lib_lcm.sampling.samplers import sample_lcm, sample_tcd
from lib_lcm.sampling.schedule import NoiseSchedule, PassSchedule, ScheduleError, parse_timesteps, pass_schedule
from lib_lcm.webui import compat, console
from lib_lcm.webui.attributes import EXACT_ATTR, KEEP_UNCOND_ATTR, TIMESTEPS_ATTR


class ExactSampler(sd_samplers_kdiffusion.KDiffusionSampler):
    def __init__(self, kind: str, sd_model: Any) -> None:
        self.kind = kind  # LCM or TCD
        super().__init__(self.run, sd_model)

    def sample(self, p: Any, x: Any, conditioning: Any, unconditional_conditioning: Any, steps: Any = None,
               image_conditioning: Any = None) -> Any:
        planned = pass_timesteps(p)
        record(p, planned)
        return super().sample(p, x, conditioning, unconditional_conditioning,
                              steps=len(planned.timesteps) if planned else steps,
                              image_conditioning=image_conditioning)

    def sample_img2img(self, p: Any, x: Any, noise: Any, conditioning: Any, unconditional_conditioning: Any,
                       steps: Any = None, image_conditioning: Any = None) -> Any:
        planned = pass_timesteps(p)
        record(p, planned)
        return super().sample_img2img(p, x, noise, conditioning, unconditional_conditioning,
                                      steps=len(planned.timesteps) if planned else steps,
                                      image_conditioning=image_conditioning)

    def get_sigmas(self, p: Any, steps: int) -> Any:
        planned = pass_timesteps(p)
        if planned is None:
            return super().get_sigmas(p, steps)
        exact = self.schedule.sigmas_for(planned.timesteps)
        padding = exact[:1].repeat(max(0, steps - len(planned.timesteps)))  # the part img2img skips
        return torch.cat([padding, exact])

    @functools.cached_property
    def schedule(self) -> NoiseSchedule:
        """The model's own sigma table; a sampler object serves one pass of one model."""
        return NoiseSchedule.from_sigmas(self.model_wrap.sigmas)

    def run(self, model: Any, x: torch.Tensor, sigmas: torch.Tensor, extra_args: Any = None,
            callback: Any = None, disable: Any = None) -> torch.Tensor:
        import k_diffusion.sampling

        # Through k_diffusion.sampling's module-level torch, which the WebUI points at its seeded
        # per-image generator (sd_samplers_common.Sampler.initialize, TorchHijack).
        noise = k_diffusion.sampling.default_noise_sampler(x)
        settings = compat.current_settings()
        skip = settings.skip_uncond and not getattr(self.p, KEEP_UNCOND_ATTR, "")
        with compat.unconditional_pass_skipped(self, extra_args or {}, skip):
            if self.kind == TCD_SAMPLER:
                self.p.extra_generation_params[infotext.KEY_TCD_GAMMA] = settings.tcd_gamma
                return sample_tcd(model, x, sigmas, extra_args, callback, disable, noise, schedule=self.schedule,
                                  gamma=settings.tcd_gamma)
            return sample_lcm(model, x, sigmas, extra_args, callback, disable, noise, schedule=self.schedule)


@dataclass(frozen=True)
class PassPlan:
    schedule: PassSchedule
    explicit: tuple[int, ...] = ()  # the explicit timesteps it came from, if any
    ignored: str = ""  # why the explicit timesteps setting could not be used

    @property
    def timesteps(self) -> tuple[int, ...]:
        return self.schedule.timesteps


def pass_timesteps(p: Any) -> PassPlan | None:
    """The reference timesteps of the pass ``p`` is in; None where it runs the WebUI's own schedule.

    The accordion asks for them (``EXACT_ATTR``); without it, they are what "Automatic" means for LCM and TCD.
    """
    if not (getattr(p, EXACT_ATTR, False) or compat.schedule_label(p) == "Automatic"):
        return None
    steps, strength = compat.pass_steps_and_strength(p)
    if strength <= 0:
        return None
    explicit, ignored = _explicit_timesteps(p, compat.current_settings())
    return PassPlan(pass_schedule(steps, strength, explicit), explicit, ignored)


def record(p: Any, planned: PassPlan | None) -> None:
    """Write the pass's timesteps, and why it runs fewer steps than asked, into the infotext."""
    if planned is None:
        return
    hires = bool(getattr(p, "is_hr_pass", False))
    params = p.extra_generation_params
    params[infotext.KEY_HIRES_TIMESTEPS if hires else infotext.KEY_TIMESTEPS] = ",".join(map(str, planned.timesteps))
    if planned.schedule.note:
        params[infotext.KEY_HIRES_STEPS_RUN if hires else infotext.KEY_STEPS_RUN] = planned.schedule.note
    if planned.explicit:
        params[infotext.KEY_EXPLICIT] = ",".join(map(str, planned.explicit))
    if planned.ignored:
        params[infotext.KEY_SETTING_IGNORED] = f"explicit timesteps: {planned.ignored}"
        console.say(f"the explicit timesteps setting is ignored: {planned.ignored}")


def _explicit_timesteps(p: Any, settings: Settings) -> tuple[tuple[int, ...], str]:
    preset = tuple(getattr(p, TIMESTEPS_ATTR, None) or ())
    if preset:  # the accordion's preset (DMD2) trained on these; the setting does not override them
        return preset, ""
    try:
        return parse_timesteps(settings.timesteps), ""
    except ScheduleError as error:
        return (), str(error)
