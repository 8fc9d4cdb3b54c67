"""Newest-wins rendering: requests come in faster than pictures come out, so only the newest counts.

One worker thread renders one request at a time. A request submitted while another renders waits in a
single slot, and a newer one replaces it there: the replaced one is never rendered. A picture is
published only when its request is newer than the last published one, so a slow, stale picture can
never paint over a newer one. Readers wait for "anything newer than what I show" (``latest``), which
is what a long-polling page and a generator (``frames``) both need.

Pure Python, no torch: the render is a callable, so this runs in tests and other front ends as is.

    engine = LiveEngine(render)            # render(LiveRequest) -> anything, e.g. a picture
    number = engine.submit(LiveRequest("a cat", steps=2, seed=1))
    frame = engine.latest(after=0, timeout=5.0)   # Frame(id=number, output=..., ...) or None
    engine.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

Output = TypeVar("Output")
Mode = Literal["txt2img", "img2img"]
DEFAULT_STRENGTH = 0.5  # img2img: half the sketch kept, half repainted
RECENT_FRAMES = 8  # images/s is measured over this many renders: recent enough to follow a change of steps
_log = logging.getLogger(__name__)


class RenderRefused(Exception):
    """A request the render cannot serve, e.g. a style weight out of range: ``str`` is the whole sentence."""


@dataclass(frozen=True)
class LiveRequest:
    """What the page shows at one moment: one picture's worth of settings."""

    prompt: str
    steps: int
    seed: int  # -1: a new random seed (the renderer reports the one it used)
    strength: float = DEFAULT_STRENGTH  # img2img only
    init_image: Any = None  # PIL image: img2img from the sketch, an upload or the webcam
    style_weights: tuple[float, ...] = ()  # one weight per style LoRA, in their order

    @property
    def mode(self) -> Mode:
        return "txt2img" if self.init_image is None else "img2img"


@dataclass(frozen=True)
class Frame(Generic[Output]):
    """The result for request ``id``: the render's output, or the sentence saying why there is none."""

    id: int
    request: LiveRequest
    output: Output | None
    seconds: float  # this render's duration
    images_per_second: float  # over the recent successful renders; 0 until there is one
    error: str | None = None


class LiveEngine(Generic[Output]):
    """A single worker thread that always renders the newest pending request; see the module docstring."""

    def __init__(self, render: Callable[[LiveRequest], Output], clock: Callable[[], float] = time.perf_counter,
                 recent: int = RECENT_FRAMES) -> None:
        self._render = render
        self._clock = clock
        self._changed = threading.Condition()
        self._submitted = 0  # the last sequence number handed out
        self._pending: tuple[int, LiveRequest] | None = None
        self._published: Frame[Output] | None = None
        self._floor = 0  # nothing at or below this sequence number is published (cancel)
        self._durations: deque[float] = deque(maxlen=recent)
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="lib_lcm-live", daemon=True)
        self._worker.start()

    def submit(self, request: LiveRequest) -> int:
        """Queue ``request`` in place of any request still waiting; returns its rising sequence number."""
        with self._changed:
            if self._closed:
                raise RuntimeError("the live engine is closed")
            self._submitted += 1
            self._pending = (self._submitted, request)
            self._changed.notify_all()
            return self._submitted

    def latest(self, after: int = 0, timeout: float | None = None) -> Frame[Output] | None:
        """The newest published frame once its id is above ``after``; None on timeout or when closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._newer_than(after) or self._closed, timeout)
            return self._published if self._newer_than(after) else None

    def frames(self, after: int = 0) -> Iterator[Frame[Output]]:
        """Published frames in strictly rising id order until ``close``; a reader slower than the engine
        skips to the newest, as a screen would."""
        while (frame := self.latest(after)) is not None:
            yield frame
            after = frame.id

    def cancel(self) -> None:
        """Forget everything submitted so far: the waiting request is dropped and the one rendering now is
        not published. Later submissions render as usual."""
        with self._changed:
            self._pending = None
            self._floor = self._submitted

    def close(self, timeout: float | None = None) -> None:
        """Stop the worker after its current render (whose result is dropped) and wake every reader."""
        with self._changed:
            self._closed = True
            self._pending = None
            self._changed.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_submitted(self) -> int:
        return self._submitted

    def images_per_second(self) -> float:
        """Throughput while busy: renders over their summed durations, so idle time between edits does
        not count as slowness."""
        with self._changed:
            return self._rate()

    def _newer_than(self, after: int) -> bool:
        return self._published is not None and self._published.id > after

    def _rate(self) -> float:
        total = sum(self._durations)
        return len(self._durations) / total if total > 0 else 0.0

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                assert self._pending is not None
                number, request = self._pending
                self._pending = None
            self._publish(number, request, *self._run(request))

    def _run(self, request: LiveRequest) -> tuple[Output | None, str | None, float]:
        """Render, timing it; a failure becomes a sentence for that request, and the worker goes on."""
        start = self._clock()
        try:
            output: Output | None = self._render(request)
            error = None
        except Exception as exc:  # any render failure is reported for this frame; the next one may well work
            # A refusal is the user's to fix and says so itself; anything else is a bug worth its traceback.
            _log.warning("live render failed: %s", describe(exc), exc_info=not isinstance(exc, RenderRefused))
            output, error = None, describe(exc)
        return output, error, self._clock() - start

    def _publish(self, number: int, request: LiveRequest, output: Output | None, error: str | None,
                 seconds: float) -> None:
        with self._changed:
            last = self._published.id if self._published else 0
            if self._closed or number <= max(last, self._floor):
                return  # stale or cancelled: never shown
            if error is None:
                self._durations.append(seconds)
            self._published = Frame(number, request, output, seconds, self._rate(), error)
            self._changed.notify_all()


def describe(error: BaseException) -> str:
    """One line for the page: the error's own first line, or its kind when it has no message."""
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
