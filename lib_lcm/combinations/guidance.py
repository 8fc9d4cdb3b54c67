"""Features that change classifier-free guidance, under an accelerated generation: what each does, as data.

At CFG 1 there is no guidance: the negative prompt cancels out (and the accordion skips its pass), so
the WebUI's "Ignore negative prompt during early sampling" (``skip_early_cond``) and "Negative
Guidance minimum sigma" (``s_min_uncond``, both read in ``modules/sd_samplers_cfg_denoiser.py``)
change nothing, and Dynamic Thresholding (mcmonkeyprojects/sd-dynamic-thresholding) has no guidance
to rescale, while its sampler wrapper would take the place of the exact LCM sampler. :func:`advise`
says so, and turns Dynamic Thresholding off for that image through its own per-generation switch
(``p.dynthres_enabled``). Above CFG 1 they run as the user set them; Dynamic Thresholding then
wraps the WebUI's own sampler, which the notes say.

Some extensions' CFG hooks need the unconditional rows in the batch even at CFG 1: AnimateDiff
(continue-revolution/sd-webui-animatediff ``scripts/animatediff_infv2v.py``) splits the batch as
[all cond frames, all uncond frames] and fails with an IndexError without them. For those the
accordion keeps the unconditional pass (:attr:`GuidanceAdvice.keep_unconditional`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lib_lcm.rules.prompt_tags import format_weight

DYNAMIC_THRESHOLDING = "Dynamic Thresholding (CFG Scale Fix)"  # its script title
ANIMATEDIFF = "AnimateDiff"  # its script title, and the infotext key its before_process writes
SKIP_EARLY_COND = "Ignore negative prompt during early sampling"  # the WebUI's setting labels
NGMS = "Negative Guidance minimum sigma"


@dataclass(frozen=True)
class GuidanceFeatures:
    skip_early_cond: float = 0.0
    s_min_uncond: float = 0.0
    dynamic_thresholding: bool = False
    need_unconditional_rows: tuple[str, ...] = ()  # active extensions whose hooks need them


@dataclass(frozen=True)
class GuidanceAdvice:
    notes: tuple[str, ...] = ()
    dynamic_thresholding_off: bool = False
    keep_unconditional: str = ""  # why the CFG-1 skip of the unconditional pass must not run, or ""


def advise(features: GuidanceFeatures, cfg_scale: float) -> GuidanceAdvice:
    if cfg_scale <= 1.0:
        return _at_cfg_one(features)
    if features.dynamic_thresholding:
        return GuidanceAdvice((f"{DYNAMIC_THRESHOLDING} wraps the WebUI's own sampler, so this image runs without the "
                               f"exact LCM timesteps.",))
    return GuidanceAdvice()


def _at_cfg_one(features: GuidanceFeatures) -> GuidanceAdvice:
    unused = [f"{SKIP_EARLY_COND} ({format_weight(features.skip_early_cond)})" if features.skip_early_cond > 0 else "",
              f"{NGMS} ({format_weight(features.s_min_uncond)})" if features.s_min_uncond > 0 else ""]
    notes = [f"{name} does nothing at CFG 1." for name in unused if name]
    if features.dynamic_thresholding:
        notes.append(f"{DYNAMIC_THRESHOLDING} was turned off for this image: at CFG 1 there is no guidance to "
                     f"rescale, and its sampler would replace the exact LCM one. Raise CFG above 1 to use it.")
    keep = ""
    if features.need_unconditional_rows:
        keep = f"kept for {' and '.join(features.need_unconditional_rows)}"
        notes.append(f"{' and '.join(features.need_unconditional_rows)} needs the unconditional pass, so CFG 1 "
                     f"runs it too (no CFG-1 speed-up).")
    return GuidanceAdvice(tuple(notes), features.dynamic_thresholding, keep)
