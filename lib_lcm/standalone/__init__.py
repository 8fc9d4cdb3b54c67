"""Few-step generation without the WebUI, on diffusers: what a checkpoint is, loading it (with the
shipped configs), fusing the acceleration and style LoRAs, and the pipeline API."""
