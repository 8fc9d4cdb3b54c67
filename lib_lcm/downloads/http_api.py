"""HTTP endpoints, JSON in and out, added to the WebUI's FastAPI app on app start.

    GET  /lcm-lora/v1/status                      every catalog entry, its file state and its job
    POST /lcm-lora/v1/download {"key": a catalog key or "auto", "name"?: str, "wait"?: bool}
    POST /lcm-lora/v1/cancel   {"key": ...}

Bodies are plain dicts rather than pydantic models: A1111 runs FastAPI 0.94 on pydantic 1, Forge
FastAPI 0.104 on pydantic 2, and a dict reads the same on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib_lcm.downloads.errors import DownloadError, ErrorKind
from lib_lcm.downloads.jobs import DONE, RUNNING
from lib_lcm.downloads.service import AUTO, DownloadService
from lib_lcm.rules import catalog

PREFIX = "/lcm-lora/v1"
WAIT_LIMIT_S = 6 * 3600

_STATUS_FOR_KIND: dict[ErrorKind, int] = {
    "invalid_key": 400, "invalid_name": 400, "bad_request": 400, "unsupported": 422,
    "busy": 409, "exists_different": 409, "corrupt_present": 409, "cancelled": 409,
    "auth": 403, "not_found": 404, "offline": 503,
    "network": 502, "server": 502, "dropped": 502, "checksum": 502, "wrong_architecture": 502, "corrupt": 502,
    "disk_full": 507, "read_only": 500, "io": 500, "unexpected": 500,
}


def http_status(kind: ErrorKind | None) -> int:
    return _STATUS_FOR_KIND.get(kind, 500) if kind else 500


def register_routes(app: Any, service: DownloadService, dependencies: Sequence[Any] = ()) -> None:
    from fastapi import Body
    from fastapi.responses import JSONResponse

    def error(err: DownloadError) -> Any:
        return JSONResponse({"ok": False, "error": err.kind, "message": err.message}, status_code=http_status(err.kind))

    @app.get(f"{PREFIX}/status", dependencies=list(dependencies))
    def lcm_lora_status() -> Any:
        return service.report()

    @app.post(f"{PREFIX}/download", dependencies=list(dependencies))
    def lcm_lora_download(body: dict = Body(default={})) -> Any:  # noqa: B008 (FastAPI's way)
        try:
            key, name, wait = _download_args(body)
            job = service.start(key, name)
        except DownloadError as err:
            return error(err)
        if not wait:
            return JSONResponse({"ok": True, "job": job.as_dict()}, status_code=202)
        final = service.jobs.wait(job.key, WAIT_LIMIT_S) or job
        if final.state == RUNNING:
            return JSONResponse({"ok": True, "job": final.as_dict()}, status_code=202)
        ok = final.state == DONE
        return JSONResponse({"ok": ok, "job": final.as_dict(), "error": final.error_kind, "message": final.message},
                            status_code=200 if ok else http_status(final.error_kind))

    @app.post(f"{PREFIX}/cancel", dependencies=list(dependencies))
    def lcm_lora_cancel(body: dict = Body(default={})) -> Any:  # noqa: B008
        try:
            cancelled = service.cancel(_key(body))
        except DownloadError as err:
            return error(err)
        return {"ok": True, "cancelled": cancelled}


def _key(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        choices = ", ".join(f'"{key}"' for key in catalog.all_keys())
        raise DownloadError("bad_request", f'Send a JSON object with "key": one of {choices} or "{AUTO}".')
    return str(body["key"])


def _download_args(body: Any) -> tuple[str, str | None, bool]:
    key = _key(body)
    name, wait = body.get("name"), body.get("wait", False)
    if name is not None and not isinstance(name, str):
        raise DownloadError("bad_request", '"name" must be a file name (a string).')
    if not isinstance(wait, bool):
        raise DownloadError("bad_request", '"wait" must be true or false.')
    return key, name or None, wait
