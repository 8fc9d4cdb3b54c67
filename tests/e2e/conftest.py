"""Fixtures and the skip-unless-WEBUI_URL hook for tests/e2e; the code lives in e2e_support.py."""
from e2e_support import api, lora, model, moved_away, pytest_collection_modifyitems  # noqa: F401
