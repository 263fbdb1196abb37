"""Snapshot tests of the run browser (b), the overlay (v) and the fork dialog (f), at 80x24
and 160x48, on fixed fake runs. Update with `pytest tests/test_runs_snapshots.py
--snapshot-update`, then look at what changed.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from unittest.mock import patch

import pytest

from tests.test_app_snapshots import CONFIG, FakeTrainer, SIZES, until_ready
from tests.test_runs_screens import three_runs
from tui.app import RnnTuiApp
from tui.screens.fork import ForkScreen
from tui.screens.overlay import OverlayScreen
from tui.screens.runs import RunsScreen


# The browser shows where the runs are: a fixed place, or every snapshot would differ.
DATA_HOME = Path(tempfile.gettempdir()) / "rnn-tui-snapshots"


@pytest.fixture(autouse=True)
def _fixed_places(monkeypatch):
    monkeypatch.setenv("COLORTERM", "truecolor")
    shutil.rmtree(DATA_HOME, ignore_errors=True)
    monkeypatch.setenv("XDG_DATA_HOME", str(DATA_HOME))
    yield
    shutil.rmtree(DATA_HOME, ignore_errors=True)


def make_app() -> RnnTuiApp:
    # Every record's time from a fixed clock, one minute apart: the browser shows the dates.
    minutes = itertools.count()
    with patch("engine.runlog.utc_timestamp",
               lambda: f"2026-01-01T{next(minutes) // 60:02d}:{next(minutes) % 60:02d}:00+00:00"):
        three_runs()
    return RnnTuiApp(CONFIG, trainer_factory=FakeTrainer, record=False)


def pressed(*keys, until):
    async def run(pilot):
        await until_ready(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.05)
        while not (isinstance(pilot.app.screen, until)
                   and getattr(pilot.app.screen, "runs", True)):
            await pilot.pause(0.05)
        await pilot.pause(0.3)
    return run


@SIZES
def test_run_browser(snap_compare, size):
    """Newest first; the settings that differ highlighted; one run marked."""
    assert snap_compare(make_app(), terminal_size=size,
                        run_before=pressed("b", "space", until=RunsScreen))


@SIZES
def test_overlay(snap_compare, size):
    """Two runs' train and validation curves, a legend naming each in its colour."""
    assert snap_compare(make_app(), terminal_size=size,
                        run_before=pressed("b", "space", "down", "space", "v",
                                           until=OverlayScreen))


def test_overlay_without_truecolour(snap_compare, monkeypatch):
    """Each run's curves drawn with its number and letter."""
    monkeypatch.delenv("COLORTERM")
    assert snap_compare(make_app(), terminal_size=(80, 24),
                        run_before=pressed("b", "space", "down", "space", "v",
                                           until=OverlayScreen))


@SIZES
def test_fork_dialog(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=pressed("f", until=ForkScreen))
