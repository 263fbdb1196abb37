"""Snapshot tests of the screens comparing two models, at 80x24 and 160x48: Surprise (the
difference in colour, the two side by side, and the difference without colour) and
Gradients through time (both models' curves on one plot).

The fixed, seeded fake of test_inspect_snapshots is model A; B is a seeded LSTM whose
vocabulary lacks some of the text's letters (marked, not compared) and whose run's name looks
like markup. Update with `pytest tests/test_compare_snapshots.py --snapshot-update`,
then look.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import TrainConfig
from engine.data import load_corpus
from engine.model import RNNModel, model_spec
from tests.test_app_snapshots import SIZES
from tests.test_inspect_snapshots import make_app, opened
from tui.screens.comparing import OtherModel

OTHER_TEXT = "the time traveller met the maiden at the mill and smiled "


def other_model() -> OtherModel:
    _, vocab = load_corpus(OTHER_TEXT, mode="book")
    spec = model_spec(TrainConfig(cell="lstm", num_hiddens=16), len(vocab))
    net = RNNModel(spec, "cpu", generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for p in net.params:
            p.mul_(40.0)
    return OtherModel(Path("runs/[red]other[b] run/checkpoint.pt"), "[red]other[b] run",
                      "lstm, 16 hidden units, epoch 30", "book", net, vocab)


def compared(*keys, screen_key="i", result="SurpriseComparison"):
    async def run(pilot):
        await opened(screen_key)(pilot)  # the live model's view first
        screen = pilot.app.screen
        screen.other = other_model()  # as c and the picker leave it
        screen.read()
        while type(screen.result).__name__ != result or screen.pending:
            await pilot.pause(0.05)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.3)
    return run


@pytest.fixture(autouse=True)
def _truecolour(monkeypatch):
    monkeypatch.setenv("COLORTERM", "truecolor")


@SIZES
def test_surprise_difference(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=compared())


@SIZES
def test_surprise_side_by_side(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=compared("d"))


@SIZES
def test_surprise_difference_without_colour(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=compared("m"))


@SIZES
def test_gradients_compared(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size,
                        run_before=compared(screen_key="t", result="GradientsComparison"))
