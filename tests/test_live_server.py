"""The live page's HTTP API on a real local server, with a fake render (no torch, no model): what the page
sends, what it gets back, and a sentence (never a traceback) for every request it should not send."""
from __future__ import annotations

import base64
import io
import json
import threading
import urllib.error
import urllib.request

import pytest
from PIL import Image

from lib_lcm.live import server as live_server
from lib_lcm.live.engine import LiveEngine, LiveRequest, RenderRefused
from lib_lcm.live.images import Picture, decode_data_url, encode_data_url
from lib_lcm.live.server import LiveServer, PageConfig, StyleSlider
from lib_lcm.rules.catalog import LIVE_STEPS

CONFIG = PageConfig(steps=LIVE_STEPS, seeds=2**32, width=64, height=48, model="tiny",
                    styles=(StyleSlider("watercolor", 0.8, 0.0, 2.0),))


def fake_render(request: LiveRequest) -> Picture:
    if request.prompt == "refuse":
        raise RenderRefused("The style LoRAs are fused into the weights.")
    shade = 255 if request.init_image is not None else 0
    return Picture(encode_data_url(Image.new("RGB", (CONFIG.width, CONFIG.height), (shade, 0, 0))),
                   request.seed if request.seed >= 0 else 7)


@pytest.fixture
def app():
    rendered: list[LiveRequest] = []

    def render(request: LiveRequest) -> Picture:
        rendered.append(request)
        return fake_render(request)

    server = LiveServer(LiveEngine(render), CONFIG, port=0)
    server.rendered = rendered
    server.start()
    yield server
    server.close()


def call(app, path: str, body: bytes | None = None) -> tuple[int, dict | bytes]:
    request = urllib.request.Request(app.url + path, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, raw, kind = answer.status, answer.read(), answer.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers["Content-Type"]
    return status, json.loads(raw) if kind.startswith("application/json") else raw


def post(app, payload) -> tuple[int, dict]:
    status, body = call(app, "/request", json.dumps(payload).encode())
    assert isinstance(body, dict)
    return status, body


def png_url(size=(100, 80)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (0, 128, 255)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_the_page_and_its_files_are_served(app):
    for path, marker in (("/", b'src="/live.js"'), ("/live.js", b"/frame?after="), ("/live.css", b"#picture")):
        status, body = call(app, path)
        assert status == 200 and marker in body


def test_config_carries_the_live_step_range_and_the_style_sliders(app):
    status, body = call(app, "/config")
    assert status == 200
    assert body["steps"] == {"minimum": LIVE_STEPS.minimum, "maximum": LIVE_STEPS.maximum,
                             "default": LIVE_STEPS.default}
    assert body["styles"] == [{"name": "watercolor", "weight": 0.8, "minimum": 0.0, "maximum": 2.0}]
    assert (body["width"], body["height"], body["seeds"]) == (64, 48, 2**32)


def test_a_request_is_answered_with_its_id_and_its_frame_follows(app):
    assert post(app, {"prompt": "a cat", "steps": 2, "seed": 5, "styles": [0.5]}) == (200, {"id": 1})
    status, frame = call(app, "/frame?after=0")
    assert status == 200
    assert (frame["id"], frame["mode"], frame["prompt"], frame["seed"], frame["steps"]) == (1, "txt2img", "a cat", 5, 2)
    assert frame["image"].startswith("data:image/jpeg;base64,") and decode_data_url(frame["image"]).size == (64, 48)
    assert frame["fps"] > 0 and frame["ms"] >= 0 and "error" not in frame
    assert app.rendered[0].style_weights == (0.5,)


def test_an_image_makes_it_img2img(app):
    assert post(app, {"prompt": "a cat", "image": png_url(), "strength": 0.75})[0] == 200
    frame = call(app, "/frame?after=0")[1]
    assert frame["mode"] == "img2img" and decode_data_url(frame["image"]).getpixel((0, 0))[0] > 200
    request = app.rendered[0]
    assert request.init_image.size == (100, 80) and request.strength == 0.75
    assert (request.steps, request.seed, request.style_weights) == (LIVE_STEPS.default, -1, (0.8,))


def test_a_render_error_comes_back_as_the_frames_error(app):
    post(app, {"prompt": "refuse"})
    frame = call(app, "/frame?after=0")[1]
    assert frame["error"] == "The style LoRAs are fused into the weights." and "image" not in frame


def test_nothing_newer_within_the_long_poll_is_no_content(app, monkeypatch):
    monkeypatch.setattr(live_server, "LONG_POLL_SECONDS", 0.05)
    assert call(app, "/frame?after=0") == (204, b"")


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"prompt": 3}', "prompt must be text"),
    (b'{"steps": 9}', f"runs {LIVE_STEPS.minimum} to {LIVE_STEPS.maximum} steps"),
    (b'{"steps": 2.5}', "steps must be a whole number"),
    (b'{"steps": true}', "steps must be a whole number"),
    (b'{"seed": -2}', "-1 for a new random seed"),
    (b'{"seed": 4294967296}', "choose 0 to 4294967295"),
    (b'{"strength": 0}', "above 0 and at most 1"),
    (b'{"strength": "half"}', "strength must be a number"),
    (b'{"styles": [0.5, 0.5]}', "a list of 1 weights"),
    (b'{"styles": [3]}', "The weight of watercolor is 3; choose a value from 0 to 2."),
    (b'{"image": "http://example.com/cat.png"}', "data URL"),
    (b'{"image": "data:image/png;base64,@@@"}', "not valid base64"),
    (b'{"image": "data:image/png;base64,aGVsbG8="}', "not a PNG, JPEG or WebP"),
])
def test_a_bad_request_is_400_with_a_sentence(app, body, words):
    status, answer = call(app, "/request", body)
    assert status == 400 and words in answer["error"] and answer["error"].endswith(".")
    assert "Traceback" not in answer["error"]
    assert app.engine.last_submitted == 0


def test_other_mistakes_are_sentences_too(app, monkeypatch):
    assert call(app, "/frame?after=x")[0] == 400
    status, answer = call(app, "/nothing")
    assert status == 404 and "the page is at /" in answer["error"]
    assert call(app, "/frame", b"{}")[0] == 404
    monkeypatch.setattr(live_server, "MAX_BODY", 10)
    status, answer = call(app, "/request", b'{"prompt": "a long prompt"}')
    assert status == 413 and "over 10 bytes" in answer["error"]


def test_a_server_bug_is_500_with_a_sentence_and_the_traceback_stays_in_the_log(app, monkeypatch, caplog):
    def broken(request):
        raise KeyError("pending")

    monkeypatch.setattr(app.engine, "submit", broken)
    status, answer = post(app, {"prompt": "a cat"})
    assert status == 500 and answer == {"error": "The server failed: 'pending'."}
    assert any(record.exc_info for record in caplog.records if record.name == "lib_lcm.live.server")


def test_a_server_that_never_served_closes_at_once():
    """close() must not wait for a serve_forever that never ran (an embedding that built but did not start)."""
    server = LiveServer(LiveEngine(lambda request: request.prompt), CONFIG, port=0)
    closing = threading.Thread(target=server.close)
    closing.start()
    closing.join(timeout=5)
    assert not closing.is_alive()
