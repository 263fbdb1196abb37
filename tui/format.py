"""Numbers as the panels show them: short, fixed width where it matters."""

from __future__ import annotations

import math
import os
import unicodedata

from rich.cells import cell_len

from engine.text import printable


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


def signed(value: float, digits: int = 3) -> str:
    """+0.719, -1.250; a difference that rounds to nothing is +0.000, never -0.000."""
    return f"{round(value, digits) + 0.0:+.{digits}f}"


def char(ch: str) -> str:
    """A character that can be seen, in one cell: a space as ␣, the rest as visible()."""
    return "␣" if ch == " " else visible(ch)


def visible(ch: str) -> str:
    """A character in one cell that a terminal shows as itself and never obeys: a newline as
    ⏎, a tab as ⇥, other control characters as their control picture (␛ for escape), and
    other invisible or format characters (bidi overrides, zero-width marks) as �."""
    if ch == "\n":
        return "⏎"
    if ch == "\t":
        return "⇥"
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "␡"
    if not ch.isprintable() or unicodedata.category(ch) in ("Cf", "Zl", "Zp"):
        return "�"
    return ch


def visible_text(text: str) -> str:
    """A whole text with every character made visible as visible() does (spaces stay spaces)."""
    return "".join(visible(ch) for ch in text)
def home(path) -> str:
    """A path with the home directory as ~: shorter, so it fits a line."""
    text = str(path)
    user = os.path.expanduser("~")
    if user not in ("", "/", "~") and (text == user or text.startswith(user + os.sep)):
        return "~" + text[len(user):]
    return text


def confidence_digit(prob: float) -> str:
    """A probability as one digit, its tenths: 0 (under 10%) to 9 (90% or more); the text
    fallback of the confidence shading, in the prompt and in `rnn-tui generate --confidence`."""
    return str(min(9, max(0, int(prob * 10))))


def confidence_cell(ch: str, prob: float) -> tuple[str, str]:
    """A generated character as shown (printable: a control character as its symbol or
    escape, which may take several cells; a wide one takes two) and, under it, its digit
    padded to the same width, so that the digits stay under their characters."""
    shown = printable(ch)
    return shown, confidence_digit(prob).ljust(cell_len(shown))
