"""Shared fixtures: the book's corpus, as the package ships it, and private user folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# In CI (CI is set) the property tests draw the same examples every run, so a red CI names a
# change, not an unlucky draw; elsewhere each run draws new ones and the search goes on.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
TIMEMACHINE = REPO / "engine" / "corpora" / "timemachine.txt"


@pytest.fixture(scope="session")
def timemachine_path() -> Path:
    """The packaged Time Machine (the file `--corpus timemachine` reads), as a path."""
    return TIMEMACHINE


@pytest.fixture(scope="session")
def timemachine_corpus():
    from engine.corpus import load_timemachine
    return load_timemachine()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Never touch the user's folders: run logs, checkpoints, settings files and caches go
    to fresh directories for each test."""
    if "RNN_TUI_TEST_KEEP_ENV" in os.environ:
        return
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg_data")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg_config")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg_state")))  # crash logs
