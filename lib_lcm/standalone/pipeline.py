"""The standalone Python API: one call builds a ready few-step pipeline, another generates.

    from lib_lcm.standalone.pipeline import Options, Job, build_pipeline
    ready = build_pipeline("model.safetensors", Options(styles=(LoraFile(Path("style.safetensors"), 0.8),)))
    for image in ready.generate(Job("a cat in a hat", steps=4, seed=1)):
        image.save(Path("out"))

It uses what the WebUI extension uses: the architecture detector, the catalog (which LoRA fits),
the plan (clamped steps and CFG, the infotext entries), and diffusers' LCMScheduler/TCDScheduler,
the reference samplers. Needs torch, diffusers, transformers and peft.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import lib_lcm
from lib_lcm.downloads.transfer import ProgressCallback
from lib_lcm.lora_files.header import lora_short_hash
from lib_lcm.rules import catalog, infotext
from lib_lcm.rules import parameters_text as keys
from lib_lcm.rules.catalog import ACCELERATION_WEIGHT, LCM_LORA, TCD_GAMMA, AccelerationLora, normalise_name
from lib_lcm.rules.choice import Bounds, Choice
from lib_lcm.rules.parameters_text import PNG_KEY, format_parameters
from lib_lcm.rules.planning import Plan, Request, make_plan
from lib_lcm.rules.prompt_tags import add_tag, find_lora_tags, find_named, format_tag, format_weight, remove_tags
from lib_lcm.standalone import fast_path
from lib_lcm.standalone.lora_fusion import LoraFile, apply_loras, check_lora_file, set_style_weights
from lib_lcm.standalone.model_loading import (
    TokenizerSource,
    default_cache_dir,
    device_and_dtype,
    hub_tokenizer_files,
    load_pipeline,
)
from lib_lcm.standalone.model_source import ModelSource, StandaloneError, inspect_checkpoint, require_supported

SamplerChoice = Literal["lcm", "tcd"]
# command-line name -> WebUI sampler name
SAMPLERS: dict[str, str] = {"lcm": catalog.LCM_SAMPLER, "tcd": catalog.TCD_SAMPLER}
SEED_RANGE = 2**32
Echo = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    sampler: SamplerChoice = "lcm"
    acceleration_weight: float = ACCELERATION_WEIGHT  # the paper's lambda 2
    styles: tuple[LoraFile, ...] = ()  # style LoRAs at their weights (lambda 1; the paper: STYLE_WEIGHT)
    acceleration_lora: Path | None = None  # a file to use instead of the catalog lookup
    lora_dir: Path = field(default_factory=lambda: default_cache_dir() / "Lora")
    endpoint: str | None = None  # Hugging Face endpoint for downloads
    config: Path | None = None  # a diffusers folder with the configs and tokenizers, for single files
    device: str | None = None  # default: cuda when present, else cpu
    tcd_gamma: float = TCD_GAMMA
    fuse: bool = True
    tokenizer_files: TokenizerSource | None = None  # where the CLIP tokenizer comes from (default: hub cache)
    bounds: Bounds = Bounds()  # the LCM-LoRA step and CFG range (the live page allows 1-4 steps)
    # Keep style LoRAs as adapters (the acceleration LoRA is still fused) so set_style_weights can
    # change their weights between images: the live page's slider.
    adjustable_styles: bool = False
    # The fast path (docs/live.md): compiled UNet and decoder, channels-last, the tiny decoder, offload.
    compile: bool = False
    decoder: fast_path.DecoderChoice = "full"
    decoder_dir: Path = field(default_factory=lambda: default_cache_dir() / "decoders")
    offload: fast_path.OffloadChoice = "none"


@dataclass(frozen=True)
class Job:
    prompt: str
    negative_prompt: str = ""
    steps: int = 4
    cfg: float = 1.0
    seed: int = -1  # -1: a random seed, as in the WebUI
    width: int | None = None  # default: the init image's size, else the model's native size
    height: int | None = None
    batch: int = 1
    init_image: Any = None  # PIL image: img2img
    strength: float = 0.5
    mask: Any = None  # PIL image, white = repaint: inpaint (needs init_image)


@dataclass
class Generated:
    image: Any  # PIL image
    seed: int
    parameters: str  # the WebUI's infotext
    unet_calls: int

    def save(self, folder: Path) -> Path:
        """Next free ``NNNNN-SEED.png`` in ``folder``, never overwriting a file."""
        from PIL.PngImagePlugin import PngInfo

        folder.mkdir(parents=True, exist_ok=True)
        info = PngInfo()
        info.add_text(PNG_KEY, self.parameters)
        number = len(list(folder.glob("*.png")))
        while True:
            path = folder / f"{number:05d}-{self.seed}.png"
            try:
                with path.open("xb") as handle:
                    self.image.save(handle, format="PNG", pnginfo=info)
                return path
            except FileExistsError:
                number += 1


@dataclass
class ReadyPipeline:
    pipe: Any  # the fused text-to-image pipeline
    source: ModelSource
    entry: AccelerationLora
    acceleration: LoraFile
    options: Options
    notes: list[str] = field(default_factory=list)
    _variants: dict[str, Any] = field(default_factory=dict)  # img2img / inpaint pipelines sharing the weights
    decoder: fast_path.Decoder | None = None  # our own decoding (fast path); None: the pipeline decodes
    prompts: fast_path.PromptCache = field(default_factory=fast_path.PromptCache)
    _lora_hashes: str = ""

    def generate(self, job: Job, echo: Echo | None = None) -> list[Generated]:
        job = self._without_foreign_tags(job, echo or _silent)
        plan = self.plan(job)
        for note in plan_messages(plan):
            (echo or _silent)(note)
        job = replace(job, steps=plan.steps, cfg=plan.cfg_scale)
        _check_job(job)
        seed = job.seed if job.seed >= 0 else random.randrange(SEED_RANGE)
        width, height = self.size_for(job)
        images, visited = self._run(job, seed, width, height)
        return [Generated(image, seed + i, self.parameters(job, plan, seed + i, width, height, visited), len(visited))
                for i, image in enumerate(images)]

    def set_style_weights(self, weights: tuple[float, ...]) -> None:
        """New weights for the style LoRAs, in ``Options.styles`` order (needs ``adjustable_styles``)."""
        if len(weights) != len(self.options.styles):
            raise StandaloneError(f"{len(weights)} weights for {len(self.options.styles)} style LoRAs.")
        if not (self.options.adjustable_styles or not self.options.fuse):
            raise StandaloneError("The style LoRAs are fused into the weights; build the pipeline with "
                                  "adjustable_styles=True to change their weights.")
        styles = tuple(replace(style, weight=w) for style, w in zip(self.options.styles, weights, strict=True))
        set_style_weights(self.pipe, styles, None if self.options.fuse else self.acceleration)
        self.prompts.clear()  # a style LoRA may change the text encoders
        self.options = replace(self.options, styles=styles)

    def _without_foreign_tags(self, job: Job, echo: Echo) -> Job:
        """diffusers reads no ``<lora:…>`` tags: drop those naming a LoRA that is not loaded, and say so."""
        loaded = {normalise_name(lora.name) for lora in (*self.options.styles, self.acceleration)}
        foreign = [tag for tag in find_lora_tags(job.prompt) if normalise_name(tag.name) not in loaded]
        if not foreign:
            return job
        echo(f"Removed {' '.join(tag.text for tag in foreign)} from the prompt: prompt tags load nothing here; "
             "pass the file with --lora FILE:WEIGHT instead.")
        return replace(job, prompt=remove_tags(job.prompt, {normalise_name(tag.name) for tag in foreign}))

    def plan(self, job: Job) -> Plan:
        """The WebUI extension's plan for this job: clamps, infotext entries, notes."""
        prompt = self.tagged_styles(job.prompt)
        request = Request(prompts=(prompt,), main_prompt=prompt, steps=job.steps, cfg_scale=job.cfg,
                          negative_prompts=(job.negative_prompt,), sampler_name=self.sampler_name,
                          is_img2img=job.init_image is not None, denoising_strength=job.strength)
        choice = Choice(enabled=True, weight=self.acceleration.weight, steps=0, cfg=0, preset=self.entry.family)
        return make_plan(request, choice, self.entry, self.acceleration.name, self.options.bounds)

    @property
    def lora_hashes(self) -> str:
        """``name: hash`` per LoRA in prompt order (styles, then acceleration), as the WebUI writes them."""
        if not self._lora_hashes:
            loras = (*self.options.styles, self.acceleration)
            self._lora_hashes = ", ".join(f"{lora.name}: {lora_short_hash(lora.path)}" for lora in loras)
        return self._lora_hashes

    def tagged_styles(self, prompt: str) -> str:
        """The prompt as the WebUI would have it: a ``<lora:NAME:WEIGHT>`` tag per style LoRA not yet named."""
        for style in self.options.styles:
            if not find_named(prompt, {normalise_name(style.name)}):
                prompt = add_tag(prompt, format_tag(style.name, style.weight))
        return prompt

    @property
    def sampler_name(self) -> str:
        return SAMPLERS[self.options.sampler]

    def size_for(self, job: Job) -> tuple[int, int]:
        if job.width and job.height:
            return job.width, job.height
        if job.init_image is not None:
            return job.init_image.width // 8 * 8, job.init_image.height // 8 * 8
        native = int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)
        return native, native

    def _run(self, job: Job, seed: int, width: int, height: int) -> tuple[list[Any], list[int]]:
        import torch

        pipe = self._pipeline_for(job)
        prompt = remove_tags(job.prompt, {normalise_name(t.name) for t in find_lora_tags(job.prompt)})
        kwargs: dict[str, Any] = dict(
            **self.prompts.arguments(pipe, prompt, job.negative_prompt, guided=job.cfg > 1.0),
            num_inference_steps=job.steps, guidance_scale=job.cfg, num_images_per_prompt=job.batch,
            height=height, width=width,
            generator=[torch.Generator("cpu").manual_seed(seed + i) for i in range(job.batch)])
        if self.decoder is not None:
            kwargs["output_type"] = "latent"
        if self.options.sampler == "tcd":
            kwargs["eta"] = self.options.tcd_gamma  # the pipelines pass eta=0.0 to TCDScheduler otherwise
        if job.init_image is not None:
            kwargs.update(image=job.init_image.convert("RGB").resize((width, height)), strength=job.strength)
        if job.mask is not None:
            kwargs["mask_image"] = job.mask.convert("L").resize((width, height))
        with VisitedTimesteps(pipe.unet) as visited:
            output = pipe(**kwargs).images
        images = self.decoder(output) if self.decoder is not None else list(output)
        return images, visited.timesteps

    def _pipeline_for(self, job: Job) -> Any:
        kind = "inpaint" if job.mask is not None else "img2img" if job.init_image is not None else "txt2img"
        if kind == "txt2img":
            return self.pipe
        if kind not in self._variants:
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

            auto = AutoPipelineForInpainting if kind == "inpaint" else AutoPipelineForImage2Image
            variant = auto.from_pipe(self.pipe)
            # from_pipe does not pass the progress-bar setting on (the live page turns the bars off)
            variant.set_progress_bar_config(**getattr(self.pipe, "_progress_bar_config", {}))
            self._variants[kind] = variant
        return self._variants[kind]

    def parameters(self, job: Job, plan: Plan, seed: int, width: int, height: int, visited: list[int]) -> str:
        """The infotext the WebUI writes for the same generation, prompt tags included (it pastes back)."""
        prompt = plan.main_prompt
        params: dict[str, object] = {
            keys.STEPS: job.steps, keys.SAMPLER: self.sampler_name, keys.SCHEDULE_TYPE: self.entry.scheduler,
            # floats as the WebUI prints them (str of a float: "1.0"), so both texts read alike
            keys.CFG_SCALE: float(job.cfg), keys.SEED: seed, keys.SIZE: f"{width}x{height}",
            keys.MODEL: self.source.name,
            keys.DENOISING_STRENGTH: float(job.strength) if job.init_image is not None else None,
            **plan.infotext,
            keys.LORA_HASHES: self.lora_hashes,
            infotext.KEY_TIMESTEPS: ",".join(map(str, visited)),
            infotext.KEY_STEPS_RUN: str(len(visited)) if len(visited) != job.steps else None,
            infotext.KEY_TCD_GAMMA: format_weight(self.options.tcd_gamma) if self.options.sampler == "tcd" else None,
            # diffusers skips the unconditional pass at guidance <= 1, as the extension does at CFG 1
            infotext.KEY_UNCOND: infotext.UNCOND_SKIPPED if job.cfg <= 1.0 else None,
            keys.VERSION: f"lib_lcm {lib_lcm.__version__}",
        }
        return format_parameters(prompt, job.negative_prompt, params)


def build_pipeline(checkpoint: str, options: Options = Options(), echo: Echo | None = None,
                   download_progress: ProgressCallback | None = None) -> ReadyPipeline:
    """Checkpoint in, ready pipeline out: detected, acceleration LoRA found or downloaded, LoRAs fused.

    ``echo`` gets one line per step (retries of a download too); ``download_progress`` the download's progress.
    """
    echo = echo or _silent
    if options.sampler not in SAMPLERS:
        raise StandaloneError(f"--sampler {options.sampler!r}: choose {' or '.join(SAMPLERS)}.")
    source = require_supported(inspect_checkpoint(checkpoint, endpoint=options.endpoint))
    echo(f"{source.location}: {source.architecture.label} ({source.evidence})")
    entry = catalog.for_architecture(source.architecture, LCM_LORA)
    assert entry is not None  # require_supported: every supported architecture has an LCM-LoRA
    acceleration = LoraFile(find_or_download(entry, options, echo, download_progress), options.acceleration_weight,
                            "acceleration")
    for lora in (acceleration, *options.styles):  # refuse a wrong file before the slow load
        check_lora_file(lora, source.architecture)
    device, dtype = _device_and_dtype(options)
    fast_path.check_placement(device, options.offload, options.compile)
    tiny = None
    if options.decoder == "tiny":  # fetched and checked before the slow load, like the LoRA files
        tiny = fast_path.load_tiny_decoder(fast_path.tiny_decoder_file(
            source.architecture, options.decoder_dir, options.endpoint, echo, download_progress))
    pipe = _load(source, options, dtype)
    if options.offload == "none":  # fuse the LoRAs where the model runs (offloading places it afterwards)
        pipe.to(device)
    notes = apply_loras(pipe, (acceleration, *options.styles), source.architecture, fuse=options.fuse,
                        adjustable_styles=options.adjustable_styles)
    for note in notes:
        echo(note)
    _use_sampler(pipe, options.sampler)
    ready = ReadyPipeline(pipe, source, entry, acceleration, options, notes)
    _speed_up(ready, device, dtype, tiny, echo)
    echo(f"{acceleration.name} at {format_weight(acceleration.weight)}"
         + "".join(f" + {s.name} at {format_weight(s.weight)}" for s in options.styles)
         + _fusing(options) + f"; sampler {SAMPLERS[options.sampler]}" + _fast_summary(options))
    return ready


def _fusing(options: Options) -> str:
    if not options.fuse:
        return ", as adapters"
    return ", the acceleration LoRA fused" if options.adjustable_styles and options.styles else ", fused"


def _fast_summary(options: Options) -> str:
    parts = [f"{options.decoder} decoder" if options.decoder != "full" else "",
             "compiled" if options.compile else "", f"{options.offload} offload" if options.offload != "none" else ""]
    return "".join(f"; {part}" for part in parts if part)


def find_or_download(entry: AccelerationLora, options: Options, echo: Echo,
                     progress: ProgressCallback | None = None) -> Path:
    if options.acceleration_lora is not None:
        return options.acceleration_lora
    from lib_lcm.lora_files.finding import find_acceleration_lora
    from lib_lcm.rules.settings import Settings

    found = find_acceleration_lora(entry, [options.lora_dir], Settings())
    if found.path is not None:
        return found.path
    return _download(entry, options, echo, progress)


def _download(entry: AccelerationLora, options: Options, echo: Echo, progress: ProgressCallback | None) -> Path:
    from lib_lcm.downloads.errors import DownloadError
    from lib_lcm.downloads.transfer import download

    echo(f"{entry.local_filename} is not in {options.lora_dir}; downloading it from {entry.repo_id}")
    try:
        return download(entry, options.lora_dir, endpoint=options.endpoint, on_progress=progress, on_retry=echo).path
    except DownloadError as error:
        raise StandaloneError(f"{entry.local_filename} is needed for {entry.architecture.label} and could not be "
                              f"downloaded: {error.message} Put {entry.repo_file} from {entry.url} into "
                              f"{options.lora_dir} as {entry.local_filename}, or pass --lcm-lora FILE.") from None


def _load(source: ModelSource, options: Options, dtype: Any) -> Any:
    """The pipeline on the CPU."""
    tokenizers = options.tokenizer_files or hub_tokenizer_files(options.endpoint)
    return load_pipeline(source, dtype, options.config, tokenizers, default_cache_dir())


def _device_and_dtype(options: Options) -> tuple[str, Any]:
    import torch

    device, dtype_name = device_and_dtype(options.device, torch.cuda.is_available())
    return device, getattr(torch, dtype_name)


def _speed_up(ready: ReadyPipeline, device: str, dtype: Any, tiny: Any | None, echo: Echo) -> None:
    """The fast path's optional parts (fast_path.py) and the offload, in the order they must happen."""
    options, pipe = ready.options, ready.pipe
    if tiny is not None:
        tiny = tiny.to(device=device, dtype=dtype)
        pipe.vae = tiny  # img2img encodes with it too
    fast_path.place(pipe, device, options.offload)
    if options.compile or tiny is not None:
        ready.decoder = fast_path.decoder_for(pipe, tiny, ready.source.architecture)
    if options.compile:
        assert ready.decoder is not None
        fast_path.compile_for_speed(pipe, ready.decoder, device)
        echo("Compiling the UNet and the decoder: the first image takes longer; a new size or batch compiles "
             "again, a new prompt or seed does not.")


def _use_sampler(pipe: Any, sampler: SamplerChoice) -> None:
    from diffusers import LCMScheduler, TCDScheduler

    scheduler = TCDScheduler if sampler == "tcd" else LCMScheduler
    pipe.scheduler = scheduler.from_config(pipe.scheduler.config)


def plan_messages(plan: Plan) -> list[str]:
    clamped = plan.infotext.get(infotext.KEY_CLAMPED)
    messages = [f"Clamped to the LCM-LoRA range: {clamped}."] if clamped else []
    # The acceleration tag is never typed here: a kept tag names a style LoRA of the same name.
    return messages + [note.text[:1].upper() + note.text[1:] for note in plan.notes if note.kind != "tag_kept"]


def _check_job(job: Job) -> None:
    if job.batch < 1:
        raise StandaloneError("--batch must be at least 1.")
    if job.width is not None and job.height is not None and (job.width % 8 or job.height % 8 or
                                                             min(job.width, job.height) < 64):
        raise StandaloneError(f"--size {job.width}x{job.height}: both sides must be multiples of 8, at least 64.")
    if job.mask is not None and job.init_image is None:
        raise StandaloneError("--mask needs --init-image: the mask says which part of that image to repaint.")
    if job.init_image is not None:
        if not 0.0 < job.strength <= 1.0:
            raise StandaloneError(f"--strength {job.strength}: choose a value above 0 and at most 1.")
        if img2img_steps(job.steps, job.strength) < 1:
            raise StandaloneError(f"--strength {job.strength} with {job.steps} steps runs no step at all; raise "
                                  f"--strength to at least {minimum_strength(job.steps):.2f} or use more --steps.")


def img2img_steps(steps: int, strength: float) -> int:
    """The steps diffusers' img2img pipelines run: ``int(steps * strength)``."""
    return int(steps * strength)


def minimum_strength(steps: int) -> float:
    """The lowest strength at which img2img runs a step at all."""
    return 1.0 / steps


class VisitedTimesteps:
    """Record the timestep of every UNet call while active (for the infotext and call counts).

    The timesteps are kept as given and read after the run: reading a GPU tensor's value during it
    would make the CPU wait for the GPU at every step."""

    def __init__(self, unet: Any) -> None:
        self.unet = unet
        self._seen: list[Any] = []

    def __enter__(self) -> VisitedTimesteps:
        self.handle = self.unet.register_forward_pre_hook(self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()

    def _record(self, module: Any, args: tuple[Any, ...]) -> None:
        self._seen.append(args[1])

    @property
    def timesteps(self) -> list[int]:
        import torch

        return [int(t.flatten()[0].item()) if isinstance(t, torch.Tensor) else int(t) for t in self._seen]


def _silent(_: str) -> None:
    pass
