"""Mirrors modules/sd_samplers_kdiffusion.py: CFGDenoiserKDiffusion (a CompVisDenoiser around
shared.sd_model), and KDiffusionSampler's get_sigmas (override hook, scheduler by label,
"Automatic" -> the config's default or the model's own), sample (x * sigmas[0]) and
sample_img2img (setup_img2img_steps, sigma_sched = sigmas[steps - t_enc - 1:], xi = x + noise *
sigma_sched[0], launch_sampling(t_enc + 1, ...)), with kwargs chosen by the function's signature."""
import inspect

import k_diffusion.external
import k_diffusion.sampling

from modules import sd_samplers_cfg_denoiser, sd_samplers_common, sd_schedulers, shared

samplers_k_diffusion = [
    ('Euler', 'sample_euler', ['k_euler'], {}),
    ('DPM++ 2M', 'sample_euler', ['k_dpmpp_2m'], {'scheduler': 'karras'}),  # same maths here; only names matter
]
samplers_data_k_diffusion = [
    sd_samplers_common.SamplerData(label, lambda model, funcname=funcname: KDiffusionSampler(funcname, model), aliases, options)
    for label, funcname, aliases, options in samplers_k_diffusion
]
sampler_extra_params = {'sample_euler': ['s_churn', 's_tmin', 's_tmax', 's_noise']}


class CFGDenoiserKDiffusion(sd_samplers_cfg_denoiser.CFGDenoiser):
    @property
    def inner_model(self):
        if self.model_wrap is None:
            self.model_wrap = k_diffusion.external.CompVisDenoiser(shared.sd_model, quantize=shared.opts.enable_quantization)
        return self.model_wrap


class KDiffusionSampler(sd_samplers_common.Sampler):
    def __init__(self, funcname, sd_model, options=None):
        super().__init__(funcname)
        self.extra_params = sampler_extra_params.get(funcname, [])
        self.options = options or {}
        self.func = funcname if callable(funcname) else getattr(k_diffusion.sampling, self.funcname)
        self.model_wrap_cfg = CFGDenoiserKDiffusion(self)
        self.model_wrap = self.model_wrap_cfg.inner_model

    def get_sigmas(self, p, steps):
        scheduler_name = (p.hr_scheduler if p.is_hr_pass else p.scheduler) or 'Automatic'
        if scheduler_name == 'Automatic':
            scheduler_name = self.config.options.get('scheduler', None)
        scheduler = sd_schedulers.schedulers_map.get(scheduler_name)
        if p.sampler_noise_scheduler_override:
            sigmas = p.sampler_noise_scheduler_override(steps)
        elif scheduler is None or scheduler.function is None:
            sigmas = self.model_wrap.get_sigmas(steps)
        else:
            if scheduler.label != 'Automatic' and not p.is_hr_pass:
                p.extra_generation_params["Schedule type"] = scheduler.label
            sigmas = scheduler.function(n=steps, sigma_min=self.model_wrap.sigmas[0].item(),
                                        sigma_max=self.model_wrap.sigmas[-1].item(), inner_model=self.model_wrap)
        return sigmas.cpu()

    def sample_img2img(self, p, x, noise, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        steps, t_enc = sd_samplers_common.setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)
        sigma_sched = sigmas[steps - t_enc - 1:]
        xi = x + noise * sigma_sched[0]
        extra_params_kwargs = self.initialize(p)
        parameters = inspect.signature(self.func).parameters
        if 'n' in parameters:
            extra_params_kwargs['n'] = len(sigma_sched) - 1
        if 'sigmas' in parameters:
            extra_params_kwargs['sigmas'] = sigma_sched
        self.model_wrap_cfg.init_latent = x
        self.last_latent = x
        self.sampler_extra_args = {'cond': conditioning, 'image_cond': image_conditioning,
                                   'uncond': unconditional_conditioning, 'cond_scale': p.cfg_scale,
                                   's_min_uncond': self.s_min_uncond}
        samples = self.launch_sampling(t_enc + 1, lambda: self.func(self.model_wrap_cfg, xi, extra_args=self.sampler_extra_args, disable=False, callback=self.callback_state, **extra_params_kwargs))
        self.add_infotext(p)
        return samples

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        steps = steps or p.steps
        sigmas = self.get_sigmas(p, steps)
        x = x * sigmas[0]
        extra_params_kwargs = self.initialize(p)
        parameters = inspect.signature(self.func).parameters
        if 'n' in parameters:
            extra_params_kwargs['n'] = steps
        if 'sigmas' in parameters:
            extra_params_kwargs['sigmas'] = sigmas
        self.last_latent = x
        self.sampler_extra_args = {'cond': conditioning, 'image_cond': image_conditioning,
                                   'uncond': unconditional_conditioning, 'cond_scale': p.cfg_scale,
                                   's_min_uncond': self.s_min_uncond}
        samples = self.launch_sampling(steps, lambda: self.func(self.model_wrap_cfg, x, extra_args=self.sampler_extra_args, disable=False, callback=self.callback_state, **extra_params_kwargs))
        self.add_infotext(p)
        return samples
