"""Imitates ``CFGDenoiser`` of ``modules/sd_samplers_cfg_denoiser.py`` (A1111 1.10.1) for ordinary
(not instruct-pix2pix, not inpainting-conditioned) models: the object a k-diffusion sampler calls as
``model(x, sigma, cond=..., uncond=..., cond_scale=..., s_min_uncond=..., image_cond=...)``.

Behaviour reproduced, per call (one sampling step):
- Stops with ``InterruptedException`` when the job was interrupted or skipped.
- Reads the prompts' conditioning at the current step: every image contributes one row per
  AND-part of its prompt (with that part's weight), then every image contributes one uncond row.
- Drops the uncond rows only on the WebUI's two skip paths: the "skip_early_cond" setting (skip
  while step / total_steps <= its value, and write "Skip Early CFG" into the infotext), or NGMS
  (s_min_uncond, on odd steps or with "s_min_uncond_all", below that sigma). CFG 1 alone never
  skips them. When skipped, each image's first cond output stands in for its uncond output and
  the guidance scale is 1.
- One model call for the whole batch with "batch_cond_uncond" (the default), else one call per
  chunk of batch-size rows.
- Guidance: uncond + sum over AND-parts of weight * scale * (cond_part - uncond), per image.
- Keeps each image's first cond output as the sampler's ``last_latent`` and advances ``step``.

Conditioning goes to the model as ``cond={"c_crossattn": [...]}`` (the real one adds c_concat).
"""
import torch

from modules import prompt_parser, shared
from modules.sd_samplers_common import InterruptedException


def _guided(x_out, conds_list, n_uncond, scale):
    unconditional = x_out[len(x_out) - n_uncond:]
    guided = unconditional.clone()
    for image, parts in enumerate(conds_list):
        for row, weight in parts:
            guided[image] += (weight * scale) * (x_out[row] - unconditional[image])
    return guided


class CFGDenoiser(torch.nn.Module):
    def __init__(self, sampler):
        super().__init__()
        self.sampler = sampler
        self.model_wrap = None  # built on first use by inner_model
        self.p = None
        self.step = 0
        self.steps = None
        self.total_steps = None

    @property
    def inner_model(self):
        if self.model_wrap is None:
            self.model_wrap = self.wrap_model(shared.sd_model)
        return self.model_wrap

    def wrap_model(self, sd_model):
        """The k-diffusion denoiser around the loaded model; each sampler family picks its own."""
        raise NotImplementedError

    def _skips_uncond(self, sigma, s_min_uncond):
        opts, params = shared.opts, self.p.extra_generation_params
        early = opts.skip_early_cond
        if early != 0.0 and self.step / self.total_steps <= early:
            params["Skip Early CFG"] = early
            return True
        odd_or_all = self.step % 2 == 1 or opts.s_min_uncond_all
        if odd_or_all and s_min_uncond > 0 and sigma[0] < s_min_uncond:
            params["NGMS"] = s_min_uncond
            return True
        return False

    def forward(self, x, sigma, *, cond, uncond, cond_scale, s_min_uncond, image_cond):
        state = shared.state
        if state.interrupted or state.skipped:
            raise InterruptedException

        conds_list, cond_rows = prompt_parser.reconstruct_multicond_batch(cond, self.step)
        uncond_rows = prompt_parser.reconstruct_cond_batch(uncond, self.step)
        images = len(conds_list)

        # one input row per AND-part of each image, in image order
        owner = [image for image, parts in enumerate(conds_list) for _ in parts]
        skip = self._skips_uncond(sigma, s_min_uncond)
        if skip:
            x_in, sigma_in, text = x[owner], sigma[owner], cond_rows
        else:
            x_in = torch.cat([x[owner], x])
            sigma_in = torch.cat([sigma[owner], sigma])
            text = torch.cat([cond_rows, uncond_rows])

        if shared.opts.batch_cond_uncond:
            x_out = self.inner_model(x_in, sigma_in, cond={"c_crossattn": [text]})
        else:
            chunks = [self.inner_model(x_in[at:at + images], sigma_in[at:at + images],
                                       cond={"c_crossattn": [text[at:at + images]]})
                      for at in range(0, len(x_in), images)]
            x_out = torch.cat(chunks)

        first_rows = [parts[0][0] for parts in conds_list]
        if skip:
            x_out = torch.cat([x_out, x_out[first_rows]])  # cond output in place of the uncond one
        denoised = _guided(x_out, conds_list, len(uncond_rows), 1.0 if skip else cond_scale)

        self.sampler.last_latent = x_out[first_rows]
        self.step += 1
        return denoised
