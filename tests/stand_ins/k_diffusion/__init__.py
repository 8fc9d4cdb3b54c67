"""Mirrors the parts of k-diffusion (repositories/k-diffusion, commit ab527a9 in A1111 1.10.1) the WebUI drives."""
from . import external, sampling  # noqa: F401
