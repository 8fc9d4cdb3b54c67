"""The live page's local HTTP server: the standard library's threading server, nothing to install.

    GET  /                 the page (``page/index.html``, ``/live.js``, ``/live.css``)
    GET  /config           what the page's controls allow: steps, seeds, strength, style sliders, size
    POST /request          JSON request -> {"id": n} at once; the picture follows through /frame
    GET  /frame?after=N    waits (long poll) for a picture newer than N: {id, image, fps, ms, mode, seed, …}

A bad request gets HTTP 400 and ``{"error": "one sentence"}``; the browser never sees a traceback.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from lib_lcm.live.engine import DEFAULT_STRENGTH, Frame, LiveEngine, LiveRequest, describe
from lib_lcm.live.images import Picture, decode_data_url
from lib_lcm.rules.catalog import StepRange

DEFAULT_HOST = "127.0.0.1"  # this machine only: the page has no login
DEFAULT_PORT = 7862  # beside the WebUI (7860) and the download tab (7861)
MAX_BODY = 32 * 1024 * 1024  # a 4096×4096 PNG as base64 fits
LONG_POLL_SECONDS = 20.0  # under common proxy and browser idle limits; the page asks again
PAGE_FILES = {"/": ("index.html", "text/html"), "/live.js": ("live.js", "text/javascript"),
              "/live.css": ("live.css", "text/css")}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StyleSlider:
    name: str
    weight: float  # the starting weight (from --lora FILE:WEIGHT)
    minimum: float
    maximum: float


@dataclass(frozen=True)
class PageConfig:
    """What the page's controls allow; the same values check every request."""

    steps: StepRange
    seeds: int  # seeds run from 0 to seeds - 1; -1 asks for a new random one
    width: int
    height: int
    model: str
    styles: tuple[StyleSlider, ...] = ()
    strength: float = DEFAULT_STRENGTH

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class BadRequest(ValueError):
    """A request the page should not have sent; ``str`` is the sentence the page shows."""


def parse_request(body: bytes, config: PageConfig) -> LiveRequest:
    """The JSON body of ``POST /request`` -> a LiveRequest, or BadRequest naming the first problem."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("The request body is not JSON; send an object such as {\"prompt\": \"a cat\"}.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request must be a JSON object such as {\"prompt\": \"a cat\"}.")
    prompt = data.get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be text.")
    return LiveRequest(prompt=prompt, steps=_steps(data, config.steps), seed=_seed(data, config.seeds),
                       strength=_number(data.get("strength", config.strength), "strength", 0.0, 1.0, open_low=True),
                       init_image=_image(data.get("image")), style_weights=_styles(data, config.styles))


def _integer(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be a whole number, not {json.dumps(value)}.")
    return value


def _steps(data: dict[str, Any], steps: StepRange) -> int:
    value = _integer(data, "steps", steps.default)
    if not steps.minimum <= value <= steps.maximum:
        raise BadRequest(f"steps {value}: the live page runs {steps.minimum} to {steps.maximum} steps.")
    return value


def _seed(data: dict[str, Any], seeds: int) -> int:
    value = _integer(data, "seed", -1)
    if not -1 <= value < seeds:
        raise BadRequest(f"seed {value}: choose 0 to {seeds - 1}, or -1 for a new random seed.")
    return value


def _number(value: Any, key: str, low: float, high: float, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"{key} must be a number, not {json.dumps(value)}.")
    if value > high or value < low or (open_low and value == low):
        allowed = f"above {low:g} and at most {high:g}" if open_low else f"from {low:g} to {high:g}"
        raise BadRequest(f"{key} is {value}; choose a value {allowed}.")
    return float(value)


def _image(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("image must be a data URL or null.")
    try:
        return decode_data_url(value)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _styles(data: dict[str, Any], sliders: tuple[StyleSlider, ...]) -> tuple[float, ...]:
    values = data.get("styles", [slider.weight for slider in sliders])
    if not isinstance(values, list) or len(values) != len(sliders):
        raise BadRequest(f"styles must be a list of {len(sliders)} weights, one per style LoRA.")
    return tuple(_number(value, f"The weight of {slider.name}", slider.minimum, slider.maximum)
                 for slider, value in zip(sliders, values, strict=True))


def frame_json(frame: Frame[Picture]) -> dict[str, Any]:
    """What ``GET /frame`` answers: the picture (or the error) with the numbers the page shows."""
    request, picture = frame.request, frame.output
    answer: dict[str, Any] = {
        "id": frame.id, "fps": round(frame.images_per_second, 2), "ms": round(frame.seconds * 1000),
        "mode": request.mode, "prompt": request.prompt, "steps": request.steps,
        "seed": picture.seed if picture else request.seed}
    if picture is not None:
        answer["image"] = picture.data_url
        if picture.note:
            answer["note"] = picture.note
    if frame.error is not None:
        answer["error"] = frame.error
    return answer


class LiveServer(ThreadingHTTPServer):
    """Serves one engine and its page config; ``start`` runs it on a thread (tests, embedding)."""

    daemon_threads = True  # a waiting long poll never holds up shutdown

    def __init__(self, engine: LiveEngine[Picture], config: PageConfig, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT) -> None:
        self.engine, self.config = engine, config
        self._serving = False
        super().__init__((host, port), _Handler)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving = True
        super().serve_forever(poll_interval)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, poll_interval: float = 0.1) -> threading.Thread:
        """Serve on a daemon thread; ``close`` stops it within ``poll_interval`` seconds."""
        thread = threading.Thread(target=self.serve_forever, args=(poll_interval,), name="lib_lcm-live-http",
                                  daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop serving and stop the engine (which wakes every waiting long poll)."""
        self.engine.close(timeout=0)
        if self._serving:  # shutdown() waits for serve_forever, forever if it never ran
            self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "lib_lcm-live"

    @property
    def app(self) -> LiveServer:
        return cast(LiveServer, self.server)

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _answer(self, handle: Callable[[], None]) -> None:
        """A bug answers 500 with a sentence (its traceback goes to the log, not the browser); a page that
        went away mid-answer (a reload during a long poll) is no error at all."""
        try:
            handle()
        except ConnectionError:
            pass
        except Exception as error:  # anything unforeseen: the page gets one line, the terminal the details
            _log.exception("live page: %s %s failed", self.command, self.path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"The server failed: {describe(error)}."})

    def _get(self) -> None:
        url = urlsplit(self.path)
        if url.path in PAGE_FILES:
            name, kind = PAGE_FILES[url.path]
            self._send(HTTPStatus.OK, (resources.files("lib_lcm.live") / "page" / name).read_bytes(), kind)
        elif url.path == "/config":
            self._json(HTTPStatus.OK, self.app.config.to_json())
        elif url.path == "/frame":
            self._frame(parse_qs(url.query))
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"Nothing at {url.path}; the page is at /."})

    def _post(self) -> None:
        if urlsplit(self.path).path != "/request":
            self._json(HTTPStatus.NOT_FOUND, {"error": "Only /request takes a POST."})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"The request is over {MAX_BODY} bytes."})
            return
        try:
            request = parse_request(self.rfile.read(length), self.app.config)
        except BadRequest as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            return
        self._json(HTTPStatus.OK, {"id": self.app.engine.submit(request)})

    def _frame(self, query: dict[str, list[str]]) -> None:
        try:
            after = int(query.get("after", ["0"])[0])
        except ValueError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "after must be a whole number: the last id shown."})
            return
        frame = self.app.engine.latest(after, LONG_POLL_SECONDS)
        if frame is None:  # nothing newer yet: the page asks again
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
        else:
            self._json(HTTPStatus.OK, frame_json(frame))

    def _json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode("utf-8"), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every long poll would be a line; errors reach the page and the engine's log."""
