"""Numbers as the panels show them: short, fixed width where it matters."""

from __future__ import annotations

import math


def duration(seconds: float | None) -> str:
    """0:42, 12:05, 1:02:03; an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def rate(tokens_per_sec: float, unit: str = " tok/s") -> str:
    """42.1k tok/s."""
    if tokens_per_sec <= 0:
        return "—"
    if tokens_per_sec >= 1e6:
        return f"{tokens_per_sec / 1e6:.2f}M{unit}"
    if tokens_per_sec >= 1e3:
        return f"{tokens_per_sec / 1e3:.1f}k{unit}"
    return f"{tokens_per_sec:.0f}{unit}"


def number(value: float | None, digits: int = 4) -> str:
    """A float in `digits` significant digits; an em dash when unknown."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def char(ch: str) -> str:
    """A character that can be seen: a space as ␣, a newline as ⏎."""
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(ch, ch)
