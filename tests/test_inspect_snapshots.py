"""Snapshot tests of the looking-inside screens, on a fixed, seeded tiny model.

The fake trainer of test_app_snapshots, with `request(work)` answered on the spot by running
work on a small model whose weights are drawn from a fixed seed, so every run draws the same
screens. Update with `pytest tests/test_inspect_snapshots.py --snapshot-update`, then look.
"""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

import pytest
import torch

from engine.data import load_corpus
from engine.model import RNNModelScratch
from tests.test_app_snapshots import CONFIG, FakeTrainer, SIZES, until_ready
from tui.app import RnnTuiApp

TEXT = ("the time traveller for so it will be convenient to speak of him was expounding a "
        "recondite matter to us his grey eyes shone and twinkled and his usually pale face "
        "was flushed and animated the fire burned brightly and the soft radiance of the "
        "incandescent lights in the lilies of silver caught the bubbles that flashed and "
        "passed in our glasses ") * 4


class InspectingTrainer(FakeTrainer):
    """With a model whose weights come from a fixed seed, and requests answered on the spot."""

    def __init__(self, config, corpus=None) -> None:
        super().__init__(config.replace(batch_size=4, num_steps=20), corpus)
        tokens, self.vocab = load_corpus(TEXT, mode="book")
        self.loader = SimpleNamespace(corpus=tokens)
        self.net = RNNModelScratch(len(self.vocab), 24, "cpu",
                                   generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            for p in self.net.params:
                p.mul_(80.0)

    def request(self, work) -> Future:
        future: Future = Future()
        future.set_result(work())
        return future


def make_app() -> RnnTuiApp:
    return RnnTuiApp(CONFIG, trainer_factory=InspectingTrainer)


def opened(*keys):
    async def run(pilot):
        await until_ready(pilot)
        for key in keys:
            await pilot.press(key)
        while getattr(pilot.app.screen, "result", None) is None or pilot.app.screen.pending:
            await pilot.pause(0.05)
        await pilot.pause(0.3)
    return run


@pytest.fixture(autouse=True)
def _truecolour(monkeypatch):
    monkeypatch.setenv("COLORTERM", "truecolor")


@SIZES
def test_surprise_screen(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=opened("i"))


@SIZES
def test_surprise_screen_without_colour(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=opened("i", "m"))


@SIZES
def test_hidden_units_screen(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=opened("u"))


@SIZES
def test_gradients_screen(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=opened("t"))


@pytest.mark.parametrize("key", ["u", "t"], ids=["hidden_units", "gradients"])
def test_screen_without_truecolour(snap_compare, monkeypatch, key):
    """The heatmap's legend in heights alone; a marker for each gradient curve."""
    monkeypatch.delenv("COLORTERM")
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=opened(key))
