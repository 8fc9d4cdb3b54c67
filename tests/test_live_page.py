"""The live page end to end: ``python -m lib_lcm live``'s server, built by the command's own code on a tiny
random-weight SD 1.5 checkpoint (64×64, CPU), driven in Debian's chromium by Playwright. Chromium's fake
camera stands in for a webcam. With LCM_LORA_SCREENSHOTS=DIR, docs' picture of the page is saved there.
"""
from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM
from PIL import Image
from safetensors.torch import save_file
from standalone_support import kohya_lora, write_config_dir, write_model_with_lora_dir

from lib_lcm.cli.live import add_arguments, build_server
from lib_lcm.live.images import decode_data_url, encode_data_url
from lib_lcm.rules.catalog import LIVE_STEPS

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)]
SCREENSHOTS = os.environ.get("LCM_LORA_SCREENSHOTS")  # a folder, e.g. docs/images: refresh docs/live.md's picture
CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a test pattern, no prompt
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    components, checkpoint, lora_dir = write_model_with_lora_dir(root, "sd1", seed=0, lora_seed=10)
    style = root / "watercolor.safetensors"
    save_file(kohya_lora(components["unet"], rank=2, seed=20, scale=0.5, targets=("to_k", "to_v", "ff.net.2")),
              str(style))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--checkpoint", str(checkpoint), "--lora-dir", str(lora_dir), "--lora", f"{style}:0.8",
                              "--config", str(write_config_dir(components, root / "config")), "--port", "0"])
    server = build_server(args, lambda line: None)
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + CAMERA_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """The page with its first picture painted; ``page.start`` is the last request before it opened."""
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    start = server.engine.last_submitted
    page.add_init_script("window.painted = []; new MutationObserver(() => window.painted.push("
                         "Number(document.querySelector('#picture').dataset.frame))).observe(document, "
                         "{subtree: true, attributes: true, attributeFilter: ['data-frame']});")
    page.goto(server.url)
    wait_frame(page, start)
    yield page
    context.close()


def wait_frame(page, after: int, condition: str = "true") -> int:
    """Wait for a painted picture newer than ``after`` for which ``condition`` (JS over ``p``) holds."""
    page.wait_for_function(f"() => {{ const p = document.querySelector('#picture'); "
                           f"return Number(p.dataset.frame) > {after} && ({condition}); }}", timeout=WAIT_MS)
    return int(picture(page, "frame"))


def picture(page, key: str) -> str:
    return page.eval_on_selector("#picture", f"p => p.dataset.{key}")


def source(page) -> str:
    return page.eval_on_selector("#picture", "p => p.src")


def assert_painted_in_rising_order(page) -> None:
    painted = page.evaluate("window.painted")
    assert painted and painted == sorted(set(painted)), painted


def test_the_picture_follows_the_prompt(page, server):
    before = source(page)
    page.locator("#prompt").press_sequentially("a red fox", delay=20)
    shown = wait_frame(page, 0, "p.dataset.prompt === 'a red fox'")
    assert source(page) != before
    newest = server.engine.latest(0, timeout=0)
    assert (newest.id, newest.request.prompt) == (shown, "a red fox")
    # the seed box is locked: the server used its seed
    assert int(picture(page, "seed")) == int(page.input_value("#seed")) == newest.request.seed
    assert_painted_in_rising_order(page)


def test_unlocked_each_request_gets_a_new_seed_and_the_box_shows_it(page):
    page.uncheck("#seed-lock")
    first = wait_frame(page, 0, "true")
    page.locator("#prompt").press_sequentially("a dog")
    wait_frame(page, first, "p.dataset.prompt === 'a dog'")
    seed = picture(page, "seed")
    assert page.input_value("#seed") == seed == page.inner_text("#seed-used")


def test_drawing_on_the_sketch_switches_to_img2img(page, server):
    text_picture, shown = source(page), int(picture(page, "frame"))
    assert picture(page, "mode") == "txt2img"
    draw(page, [(0.2, 0.2), (0.5, 0.8), (0.8, 0.3)])
    wait_frame(page, shown, "p.dataset.mode === 'img2img'")
    assert page.inner_text("#mode") == "img2img" and source(page) != text_picture
    assert server.engine.latest(0, timeout=0).request.init_image.size == (64, 64)
    shown = int(picture(page, "frame"))
    page.click("#clear")
    wait_frame(page, shown, "p.dataset.mode === 'txt2img'")
    assert_painted_in_rising_order(page)


def test_images_per_second_and_ms_are_shown(page):
    assert float(page.inner_text("#fps")) > 0
    assert int(page.inner_text("#ms")) > 0


def test_the_controls_come_from_the_server(page):
    steps = page.locator("#steps")
    assert (steps.get_attribute("min"), steps.get_attribute("max"), steps.input_value()) == (
        str(LIVE_STEPS.minimum), str(LIVE_STEPS.maximum), str(LIVE_STEPS.default))
    assert "watercolor" in page.inner_text("label[for=style-0]")
    assert page.input_value("#style-0") == "0.8"


def test_the_style_slider_changes_the_picture(page):
    before, shown = source(page), int(picture(page, "frame"))
    page.eval_on_selector("#style-0", "s => { s.value = 2; s.dispatchEvent(new Event('input')); }")
    wait_frame(page, shown)
    assert source(page) != before and page.inner_text("#style-0-value") == "2"


def test_the_webcam_feeds_img2img(page):
    shown = int(picture(page, "frame"))
    page.click("#webcam")
    first = wait_frame(page, shown, "p.dataset.mode === 'img2img'")
    wait_frame(page, first)  # the next camera frame follows by itself
    page.click("#webcam")
    assert "on" not in (page.get_attribute("#webcam", "class") or "")


def test_an_uploaded_picture_feeds_img2img(page, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (120, 80), (200, 40, 40)).save(photo)
    shown = int(picture(page, "frame"))
    page.set_input_files("#upload", str(photo))
    wait_frame(page, shown, "p.dataset.mode === 'img2img'")
    # cropped to cover the square canvas: the middle is the photo's red
    red = page.eval_on_selector("#sketch", "c => Array.from(c.getContext('2d').getImageData(32, 32, 1, 1).data)")
    assert red[0] > 150 and red[1] < 100


def test_without_camera_access_the_webcam_button_says_why(browser, server):
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script("Object.defineProperty(navigator, 'mediaDevices', {value: undefined});")
    page.goto(server.url)
    page.wait_for_selector("#webcam-note:not([hidden])", timeout=WAIT_MS)
    assert page.is_disabled("#webcam") and "No webcam" in page.inner_text("#webcam-note")
    context.close()


@pytest.mark.skipif(not SCREENSHOTS, reason="set LCM_LORA_SCREENSHOTS=docs/images to refresh docs/live.md's picture")
def test_screenshot_of_the_page(page):
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.locator("#prompt").fill("a lighthouse on a cliff at sunset, watercolor")
    page.fill("#colour", "#e8a317")
    draw(page, [(0.7, 0.2), (0.8, 0.25), (0.75, 0.35), (0.65, 0.3), (0.7, 0.2)])
    page.fill("#colour", "#1f4e9c")
    draw(page, [(0.05, 0.75), (0.3, 0.7), (0.6, 0.78), (0.95, 0.72)])
    wait_frame(page, 0, "p.dataset.mode === 'img2img' && p.dataset.prompt.startsWith('a lighthouse')")
    page.screenshot(path=str(folder / "live-page.png"), full_page=True)
    assert (folder / "live-page.png").stat().st_size > 10_000


def draw(page, points: list[tuple[float, float]]) -> None:
    """A stroke with the mouse through ``points`` (fractions of the canvas)."""
    box = page.locator("#sketch").bounding_box()
    at = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=5)
    page.mouse.up()


# --- the HTTP API on the real pipeline --------------------------------------------------------------

def post(server, payload: dict | bytes) -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(server.url + "/request", data=body), timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def frame_of(server, number: int) -> dict:
    with urllib.request.urlopen(f"{server.url}/frame?after={number - 1}", timeout=WAIT_MS / 1000) as answer:
        frame = json.load(answer)
    assert frame["id"] == number, "a newer request overtook this one"
    return frame


def test_bad_json_is_400_with_a_sentence(server):
    status, answer = post(server, b"{oops")
    assert status == 400 and answer == {"error": 'The request body is not JSON; send an object such as '
                                                 '{"prompt": "a cat"}.'}


def test_style_weights_change_the_picture_and_come_back_exactly(server):
    pixels = []
    for weight in (0.8, 2.0, 0.8):
        status, answer = post(server, {"prompt": "a cat", "steps": 2, "seed": 3, "styles": [weight]})
        assert status == 200
        pixels.append(np.asarray(decode_data_url(frame_of(server, answer["id"])["image"]), dtype=np.int16))
    assert np.abs(pixels[0] - pixels[1]).max() > 2
    assert np.abs(pixels[0] - pixels[2]).max() <= 1


def test_a_strength_that_runs_no_step_is_raised_and_said(server):
    image = encode_data_url(Image.new("RGB", (64, 64), "white"))
    status, answer = post(server, {"prompt": "a cat", "steps": 1, "strength": 0.3, "image": image})
    assert status == 200
    frame = frame_of(server, answer["id"])
    assert (frame["mode"], frame["note"]) == ("img2img", "Strength 0.3 with 1 step runs no step; used 1.00.")
    assert "error" not in frame and frame["image"].startswith("data:image/jpeg")
