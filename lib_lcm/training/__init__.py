"""Latent consistency distillation of an LCM-LoRA (the LCM paper's Algorithm 1), for the toy teacher
or for a real SD 1.5 / SDXL / SSD-1B checkpoint."""
