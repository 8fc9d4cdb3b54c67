"""The attributes the accordion sets on the WebUI's processing object for the sampler to read."""

EXACT_ATTR = "lcm_lora_exact"  # run the reference schedule (lib_lcm.sampling) for LCM and TCD
TIMESTEPS_ATTR = "lcm_lora_timesteps"  # the preset's explicit timesteps (DMD2), or ()
PLANNED_ATTR = "lcm_lora_planned"  # the prompts as the accordion left them: process() already ran on this p
KEEP_UNCOND_ATTR = "lcm_lora_keep_uncond"  # why CFG 1 must keep the unconditional pass (an extension needs it), or ""
