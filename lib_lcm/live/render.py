"""The live page's render: a LiveRequest -> ``ReadyPipeline.generate`` -> a Picture for the page.

Built once per page, called by the engine's single worker, so it may keep state: the style weights
last set (changing them is a weight update, done only when a slider moved).
"""

from __future__ import annotations

import time
from dataclasses import replace

from lib_lcm.live.engine import LiveEngine, LiveRequest, RenderRefused
from lib_lcm.live.images import Picture, encode_data_url
from lib_lcm.live.server import PageConfig, StyleSlider
from lib_lcm.rules.catalog import LIVE_STEPS
from lib_lcm.rules.choice import WEIGHT_RANGE
from lib_lcm.standalone.model_source import StandaloneError
from lib_lcm.standalone.pipeline import SEED_RANGE, Job, ReadyPipeline, img2img_steps, minimum_strength

LIVE_CFG = 1.0  # no negative pass: twice the pictures per second, and LCM-LoRA is made for it


class PipelineRenderer:
    """Renders on ``ready`` at ``size`` (default: the model's native size)."""

    def __init__(self, ready: ReadyPipeline, size: tuple[int, int] | None = None) -> None:
        self.ready = ready
        self.width, self.height = size or ready.size_for(Job(prompt=""))
        self._weights = tuple(style.weight for style in ready.options.styles)
        self._quiet_progress()

    def __call__(self, request: LiveRequest) -> Picture:
        self._use_weights(request.style_weights)
        request, note = runnable(request)
        job = Job(prompt=request.prompt, steps=request.steps, cfg=LIVE_CFG, seed=request.seed, width=self.width,
                  height=self.height, init_image=request.init_image, strength=request.strength)
        try:
            (result,) = self.ready.generate(job)
        except StandaloneError as error:
            raise RenderRefused(str(error)) from None
        return Picture(encode_data_url(result.image), result.seed, note)

    def warm_up(self, engine: LiveEngine[Picture]) -> float:
        """One txt2img picture before the page opens, in seconds: the first one pays for lazy setup
        (and compilation with ``--compile``), and a size the model cannot take is refused here. It is
        rendered by the engine's worker, the thread that renders every picture: CUDA graphs are recorded
        per thread (torch/_inductor/cudagraph_trees.py), so a warm-up elsewhere would be recorded twice."""
        start = time.perf_counter()
        number = engine.submit(LiveRequest(prompt="", steps=LIVE_STEPS.default, seed=0,
                                           style_weights=tuple(s.weight for s in self.ready.options.styles)))
        frame = engine.latest(after=number - 1)
        if frame is None or frame.error is not None:
            raise RenderRefused(frame.error if frame is not None else "The live engine closed during the warm-up.")
        return time.perf_counter() - start

    def page_config(self) -> PageConfig:
        """The page's controls for this pipeline: LIVE_STEPS, a slider per style LoRA, the size."""
        # No sliders for fused styles (live --compile): torch.compile bakes an adapter's weight into the
        # compiled graph, so every new slider value would compile the UNet again.
        adjustable = self.ready.options.adjustable_styles or not self.ready.options.fuse
        sliders = tuple(StyleSlider(style.name, style.weight, min(WEIGHT_RANGE[0], style.weight),
                                    max(WEIGHT_RANGE[1], style.weight))
                        for style in self.ready.options.styles if adjustable)
        return PageConfig(steps=LIVE_STEPS, seeds=SEED_RANGE, width=self.width, height=self.height,
                          model=self.ready.source.name, styles=sliders)

    def _quiet_progress(self) -> None:
        """No progress bar per picture: at several pictures a second they would fill the terminal (the
        img2img pipeline, made on first use, inherits the setting)."""
        self.ready.pipe.set_progress_bar_config(disable=True)

    def _use_weights(self, weights: tuple[float, ...]) -> None:
        """Style weights go into the pipeline only when they changed: setting them costs a weight update."""
        if weights and weights != self._weights:
            try:
                self.ready.set_style_weights(weights)
            except StandaloneError as error:
                raise RenderRefused(str(error)) from None
            self._weights = weights


def runnable(request: LiveRequest) -> tuple[LiveRequest, str | None]:
    """img2img runs ``int(steps * strength)`` steps; a strength below 1/steps would run none, so it is
    raised to that and the page is told, rather than refusing a slider position."""
    if request.init_image is None or img2img_steps(request.steps, request.strength) >= 1:
        return request, None
    needed = minimum_strength(request.steps)
    steps = f"{request.steps} step{'s' if request.steps > 1 else ''}"
    note = f"Strength {request.strength:g} with {steps} runs no step; used {needed:.2f}."
    return replace(request, strength=needed), note
