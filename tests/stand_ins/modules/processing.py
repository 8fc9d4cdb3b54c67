"""Imitates ``modules/processing.py`` (A1111 1.10.1): the processing objects and the order in which
a generation calls the scripts, the sampler and the infotext writer.

What is reproduced:
- The keyword arguments the UI and the API construct p with (unknown ones are a TypeError, as with
  the real dataclasses), which fields exist on which class (img2img has no ``enable_hr``; only
  Forge's txt2img has ``hr_cfg``), and the fields processing fills in.
- ``process_images``: scripts' ``before_process``, then the sampler and scheduler names are fixed
  through ``sd_samplers.get_sampler_and_scheduler``, then ``process_images_inner``:
  ``setup_prompts`` (one prompt per image; hires prompts default to the main ones), seeds, scripts'
  ``process``, ``p.init``, and per batch: the batch's slices of prompts and seeds, scripts'
  ``before_process_batch``, extra networks taken out of the prompts (the batch's networks are
  those of its first prompt: modules/extra_networks.py), scripts' ``process_batch``, conditioning, ``p.sample``, and one
  infotext per image; at the end ``Processed`` and scripts' ``postprocess``.
- ``sample``: txt2img creates its sampler there, img2img in ``init``; each pass (txt2img, the
  hires pass, img2img) calls scripts' ``process_before_every_sampling`` right before
  ``sample`` / ``sample_img2img``. The hires pass reuses ``cfg_scale`` (Forge: ``hr_cfg``), runs
  ``hr_second_pass_steps or steps`` steps and the hires sampler and scheduler.
- ``create_infotext``: "Steps, Sampler, Schedule type, CFG scale, Seed, Size, Denoising strength",
  then ``extra_generation_params`` in insertion order (a key already listed keeps its place); list
  values are indexed per image, callables are called, None is left out, and values go through
  ``infotext_utils.quote``.

The refiner is only looked up (``refiner_checkpoint_info``), never switched to.

Left out: styles, VAE decoding, upscaling (the hires pass samples the first pass's latents at the
same size), masks. A model without ``apply_model`` (``sd_models.FakeModel``) is not sampled.

Not in the WebUI: every pass appends a ``SampleRecord`` to ``p.sampled`` (what the sampler was, or
would have been, given), so tests that use a flag-only model can still see each pass.
"""
import re
from dataclasses import dataclass

import torch

from modules import infotext_utils, prompt_parser, sd_models, sd_samplers, sd_samplers_common, shared


@dataclass
class SampleRecord:
    sampler_name: str
    scheduler: str
    steps_run: int
    cfg_scale: float
    loras: list  # [(name, [arguments...])] from the <lora:...> tags of the batch's first prompt
    prompts: list


_NETWORK_TAG = re.compile(r"<(\w+):([^>]+)>")


def parse_prompts(prompts):
    """The prompts without their <kind:arguments> tags, and the tags of the first one."""
    cleaned, first_tags = [], None
    for prompt in prompts:
        tags = [(m.group(1), m.group(2).split(":")) for m in _NETWORK_TAG.finditer(prompt)]
        cleaned.append(_NETWORK_TAG.sub("", prompt))
        first_tags = tags if first_tags is None else first_tags
    return cleaned, first_tags


def _loras(tags):
    return [(arguments[0], arguments[1:]) for kind, arguments in tags or () if kind in ("lora", "lyco")]


def _one_per_image(value, count):
    return value if isinstance(value, list) else [value] * count


def _model_can_sample():
    return getattr(shared.sd_model, "apply_model", None) is not None


class ImageRNG:
    """modules/rng.py ImageRNG, reduced to one generator seeded with the batch's first seed; each
    ``next()`` is one batch of Gaussian noise: the starting noise first, then what samplers draw."""

    def __init__(self, shape, seeds):
        self.shape = (len(seeds), *shape)
        self.generator = torch.Generator().manual_seed(int(seeds[0]))

    def next(self):
        return torch.randn(self.shape, generator=self.generator)


class StableDiffusionProcessing:
    # keyword argument -> default (list / dict: a new empty one when not given); each class adds its own
    accepts = {
        "prompt": "", "negative_prompt": "", "styles": list, "seed": -1, "subseed": -1, "subseed_strength": 0,
        "sampler_name": None, "scheduler": None, "batch_size": 1, "n_iter": 1, "steps": 50, "cfg_scale": 7.0,
        "width": 512, "height": 512, "denoising_strength": None, "eta": None, "override_settings": dict,
        "extra_generation_params": dict, "scripts": None, "script_args": None, "refiner_checkpoint": None,
        "refiner_switch_at": None,
    }

    @classmethod
    def _accepted(cls):
        merged = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("accepts", {}))
        return merged

    def __init__(self, **given):
        accepted = self._accepted()
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments: {', '.join(unknown)}")
        for name, default in accepted.items():
            if default in (list, dict):
                setattr(self, name, given.get(name) or default())
            else:
                setattr(self, name, given.get(name, default))
        # filled in by processing
        self.all_prompts = self.all_negative_prompts = self.main_prompt = self.main_negative_prompt = None
        self.prompts = self.negative_prompts = self.extra_network_data = None
        self.all_seeds = self.all_subseeds = self.seeds = self.subseeds = None
        self.iteration = 0
        self.comments = {}
        self.is_api = False
        self.is_hr_pass = False
        self.sampler = self.rng = self.samples = None
        self.refiner_checkpoint_info = None
        self.sampled = []

    @property
    def sd_model(self):
        return shared.sd_model

    def comment(self, text):
        self.comments[text] = 1

    def setup_prompts(self):
        count = self.batch_size * self.n_iter
        self.all_prompts = _one_per_image(self.prompt, count)
        self.all_negative_prompts = _one_per_image(self.negative_prompt, count)
        self.main_prompt, self.main_negative_prompt = self.all_prompts[0], self.all_negative_prompts[0]

    def init(self, prompts, seeds, subseeds):
        pass

    def parse_extra_network_prompts(self):
        self.prompts, self.extra_network_data = parse_prompts(self.prompts)

    def sample(self, conditioning, unconditional_conditioning, **batch):
        raise NotImplementedError

    def _new_sampler(self, name):
        return sd_samplers.create_sampler(name, self.sd_model)

    def _before_sampling(self, **kwargs):
        if self.scripts is not None:
            self.scripts.process_before_every_sampling(p=self, **kwargs)

    def _first_pass_steps(self):
        return self.steps

    def _records(self):
        return [SampleRecord(self.sampler_name, self.scheduler, self._first_pass_steps(), self.cfg_scale,
                             _loras(self.extra_network_data), list(self.prompts))]


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    accepts = {
        "enable_hr": False, "denoising_strength": 0.75, "hr_scale": 2.0, "hr_upscaler": None,
        "hr_second_pass_steps": 0, "hr_checkpoint_name": None, "hr_sampler_name": None, "hr_scheduler": None,
        "hr_prompt": "", "hr_negative_prompt": "",
    }

    def __init__(self, **given):
        super().__init__(**given)
        self.all_hr_prompts = self.all_hr_negative_prompts = None
        self.hr_prompts = self.hr_extra_network_data = None

    def setup_prompts(self):
        super().setup_prompts()
        if not self.enable_hr:
            return
        for hires, main in (("hr_prompt", self.prompt), ("hr_negative_prompt", self.negative_prompt)):
            if getattr(self, hires) == "":  # empty means "the same as the first pass"
                setattr(self, hires, main)
        count = self.batch_size * self.n_iter
        self.all_hr_prompts = _one_per_image(self.hr_prompt, count)
        self.all_hr_negative_prompts = _one_per_image(self.hr_negative_prompt, count)

    def init(self, prompts, seeds, subseeds):
        if not self.enable_hr:
            return
        params = self.extra_generation_params
        params["Denoising strength"] = self.denoising_strength
        if self.hr_second_pass_steps:
            params["Hires steps"] = self.hr_second_pass_steps
        if self.hr_sampler_name not in (None, self.sampler_name):
            params["Hires sampler"] = self.hr_sampler_name
        # written only where it differs from the image's prompt
        params["Hires prompt"] = lambda p, index, prompt_text, **_: (
            None if p.all_hr_prompts[index] == prompt_text else p.all_hr_prompts[index])
        if self.hr_scheduler is None:
            self.hr_scheduler = self.scheduler

    def parse_extra_network_prompts(self):
        super().parse_extra_network_prompts()
        if self.enable_hr:
            first = self.iteration * self.batch_size
            self.hr_prompts, self.hr_extra_network_data = parse_prompts(
                self.all_hr_prompts[first:first + self.batch_size])

    def hires_cfg(self):
        return self.cfg_scale

    def _records(self):
        records = super()._records()
        if self.enable_hr:
            records.append(SampleRecord(self.hr_sampler_name or self.sampler_name, self.hr_scheduler,
                                        sd_samplers_common.setup_img2img_steps(self, self._hires_steps())[1] + 1,
                                        self.hires_cfg(), _loras(self.hr_extra_network_data), list(self.hr_prompts)))
        return records

    def _hires_steps(self):
        return self.hr_second_pass_steps or self.steps

    def sample(self, conditioning, unconditional_conditioning, **batch):
        self.sampler = self._new_sampler(self.sampler_name)
        x = self.rng.next()
        self._before_sampling(x=x, noise=x, c=conditioning, uc=unconditional_conditioning)
        samples = self.sampler.sample(self, x, conditioning, unconditional_conditioning)
        return self.sample_hr_pass(samples) if self.enable_hr else samples

    def sample_hr_pass(self, samples):
        self.is_hr_pass = True
        self.sampler = self._new_sampler(self.hr_sampler_name or self.sampler_name)
        self.rng = ImageRNG(samples.shape[1:], self.seeds)
        noise = self.rng.next()
        hr_c = prompt_parser.get_multicond_learned_conditioning(self.sd_model, self.hr_prompts, self.steps)
        hr_uc = prompt_parser.get_learned_conditioning(self.sd_model, self.negative_prompts, self.steps)
        self._before_sampling(x=samples, noise=noise, c=hr_c, uc=hr_uc)
        samples = self.sampler.sample_img2img(self, samples, noise, hr_c, hr_uc, steps=self._hires_steps())
        self.is_hr_pass = False
        return samples


class ForgeTxt2Img(StableDiffusionProcessingTxt2Img):
    """Forge's txt2img: a separate hires CFG (API default 1.0; the UI slider starts at 7.0)."""

    accepts = {"hr_cfg": 1.0}

    def hires_cfg(self):
        return self.hr_cfg


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    accepts = {
        "init_images": None, "resize_mode": 0, "denoising_strength": 0.75, "mask": None, "inpainting_fill": 0,
        "image_cfg_scale": None,
    }

    def init(self, prompts, seeds, subseeds):
        params = self.extra_generation_params
        params["Denoising strength"] = self.denoising_strength
        if _model_can_sample():
            self.sampler = self._new_sampler(self.sampler_name)
            self.init_latent = self.sd_model.encode_first_stage(self.init_images, self.batch_size,
                                                                self.height // 8, self.width // 8)

    def _first_pass_steps(self):
        return sd_samplers_common.setup_img2img_steps(self)[1] + 1

    def sample(self, conditioning, unconditional_conditioning, **batch):
        noise = self.rng.next()
        self._before_sampling(x=self.init_latent, noise=noise, c=conditioning, uc=unconditional_conditioning)
        return self.sampler.sample_img2img(self, self.init_latent, noise, conditioning, unconditional_conditioning,
                                           image_conditioning=None)


class Processed:
    def __init__(self, p, infotexts):
        self.infotexts, self.info = infotexts, (infotexts[0] if infotexts else "")
        self.comments = "".join(text + "\n" for text in p.comments)
        self.extra_generation_params = p.extra_generation_params  # the same dict


def create_infotext(p, index):
    prompt, negative = p.all_prompts[index], p.all_negative_prompts[index]
    fields = {"Steps": p.steps, "Sampler": p.sampler_name, "Schedule type": p.scheduler, "CFG scale": p.cfg_scale,
              "Seed": p.all_seeds[index], "Size": f"{p.width}x{p.height}",
              "Denoising strength": p.extra_generation_params.get("Denoising strength")}
    fields.update(p.extra_generation_params)
    shown = []
    for key, value in fields.items():
        if isinstance(value, list):
            value = value[index]
        elif callable(value):
            value = value(p=p, index=index, prompt_text=prompt, negative_prompt=negative)
        if value is not None:
            shown.append(key if key == value else f"{key}: {infotext_utils.quote(value)}")
    negative_line = f"\nNegative prompt: {negative}" if negative else ""
    return f"{prompt}{negative_line}\n{', '.join(shown)}".strip()


def process_images(p):
    if p.scripts is not None:
        p.scripts.before_process(p)
    # sd_samplers.fix_p_invalid_sampler_and_scheduler: unknown names become the defaults, through the cache
    names = sd_samplers.get_sampler_and_scheduler(p.sampler_name, p.scheduler, convert_automatic=False)
    p.sampler_name, p.scheduler = names
    return process_images_inner(p)


def process_images_inner(p):
    # the refiner is looked up before the scripts' process (the hires checkpoint only in p.init)
    wanted = p.refiner_checkpoint
    if wanted and str(wanted).lower() != "none":
        p.refiner_checkpoint_info = sd_models.get_closet_checkpoint_match(wanted)
    p.setup_prompts()
    first_seed = 1234 if p.seed == -1 else p.seed  # the WebUI draws a random one
    seeds = [first_seed + i for i in range(len(p.all_prompts))]
    p.all_seeds, p.all_subseeds = seeds, list(seeds)
    if p.scripts is not None:
        p.scripts.process(p)
    p.init(p.all_prompts, seeds, p.all_subseeds)

    infotexts = []
    for batch in range(p.n_iter):
        p.iteration = batch
        images = range(batch * p.batch_size, (batch + 1) * p.batch_size)
        p.prompts = [p.all_prompts[i] for i in images]
        p.negative_prompts = [p.all_negative_prompts[i] for i in images]
        p.seeds = [p.all_seeds[i] for i in images]
        p.subseeds = [p.all_subseeds[i] for i in images]
        if p.scripts is not None:
            p.scripts.before_process_batch(p, batch_number=batch, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
        p.parse_extra_network_prompts()
        if p.scripts is not None:
            p.scripts.process_batch(p, batch_number=batch, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
        p.sampled.extend(p._records())
        if _model_can_sample():
            p.rng = ImageRNG((4, p.height // 8, p.width // 8), p.seeds)
            c = prompt_parser.get_multicond_learned_conditioning(p.sd_model, p.prompts, p.steps)
            uc = prompt_parser.get_learned_conditioning(p.sd_model, p.negative_prompts, p.steps)
            p.samples = p.sample(conditioning=c, unconditional_conditioning=uc, seeds=p.seeds, subseeds=p.subseeds,
                                 subseed_strength=p.subseed_strength, prompts=p.prompts)
        p.prompts = [p.all_prompts[i] for i in images]  # the infotext shows the prompts with their tags
        infotexts.extend(create_infotext(p, i) for i in images)

    processed = Processed(p, infotexts)
    if p.scripts is not None:
        p.scripts.postprocess(p, processed)
    return processed
