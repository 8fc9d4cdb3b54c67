"""Imitates ``modules/sd_samplers_kdiffusion.py`` (A1111 1.10.1), with the ``Sampler`` base class of
``modules/sd_samplers_common.py`` folded in: how a k-diffusion sampler is driven for one pass.

``KDiffusionSampler(funcname, sd_model)``: ``funcname`` is the name of a function in
``k_diffusion.sampling`` or the function itself. Construction builds the CFG denoiser and, through
it, the k-diffusion denoiser around ``shared.sd_model`` (``model_wrap``). ``create_sampler`` sets
``config`` (the registry entry) afterwards.

- ``get_sigmas(p, steps)``: the "Schedule type" of this pass (``p.hr_scheduler`` in the hires pass,
  else ``p.scheduler``; empty means "Automatic"). "Automatic" means the entry's default scheduler,
  or, without one, the denoiser's own ``get_sigmas``. A chosen scheduler gets the table's smallest
  and largest sigma (and the denoiser if it needs it), and a first-pass choice other than
  "Automatic" is written to the infotext as "Schedule type".
- ``sample(p, x, ...)``: steps = the argument or p.steps; noise x is scaled by the first sigma.
- ``sample_img2img(p, x, noise, ...)``: ``setup_img2img_steps`` gives (length, t_enc); the pass
  runs the last t_enc + 1 sigmas of a schedule of that length, starting from x + noise * sigma.
- Both call the function with the CFG denoiser, the start latent, ``extra_args`` (cond, uncond,
  cond_scale, s_min_uncond, image_cond), ``callback`` and ``disable``, plus ``sigmas`` and ``eta``
  only where its signature has them. Before that, the common ``initialize`` hands ``p`` to the
  sampler and the CFG denoiser, resets the step count, points ``k_diffusion.sampling.torch`` at
  the seeded noise, and takes eta from p or the "eta_ancestral" setting (written to the infotext
  as "Eta" when it is not 1.0, and only for functions that take ``eta``).
- An ``InterruptedException`` during sampling returns the last latent instead.
"""
import inspect

import k_diffusion.external
import k_diffusion.sampling

from modules import sd_samplers_common, sd_schedulers, shared
from modules.sd_samplers_cfg_denoiser import CFGDenoiser


class CFGDenoiserKDiffusion(CFGDenoiser):
    def wrap_model(self, sd_model):
        return k_diffusion.external.CompVisDenoiser(sd_model, quantize=shared.opts.enable_quantization)


class KDiffusionSampler:
    cfg_denoiser_class = CFGDenoiserKDiffusion

    def __init__(self, funcname, model, options=None):
        self.funcname = funcname
        self.func = funcname if callable(funcname) else getattr(k_diffusion.sampling, funcname)
        self.options = options or {}
        self.config = None
        self.p = None
        self.eta = None
        self.s_min_uncond = None
        self.last_latent = None
        self.sampler_extra_args = None
        cfg = self.model_wrap_cfg = self.cfg_denoiser_class(self)
        self.model_wrap = cfg.inner_model  # built now, around shared.sd_model

    # -- the common part (sd_samplers_common.Sampler) --

    def initialize(self, p):
        self.p = p
        denoiser = self.model_wrap_cfg
        denoiser.p, denoiser.step = p, 0
        self.s_min_uncond = getattr(p, "s_min_uncond", 0.0)
        self.eta = getattr(shared.opts, "eta_ancestral", 0.0) if p.eta is None else p.eta
        k_diffusion.sampling.torch = sd_samplers_common.TorchHijack(p)
        if "eta" not in inspect.signature(self.func).parameters:
            return {}
        if self.eta != 1.0:
            p.extra_generation_params["Eta"] = self.eta
        return {"eta": self.eta}

    def callback_state(self, d):
        shared.state.sampling_step = d["i"]

    def launch_sampling(self, steps, func):
        cfg = self.model_wrap_cfg
        cfg.steps, cfg.total_steps = steps, self.config.total_steps(steps)
        shared.state.sampling_steps, shared.state.sampling_step = steps, 0
        try:
            return func()
        except sd_samplers_common.InterruptedException:
            return self.last_latent

    # -- the k-diffusion part --

    def get_sigmas(self, p, steps):
        label = (p.hr_scheduler if p.is_hr_pass else p.scheduler) or "Automatic"
        if label == "Automatic":
            label = self.config.options.get("scheduler")
        scheduler = sd_schedulers.schedulers_map.get(label)
        if scheduler is None or scheduler.function is None:
            return self.model_wrap.get_sigmas(steps).cpu()
        if scheduler.label != "Automatic" and not p.is_hr_pass:
            p.extra_generation_params["Schedule type"] = scheduler.label
        table = self.model_wrap.sigmas
        extra = {"inner_model": self.model_wrap} if scheduler.need_inner_model else {}
        return scheduler.function(n=steps, sigma_min=table[0].item(), sigma_max=table[-1].item(), **extra).cpu()

    def _run(self, p, start, sigmas, steps_run, c, uc, image_conditioning):
        kwargs = self.initialize(p)
        if "sigmas" in inspect.signature(self.func).parameters:
            kwargs["sigmas"] = sigmas
        self.last_latent = start
        self.sampler_extra_args = {"cond": c, "uncond": uc,
                                   "cond_scale": p.cfg_scale, "s_min_uncond": self.s_min_uncond,
                                   "image_cond": image_conditioning}
        return self.launch_sampling(steps_run, lambda: self.func(
            self.model_wrap_cfg, start, extra_args=self.sampler_extra_args, callback=self.callback_state,
            disable=False, **kwargs))

    def sample(self, p, x, c, uc, steps=None, image_conditioning=None):
        steps = steps or p.steps
        sigmas = self.get_sigmas(p, steps)
        return self._run(p, x * sigmas[0], sigmas, steps, c, uc, image_conditioning)

    def sample_img2img(self, p, x, noise, c, uc, steps=None, image_conditioning=None):
        length, t_enc = sd_samplers_common.setup_img2img_steps(p, steps)
        tail = self.get_sigmas(p, length)[length - t_enc - 1:]
        return self._run(p, x + noise * tail[0], tail, t_enc + 1, c, uc, image_conditioning)


samplers_data_k_diffusion = [
    sd_samplers_common.SamplerData(label, lambda model, name=function: KDiffusionSampler(name, model), aliases, options)
    for label, function, aliases, options in [
        ("Euler", "sample_euler", ["k_euler"], {}),
        # a different name and default schedule over the same maths: only the registry entry matters here
        ("DPM++ 2M", "sample_euler", ["k_dpmpp_2m"], {"scheduler": "karras"}),
    ]
]
