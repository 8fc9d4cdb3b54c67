"""LCM and TCD sampling in pure torch, exact to diffusers' schedulers: the reference timesteps
(``schedule``) and the samplers in k-diffusion's calling convention (``samplers``)."""
