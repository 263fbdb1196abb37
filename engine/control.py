"""The control channel: what other threads ask of the training thread, and nothing else.

Commands (pause, resume, step, stop, a live setting) and requests (work that must run on
the training thread, such as a prediction or a save, answered through a Future) are queued
here by any thread. The training thread takes them between batches (`take`, `serve`) and
sleeps here while paused (`wait`). No torch, no model: the loop lives in engine/trainer.py.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

# What the training thread should do next.
RUN, STEP, WAIT, STOP = "run", "step", "wait", "stop"


@dataclass
class Request:
    """Work another thread asks of the training thread (which owns all torch work)."""
    work: Callable[[], object]
    future: Future = field(default_factory=Future)


class Control:
    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._pending: dict[str, Any] = {}   # live settings to apply at the next boundary
        self._paused = False
        self._stop = False
        self._steps = 0                      # batches to train while paused

    # ---- any thread -------------------------------------------------------------------------

    def pause(self) -> None:
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)

    def toggle_pause(self) -> bool:
        """Pause if running, resume if paused; returns True when now paused."""
        with self._wake:
            self._paused = not self._paused
            self._wake.notify_all()
            return self._paused

    def step(self, batches: int = 1) -> None:
        """While paused, train this many batches and pause again."""
        with self._wake:
            self._steps += batches
            self._wake.notify_all()

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()

    @property
    def stop_requested(self) -> bool:
        return self._stop

    @property
    def paused(self) -> bool:
        return self._paused

    def set(self, name: str, value: Any) -> None:
        """A live setting, already checked, to apply at the next batch boundary."""
        with self._wake:
            self._pending[name] = value
            self._wake.notify_all()

    def submit(self, work: Callable[[], object]) -> Future:
        request = Request(work)
        self._requests.put(request)
        with self._wake:
            self._wake.notify_all()
        return request.future

    def _set_paused(self, paused: bool) -> None:
        with self._wake:
            self._paused = paused
            self._wake.notify_all()

    # ---- the training thread ----------------------------------------------------------------

    def take(self) -> tuple[dict[str, Any], str]:
        """The settings to apply now, and what to do: RUN, STEP (one batch while paused),
        WAIT (paused) or STOP."""
        with self._wake:
            changes, self._pending = self._pending, {}
            if self._stop:
                return changes, STOP
            if not self._paused:
                return changes, RUN
            if self._steps > 0:
                self._steps -= 1
                return changes, STEP
            return changes, WAIT

    def halt(self) -> None:
        """Pause from the training thread itself (a diverged epoch), dropping queued steps."""
        with self._wake:
            self._paused = True
            self._steps = 0

    def wait(self, paused: bool = True, timeout: float = 0.25) -> None:
        """Sleep until a command or request arrives (or timeout), unless one is waiting.
        With paused, also return at once when no longer paused or a step was asked for."""
        with self._wake:
            idle = self._requests.empty() and not self._pending and not self._stop
            if idle and (not paused or (self._paused and not self._steps)):
                self._wake.wait(timeout=timeout)

    def serve(self) -> None:
        """Run every queued request, each answering its Future."""
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if not request.future.set_running_or_notify_cancel():
                continue
            try:
                request.future.set_result(request.work())
            except Exception as e:  # noqa: BLE001 - the asker shows it
                request.future.set_exception(e)

    def fail_pending(self, reason: str = "the trainer has stopped") -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(RuntimeError(reason))
