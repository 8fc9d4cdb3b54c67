"""Mirrors modules/processing.py: the processing objects' field names and defaults, setup_prompts,
the order of process_images / process_images_inner, how extra networks are taken from the first
prompt of each batch (modules/extra_networks.py parse_prompts), how many steps img2img really
runs (modules/sd_samplers_common.py setup_img2img_steps), and create_infotext.

Instead of sampling, each batch appends a SampleRecord of what the sampler would have been given.
"""
import re
from dataclasses import dataclass, field

import torch

from modules import infotext_utils, prompt_parser, sd_samplers, shared

re_extra_net = re.compile(r"<(\w+):([^>]+)>")


@dataclass
class SampleRecord:
    sampler_name: str
    scheduler: str
    steps_run: int
    cfg_scale: float
    loras: list  # [(name, [args...])] parsed from the first prompt of the batch
    prompts: list


def parse_prompt(prompt):
    found = []

    def found_network(m):
        found.append((m.group(1), m.group(2).split(":")))
        return ""

    return re.sub(re_extra_net, found_network, prompt), found


def parse_prompts(prompts):
    res, extra_data = [], None
    for prompt in prompts:
        updated, parsed = parse_prompt(prompt)
        if extra_data is None:
            extra_data = parsed
        res.append(updated)
    return res, extra_data


def loras_of(extra_data):
    return [(args[0], args[1:]) for kind, args in (extra_data or []) if kind in ("lora", "lyco")]


@dataclass(repr=False)
class StableDiffusionProcessing:
    prompt: str = ""
    styles: list = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0
    sampler_name: str = None
    scheduler: str = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    negative_prompt: str = ""
    denoising_strength: float = None
    override_settings: dict = None
    extra_generation_params: dict = None
    disable_extra_networks: bool = False
    scripts: object = None
    script_args: list = None
    # set by processing (init=False in the real dataclass)
    all_prompts: list = field(default=None, init=False)
    all_negative_prompts: list = field(default=None, init=False)
    main_prompt: str = field(default=None, init=False)
    main_negative_prompt: str = field(default=None, init=False)
    prompts: list = field(default=None, init=False)
    negative_prompts: list = field(default=None, init=False)
    all_seeds: list = field(default=None, init=False)
    seeds: list = field(default=None, init=False)
    iteration: int = field(default=0, init=False)
    comments: dict = field(default=None, init=False)
    is_api: bool = field(default=False, init=False)
    eta: float = None
    sampler_noise_scheduler_override: object = None
    is_hr_pass: bool = field(default=False, init=False)
    sampler: object = field(default=None, init=False)
    rng: object = field(default=None, init=False)
    samples: object = field(default=None, init=False)

    def __post_init__(self):
        self.extra_generation_params = self.extra_generation_params or {}
        self.override_settings = self.override_settings or {}
        self.styles = self.styles or []
        self.comments = {}
        self.sampled = []

    @property
    def sd_model(self):
        return shared.sd_model

    def comment(self, text):
        self.comments[text] = 1

    def setup_prompts(self):
        if isinstance(self.prompt, list):
            self.all_prompts = self.prompt
        else:
            self.all_prompts = self.batch_size * self.n_iter * [self.prompt]
        if isinstance(self.negative_prompt, list):
            self.all_negative_prompts = self.negative_prompt
        else:
            self.all_negative_prompts = self.batch_size * self.n_iter * [self.negative_prompt]
        self.main_prompt = self.all_prompts[0]
        self.main_negative_prompt = self.all_negative_prompts[0]

    def init(self, all_prompts, all_seeds, all_subseeds):
        pass

    def parse_extra_network_prompts(self):
        self.prompts, self.extra_network_data = parse_prompts(self.prompts)

    def sample_batch(self):
        self.sampled.append(SampleRecord(self.sampler_name, self.scheduler, self.first_pass_steps_run(),
                                         self.cfg_scale, loras_of(self.extra_network_data), list(self.prompts)))
        if getattr(shared.sd_model, "apply_model", None) is None:
            return  # a model that only carries flags: record, do not sample
        self.rng = ImageRNG((4, self.height // 8, self.width // 8), self.seeds)
        c = prompt_parser.get_multicond_learned_conditioning(shared.sd_model, self.prompts, self.steps)
        uc = prompt_parser.get_learned_conditioning(shared.sd_model, self.negative_prompts, self.steps)
        self.samples = self.sample(c, uc, self.seeds, None, None, self.prompts)

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        raise NotImplementedError()

    def first_pass_steps_run(self):
        return self.steps


@dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    enable_hr: bool = False
    denoising_strength: float = 0.75
    hr_scale: float = 2.0
    hr_upscaler: str = None
    hr_second_pass_steps: int = 0
    hr_checkpoint_name: str = None
    hr_sampler_name: str = None
    hr_scheduler: str = None
    hr_prompt: str = ''
    hr_negative_prompt: str = ''
    all_hr_prompts: list = field(default=None, init=False)
    all_hr_negative_prompts: list = field(default=None, init=False)
    hr_prompts: list = field(default=None, init=False)

    def setup_prompts(self):
        super().setup_prompts()
        if not self.enable_hr:
            return
        if self.hr_prompt == '':
            self.hr_prompt = self.prompt
        if self.hr_negative_prompt == '':
            self.hr_negative_prompt = self.negative_prompt
        n = self.batch_size * self.n_iter
        self.all_hr_prompts = self.hr_prompt if isinstance(self.hr_prompt, list) else n * [self.hr_prompt]
        self.all_hr_negative_prompts = (self.hr_negative_prompt if isinstance(self.hr_negative_prompt, list)
                                        else n * [self.hr_negative_prompt])

    def init(self, all_prompts, all_seeds, all_subseeds):
        if not self.enable_hr:
            return
        self.extra_generation_params["Denoising strength"] = self.denoising_strength
        if self.hr_second_pass_steps:
            self.extra_generation_params["Hires steps"] = self.hr_second_pass_steps
        if self.hr_sampler_name is not None and self.hr_sampler_name != self.sampler_name:
            self.extra_generation_params["Hires sampler"] = self.hr_sampler_name

        def get_hr_prompt(p, index, prompt_text, **kwargs):
            hr_prompt = p.all_hr_prompts[index]
            return hr_prompt if hr_prompt != prompt_text else None

        self.extra_generation_params["Hires prompt"] = get_hr_prompt
        if self.hr_scheduler is None:
            self.hr_scheduler = self.scheduler

    def parse_extra_network_prompts(self):
        super().parse_extra_network_prompts()
        if self.enable_hr:
            start = self.iteration * self.batch_size
            self.hr_prompts = self.all_hr_prompts[start:start + self.batch_size]
            self.hr_prompts, self.hr_extra_network_data = parse_prompts(self.hr_prompts)

    def sample_batch(self):
        super().sample_batch()
        if self.enable_hr:  # sample_hr_pass: always exact steps, hires sampler/scheduler, hires prompts
            self.sampled.append(SampleRecord(self.hr_sampler_name or self.sampler_name, self.hr_scheduler,
                                             self.hr_second_pass_steps or self.steps, self.hires_cfg(),
                                             loras_of(self.hr_extra_network_data), list(self.hr_prompts)))

    def hires_cfg(self):
        return self.cfg_scale  # A1111 reuses cfg_scale for the hires pass

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
        x = self.rng.next()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(p=self, x=x, noise=x, c=conditioning,
                                                       uc=unconditional_conditioning)
        samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning)
        if not self.enable_hr:
            return samples
        return self.sample_hr_pass(samples)

    def sample_hr_pass(self, samples):
        """Latent upscaling left out: the second pass runs on the first pass's latents."""
        self.is_hr_pass = True
        self.sampler = sd_samplers.create_sampler(self.hr_sampler_name or self.sampler_name, self.sd_model)
        noise = self.rng.next()
        hr_c = prompt_parser.get_multicond_learned_conditioning(shared.sd_model, self.hr_prompts, self.steps)
        hr_uc = prompt_parser.get_learned_conditioning(shared.sd_model, self.negative_prompts, self.steps)
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(p=self, x=samples, noise=noise, c=hr_c, uc=hr_uc)
        samples = self.sampler.sample_img2img(self, samples, noise, hr_c, hr_uc,
                                              steps=self.hr_second_pass_steps or self.steps)
        self.is_hr_pass = False
        return samples


@dataclass(repr=False)
class ForgeTxt2Img(StableDiffusionProcessingTxt2Img):
    """Forge adds hr_cfg (API default 1.0, UI default 7.0) and uses it in the hires pass."""

    hr_cfg: float = 1.0

    def hires_cfg(self):
        return self.hr_cfg


@dataclass(repr=False)
class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    init_images: list = None
    resize_mode: int = 0
    denoising_strength: float = 0.75
    mask: object = None
    inpainting_fill: int = 0
    image_cfg_scale: float = None

    def init(self, all_prompts, all_seeds, all_subseeds):
        self.extra_generation_params["Denoising strength"] = self.denoising_strength
        if getattr(shared.sd_model, "apply_model", None) is not None:
            self.sampler = sd_samplers.create_sampler(self.sampler_name, self.sd_model)
            self.init_latent = shared.sd_model.encode_first_stage(self.init_images, self.batch_size,
                                                                  self.height // 8, self.width // 8)

    def sample(self, conditioning, unconditional_conditioning, seeds, subseeds, subseed_strength, prompts):
        x = self.rng.next()
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(p=self, x=self.init_latent, noise=x, c=conditioning,
                                                       uc=unconditional_conditioning)
        return self.sampler.sample_img2img(self, self.init_latent, x, conditioning, unconditional_conditioning,
                                           image_conditioning=None)

    def first_pass_steps_run(self):
        if getattr(shared.opts, "img2img_fix_steps", False):
            return self.steps
        return int(min(self.denoising_strength, 0.999) * self.steps) + 1


class Processed:
    def __init__(self, p, infotexts):
        self.infotexts = infotexts
        self.info = infotexts[0] if infotexts else ""
        self.comments = "".join(f"{comment}\n" for comment in p.comments)
        self.extra_generation_params = p.extra_generation_params


class ImageRNG:
    """modules/rng.py ImageRNG, reduced: one generator seeded by the batch's first seed; every next()
    is one batch of Gaussian noise (the initial noise first, then what samplers draw)."""

    def __init__(self, shape, seeds):
        self.shape = (len(seeds), *shape)
        self.generator = torch.Generator().manual_seed(int(seeds[0]))

    def next(self):
        return torch.randn(self.shape, generator=self.generator)


def create_infotext(p, all_prompts, all_seeds, index):
    prompt_text = all_prompts[index]
    negative_prompt = p.all_negative_prompts[index]
    generation_params = {
        "Steps": p.steps,
        "Sampler": p.sampler_name,
        "Schedule type": p.scheduler,
        "CFG scale": p.cfg_scale,
        "Seed": all_seeds[index],
        "Size": f"{p.width}x{p.height}",
        "Denoising strength": p.extra_generation_params.get("Denoising strength"),
        **p.extra_generation_params,
    }
    for key, value in generation_params.items():
        if isinstance(value, list):
            generation_params[key] = value[index]
        elif callable(value):
            generation_params[key] = value(p=p, index=index, prompt_text=prompt_text)
    text = ", ".join([k if k == v else f'{k}: {infotext_utils.quote(v)}'
                      for k, v in generation_params.items() if v is not None])
    negative_prompt_text = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt_text}{negative_prompt_text}\n{text}".strip()


def fix_p_invalid_sampler_and_scheduler(p):
    # modules/sd_samplers.py: an unknown sampler silently becomes samplers[0]
    if p.sampler_name not in sd_samplers.all_samplers_map:
        p.sampler_name = sd_samplers.all_samplers[0].name


def process_images(p):
    if p.scripts is not None:
        p.scripts.before_process(p)
    fix_p_invalid_sampler_and_scheduler(p)
    return process_images_inner(p)


def process_images_inner(p):
    p.setup_prompts()
    seed = p.seed if p.seed != -1 else 1234
    p.all_seeds = [seed + i for i in range(len(p.all_prompts))]
    p.all_subseeds = list(p.all_seeds)
    if p.scripts is not None:
        p.scripts.process(p)
    p.init(p.all_prompts, p.all_seeds, p.all_subseeds)
    infotexts = []
    for n in range(p.n_iter):
        p.iteration = n
        batch = slice(n * p.batch_size, (n + 1) * p.batch_size)
        p.prompts, p.negative_prompts = p.all_prompts[batch], p.all_negative_prompts[batch]
        p.seeds, p.subseeds = p.all_seeds[batch], p.all_subseeds[batch]
        if p.scripts is not None:
            p.scripts.before_process_batch(p, batch_number=n, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
        p.parse_extra_network_prompts()
        p.sample_batch()
        p.prompts = p.all_prompts[batch]  # re-sliced before the infotext is written
        for i in range(len(p.prompts)):
            infotexts.append(create_infotext(p, p.all_prompts, p.all_seeds, n * p.batch_size + i))
    processed = Processed(p, infotexts)
    if p.scripts is not None:
        p.scripts.postprocess(p, processed)
    return processed
