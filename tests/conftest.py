"""Shared fixtures: the book's corpus from ../shared/data (tests may read it; the program never does)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_TIMEMACHINE = REPO.parent / "shared" / "data" / "timemachine.txt"


@pytest.fixture(scope="session")
def timemachine_path() -> Path:
    if not SHARED_TIMEMACHINE.is_file():
        pytest.fail(f"the test corpus is missing: {SHARED_TIMEMACHINE}")
    return SHARED_TIMEMACHINE


@pytest.fixture(scope="session")
def timemachine_corpus(timemachine_path):
    from engine.corpus import load_file
    return load_file(timemachine_path)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Never touch the user's cache: each test gets a cache seeded with the book's file."""
    if "RNN_TUI_TEST_KEEP_ENV" in os.environ:
        return
    data = tmp_path_factory.mktemp("data")
    if SHARED_TIMEMACHINE.is_file():
        (data / "timemachine.txt").write_bytes(SHARED_TIMEMACHINE.read_bytes())
    monkeypatch.setenv("RNN_TUI_DATA_DIR", str(data))
    # Run logs, checkpoints and settings files go to fresh directories too.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg_data")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg_config")))
