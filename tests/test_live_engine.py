"""The live engine's ordering, without torch or a browser: a fake render that blocks until the test lets
it go (threading.Event), so every interleaving below is forced, not hoped for."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest
from helpers import ROOT

from lib_lcm.live.engine import Frame, LiveEngine, LiveRequest, RenderRefused, describe

WAIT = 10.0  # seconds: only reached when the engine is broken


class GatedRender:
    """Renders ``prompt.upper()`` once the test releases that prompt; records what it rendered."""

    def __init__(self, clock: FakeClock | None = None, seconds: dict[str, float] | None = None) -> None:
        self._lock = threading.Lock()
        self._started: dict[str, threading.Event] = {}
        self._released: dict[str, threading.Event] = {}
        self.rendered: list[str] = []
        self.clock, self.seconds = clock, seconds or {}

    def _event(self, table: dict[str, threading.Event], prompt: str) -> threading.Event:
        with self._lock:
            return table.setdefault(prompt, threading.Event())

    def started(self, prompt: str) -> None:
        assert self._event(self._started, prompt).wait(WAIT), f"{prompt!r} never started rendering"

    def release(self, *prompts: str) -> None:
        for prompt in prompts:
            self._event(self._released, prompt).set()

    def __call__(self, request: LiveRequest) -> str:
        self.rendered.append(request.prompt)
        self._event(self._started, request.prompt).set()
        assert self._event(self._released, request.prompt).wait(WAIT)
        if self.clock:
            self.clock.now += self.seconds.get(request.prompt, 0.0)
        if request.prompt.startswith("refuse"):
            raise RenderRefused("steps 9: the live page runs 1 to 4 steps.")
        if request.prompt.startswith("crash"):
            raise KeyError("unet")
        return request.prompt.upper()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ask(prompt: str) -> LiveRequest:
    return LiveRequest(prompt=prompt, steps=2, seed=1)


@pytest.fixture
def render():
    return GatedRender()


@pytest.fixture
def engine(render):
    engine = LiveEngine(render)
    yield engine
    render.release(*[str(i) for i in range(10)], "a", "b", "c")
    engine.close(timeout=WAIT)


def next_frame(engine: LiveEngine, after: int) -> Frame:
    frame = engine.latest(after, timeout=WAIT)
    assert frame is not None, f"no frame after {after}"
    return frame


def test_submit_numbers_rise_and_a_frame_carries_its_request(engine, render):
    assert [engine.submit(ask("a"))] == [1]
    render.release("a")
    frame = next_frame(engine, 0)
    assert (frame.id, frame.output, frame.request.prompt, frame.error) == (1, "A", "a", None)
    render.started("a")
    assert engine.submit(ask("b")) == 2


def test_the_newest_wins_and_waiting_requests_it_replaced_are_never_rendered(engine, render):
    engine.submit(ask("1"))
    render.started("1")
    assert (engine.submit(ask("2")), engine.submit(ask("3"))) == (2, 3)
    render.release("1")
    assert next_frame(engine, 0).id == 1
    render.started("3")
    render.release("2", "3")
    frame = next_frame(engine, 1)
    assert (frame.id, frame.output) == (3, "3")
    assert render.rendered == ["1", "3"]


def test_latest_never_answers_with_a_frame_at_or_below_after(engine, render):
    engine.submit(ask("1"))
    render.started("1")
    engine.submit(ask("2"))
    render.release("1", "2")
    render.started("2")
    assert next_frame(engine, 1).id == 2
    assert engine.latest(2, timeout=0) is None
    assert engine.latest(5, timeout=0) is None
    assert next_frame(engine, 0).id == 2  # the newest, not each one in turn


def test_latest_waits_until_a_newer_frame_exists(engine, render):
    answers: list[Frame | None] = []
    reader = threading.Thread(target=lambda: answers.append(engine.latest(0, timeout=WAIT)))
    reader.start()
    engine.submit(ask("a"))
    render.started("a")
    assert answers == []  # still rendering: nothing to show yet
    render.release("a")
    reader.join(WAIT)
    assert [frame.id for frame in answers if frame] == [1]


def test_a_cancelled_render_is_never_published(engine, render):
    engine.submit(ask("1"))
    render.started("1")
    engine.submit(ask("2"))
    engine.cancel()
    render.release("1")
    engine.submit(ask("3"))
    render.started("3")  # the worker is past "1" and skipped the dropped "2"
    assert engine.latest(0, timeout=0) is None
    render.release("3")
    assert next_frame(engine, 0).id == 3
    assert render.rendered == ["1", "3"]


def test_a_failing_render_reports_its_sentence_and_the_worker_goes_on(engine, render, caplog):
    caplog.set_level(logging.WARNING, logger="lib_lcm.live.engine")
    engine.submit(ask("refuse"))
    render.release("refuse")
    frame = next_frame(engine, 0)
    assert (frame.output, frame.error) == (None, "steps 9: the live page runs 1 to 4 steps.")
    engine.submit(ask("crash"))
    render.release("crash")
    frame = next_frame(engine, 1)
    assert frame.error == "'unet'"
    # a refusal is one line in the log; an unexpected failure keeps its traceback there
    assert [bool(record.exc_info) for record in caplog.records] == [False, True]
    engine.submit(ask("a"))
    render.release("a")
    assert next_frame(engine, 2).output == "A"


def test_close_stops_the_worker_wakes_readers_and_drops_the_render_in_flight(render):
    engine = LiveEngine(render)
    answers: list[Frame | None] = []
    reader = threading.Thread(target=lambda: answers.append(engine.latest(0)))  # no timeout: only close wakes it
    reader.start()
    engine.submit(ask("1"))
    render.started("1")
    engine.close(timeout=0)
    reader.join(WAIT)
    assert not reader.is_alive() and answers == [None]
    render.release("1")
    engine._worker.join(WAIT)
    assert not engine._worker.is_alive()
    assert engine.latest(0, timeout=0) is None  # the render that was in flight is not shown
    with pytest.raises(RuntimeError, match="closed"):
        engine.submit(ask("2"))


def test_frames_come_in_rising_order_and_end_at_close(render):
    engine = LiveEngine(render)
    seen: list[int] = []
    read_one = [threading.Event(), threading.Event()]

    def read() -> None:
        for frame in engine.frames():
            seen.append(frame.id)
            read_one[len(seen) - 1].set()

    reader = threading.Thread(target=read)
    reader.start()
    for index, prompt in enumerate(("1", "2")):
        engine.submit(ask(prompt))
        render.release(prompt)
        assert read_one[index].wait(WAIT)
    engine.close(timeout=WAIT)
    reader.join(WAIT)
    assert not reader.is_alive() and seen == [1, 2]


def test_images_per_second_is_measured_over_recent_successful_renders():
    clock = FakeClock()
    render = GatedRender(clock, {"a": 1.0, "b": 0.25, "c": 0.25, "refuse": 5.0})
    engine = LiveEngine(render, clock=clock, recent=2)
    try:
        rates, seconds = [], []
        for number, prompt in enumerate(("a", "b", "refuse", "c"), start=1):
            engine.submit(ask(prompt))
            render.release(prompt)
            frame = next_frame(engine, number - 1)
            rates.append(frame.images_per_second)
            seconds.append(frame.seconds)
        # a: 1 in 1 s; a, b: 2 in 1.25 s; the refusal does not count; b, c: 2 in 0.5 s (a left the window)
        assert rates == [1.0, 1.6, 1.6, 4.0]
        assert seconds == [1.0, 0.25, 5.0, 0.25]
        assert engine.images_per_second() == 4.0
    finally:
        engine.close(timeout=WAIT)


def test_describe_gives_one_line():
    assert describe(ValueError("first line\nsecond")) == "first line"
    assert describe(RuntimeError()) == "RuntimeError"
    assert LiveRequest("a", 2, 1).mode == "txt2img" and LiveRequest("a", 2, 1, init_image=object()).mode == "img2img"


def test_the_engine_and_the_server_import_without_torch():
    """Other front ends embed the engine without the model stack; the server needs only PIL, when used."""
    code = ("import sys, lib_lcm.live.engine, lib_lcm.live.server, lib_lcm.live.images; "
            "heavy = [m for m in ('torch', 'diffusers', 'PIL') if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
