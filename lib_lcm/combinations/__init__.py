"""How the accordion combines with other extensions and WebUI features (ADetailer, CFG-changing options): pure."""
