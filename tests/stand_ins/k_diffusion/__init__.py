"""Test stand-in for k-diffusion, the sampler library A1111 1.10.1 clones into
``repositories/k-diffusion`` (commit ab527a9). Only the two modules the WebUI stand-ins drive are
imitated; see ../README.md for why the real package is not installed."""
from . import external, sampling  # noqa: F401
