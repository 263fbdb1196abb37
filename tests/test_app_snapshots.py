"""Snapshot tests of the screens (pytest-textual-snapshot), with a fixed, fake engine.

The fake has the trainer's surface (setup/run/snapshot/events/info/commands/
request_prediction) and fixed numbers, so every run draws the same screen. Update the SVGs
under tests/__snapshots__/ with `pytest tests/test_app_snapshots.py --snapshot-update`,
then look at them.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Future
from dataclasses import replace

import pytest

from engine.config import LIVE_FIELDS, TrainConfig
from engine.generate import Prediction
from engine.events import RunInfo, RunState, Sample, Snapshot
from tui.app import RnnTuiApp

CONFIG = TrainConfig(epochs=500, num_hiddens=512, sample_every=10)
HISTORY = tuple(1.2 + 25.0 * math.exp(-e / 9.0) + 0.4 * math.sin(e) ** 2 for e in range(137))
SAMPLES = tuple(
    Sample(epoch, prefix, text)
    for epoch, texts in (
        (130, ("e the time traveller held in his hand was a glitteri",
               " smiled round at us then still smiling faintly and ")),
        (120, ("e the time travell saidr whe mathe the mitter and t",
               " the pat of the time traveller proceeded anyreal bo")),
        (110, (" the medical man and the psychologist and the provi",
               " and the thing the time traveller said the prove th")),
    )
    for prefix, text in zip(CONFIG.prefixes, texts))
SNAPSHOT = Snapshot(
    state=RunState.TRAINING, epoch=137, batch=5, batches_per_epoch=8,
    perplexity=HISTORY[-1], history=HISTORY, tokens_per_sec=53_172.0, loss=0.4317,
    grad_norm=0.8264, samples=SAMPLES, elapsed=83.0,
    **{name: getattr(CONFIG, name) for name in LIVE_FIELDS})
INFO = RunInfo("timemachine", 178_979, 10_000, 28, "cpu", "fast (oneDNN fused kernels)", 291_356)
PREDICTION = Prediction("Time tr", "aveller proceeded anyreal body must have extension",
                        unknown=((0, "T"),),
                        top=(("a", 0.612), ("e", 0.201), ("i", 0.074), (" ", 0.041), ("o", 0.020)))


class FakeTrainer:
    """Stands still at epoch 137 of 500; answers every prompt with PREDICTION."""

    read_only = False

    def __init__(self, config: TrainConfig, corpus=None) -> None:
        self.config = config
        self.info: RunInfo | None = None
        self._stopped = threading.Event()
        self._paused = False

    def setup(self) -> RunInfo:
        self.info = INFO
        return INFO

    def run(self, keep_alive: bool = False) -> Snapshot:
        self.setup()
        self._stopped.wait()
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        if self.info is None:
            return Snapshot(**{name: getattr(CONFIG, name) for name in LIVE_FIELDS})
        return SNAPSHOT if not self._paused else PAUSED

    def events(self) -> list:
        return []

    def stop(self) -> None:
        self._stopped.set()

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def toggle_pause(self) -> bool:
        self._paused = not self._paused
        return self._paused

    def step(self, batches: int = 1) -> None:
        pass

    def set_live(self, name, value) -> None:
        pass

    def request_prediction(self, prefix: str, num_preds: int = 50, sampling=None):
        future: Future = Future()
        future.set_result(PREDICTION)
        return future


PAUSED = Snapshot(**{**SNAPSHOT.__dict__, "state": RunState.PAUSED})


def make_app() -> RnnTuiApp:
    return RnnTuiApp(CONFIG, trainer_factory=FakeTrainer)


async def until_ready(pilot) -> None:
    app = pilot.app
    while app.info is None or app.last_snapshot is not SNAPSHOT:
        await pilot.pause(0.05)
    samples = app.query_one("#samples")
    while not samples.up_to_date:  # drawn at most once a second
        await pilot.pause(0.05)
    await pilot.pause(0.3)


SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])


@SIZES
def test_main_screen(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=until_ready)


@SIZES
def test_help_screen(snap_compare, size):
    async def open_help(pilot):
        await until_ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=size, run_before=open_help)


@SIZES
def test_full_plot(snap_compare, size):
    async def plot(pilot):
        await until_ready(pilot)
        await pilot.press("p")  # the whole screen
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=size, run_before=plot)


async def answered_prompt(pilot) -> None:
    """"Time tr" typed in the prompt, its answer shown, and the prompt left."""
    await until_ready(pilot)
    await pilot.press("g", *"Time tr")
    app, prompt = pilot.app, pilot.app.query_one("#prompt")
    # Until the answer to the whole prefix is in (typing may outlast the debounce).
    while (prompt.prediction is None or prompt._debounce is not None
           or prompt._requested is None or prompt._requested[0] != "Time tr"
           or app._prediction_answered != app._prediction_token):
        await pilot.pause(0.05)
    await pilot.press("escape")
    await pilot.pause(0.3)


@SIZES
def test_prompt_and_plot(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=answered_prompt)


# Sure and unsure characters in turn, from 7% to 97%.
CONFIDENT = replace(PREDICTION, probs=tuple(round(0.97 - 0.9 * abs(math.sin(i * 0.7)), 3)
                                            for i in range(len(PREDICTION.text))))


class ConfidentTrainer(FakeTrainer):
    def request_prediction(self, prefix: str, num_preds: int = 50, sampling=None):
        future: Future = Future()
        future.set_result(CONFIDENT)
        return future


@pytest.mark.parametrize("colorterm", ["truecolor", ""], ids=["truecolour", "digits"])
def test_confidence_shading(snap_compare, monkeypatch, colorterm):
    """k: the continuation on the colour of each character's probability, or, without
    truecolour, the probability's tenths under each character."""
    monkeypatch.setenv("COLORTERM", colorterm)

    async def shade(pilot):
        await answered_prompt(pilot)
        await pilot.press("k")
        await pilot.pause(0.3)

    assert snap_compare(RnnTuiApp(CONFIG, trainer_factory=ConfidentTrainer),
                        terminal_size=(80, 24), run_before=shade)


def test_restart_confirmation(snap_compare):
    async def confirm(pilot):
        await until_ready(pilot)
        pilot.app.query_one("#hp-num_hiddens").value = "256"
        await pilot.press("r")
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=confirm)
