"""The download tab and HTTP endpoints, wired to the WebUI (Lora folder, loaded model, hf endpoint)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

from lib_lcm.downloads.http_api import register_routes
from lib_lcm.downloads.jobs import Jobs
from lib_lcm.downloads.service import DownloadService
from lib_lcm.webui import compat, console

TAB_TITLE = "LCM-LoRA"
TAB_ID = "lcm_lora"

# One service per WebUI process: the package is not re-executed on Reload UI, so running
# downloads and their progress survive a reload.
_service: DownloadService | None = None


def service() -> DownloadService:
    global _service
    if _service is None:
        _service = DownloadService(
            lora_dir=lambda: Path(compat.lora_dirs()[0]), lora_dirs=compat.lora_dirs,
            loaded=compat.ui_architecture, endpoint=hf_endpoint, settings=compat.current_settings,
            jobs=Jobs(after_download=refresh_lora_list, log=console.say))
    return _service


def hf_endpoint() -> str | None:
    from modules import shared

    # modules/shared.py: hf_endpoint = $HF_ENDPOINT or https://huggingface.co
    endpoint = getattr(shared, "hf_endpoint", None)
    return endpoint if isinstance(endpoint, str) and endpoint else None


def refresh_lora_list(path: Path) -> None:
    """Make a new file usable at once: the builtin Lora extension's list (extensions-builtin/Lora/networks.py).

    Generation would find it anyway by its stem; this also updates the list the Lora cards show.
    """
    networks = sys.modules.get("networks")
    refresh = getattr(networks, "list_available_networks", None)
    if callable(refresh):
        refresh()


def on_ui_tabs() -> list[tuple[Any, str, str]]:
    from lib_lcm.downloads.tab import build_tab

    return [(build_tab(service()), TAB_TITLE, TAB_ID)]


def on_app_started(demo: Any, app: Any) -> None:
    # app_started runs again after Reload UI (webui.py relaunches); FastAPI would add duplicate routes.
    if getattr(app, "_lcm_lora_routes", False):
        return
    register_routes(app, service(), dependencies=_api_auth())
    app._lcm_lora_routes = True


def _api_auth() -> list[Any]:
    """Protect the endpoints like the WebUI's own API when --api-auth is set (modules/api/api.py)."""
    from modules import shared

    credentials = getattr(getattr(shared, "cmd_opts", None), "api_auth", None)
    if not credentials:
        return []
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPBasic

    allowed = dict(pair.split(":", 1) for pair in credentials.split(",") if ":" in pair)
    basic = HTTPBasic()

    # Annotated as Any: under `from __future__ import annotations` FastAPI would have to resolve a
    # locally imported class from a string; Depends(basic) alone tells it what to inject.
    def check(given: Any = Depends(basic)) -> None:  # noqa: B008
        expected = allowed.get(given.username)
        if expected is None or not secrets.compare_digest(given.password, expected):
            raise HTTPException(status_code=401, detail="Incorrect username or password",
                                headers={"WWW-Authenticate": "Basic"})

    return [Depends(check)]
