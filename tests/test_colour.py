"""The one truecolour check: Textual's own colour system for the terminal, and NO_COLOR."""

from __future__ import annotations

import pytest
from textual.app import App

from tui.colour import truecolour

CASES = [
    ({"COLORTERM": "truecolor"}, True),
    ({"COLORTERM": "24bit"}, True),
    ({"TEXTUAL_COLOR_SYSTEM": "truecolor"}, True),
    ({}, False),                                               # 16 colours
    ({"TERM": "xterm-256color"}, False),                        # 256: a ramp's steps run together
    ({"COLORTERM": "truecolor", "NO_COLOR": "1"}, False),       # grey, whatever the terminal
    ({"COLORTERM": "truecolor", "NO_COLOR": ""}, False),        # set, even if empty (no-color.org)
    ({"COLORTERM": "truecolor", "TERM": "dumb"}, False),
]


@pytest.mark.parametrize("env,expected", CASES, ids=[str(env) for env, _ in CASES])
def test_truecolour_is_what_textual_draws(monkeypatch, env, expected):
    for name in ("COLORTERM", "TERM", "NO_COLOR", "TEXTUAL_COLOR_SYSTEM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if "TEXTUAL_COLOR_SYSTEM" in env:  # read once, when textual.constants is imported
        monkeypatch.setattr("textual.constants.COLOR_SYSTEM", env["TEXTUAL_COLOR_SYSTEM"])
    assert truecolour(App()) is expected
