"""The rules: pure facts and decisions, no files, no network, no torch.

Which architecture a model is, the catalog of acceleration LoRAs and their recipes, what the user
chose and the ranges it is clamped to, the plan for one generation, the settings, prompt tags and
the infotext. Every other room imports from here; this room imports from none of them.
"""
