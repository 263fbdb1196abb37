"""Whether this terminal shows truecolour: the one test every colour-coded view asks.

The views that carry a number in a colour (surprise, confidence, hidden units, gradients)
show it in text instead (digits, glyphs, markers) where the answer is no. The answer is
Textual's own: its console picks the colour system from TEXTUAL_COLOR_SYSTEM, COLORTERM and
TERM (through Rich's detection) and downgrades every 24-bit colour to 256 or 16 colours to
match, where a ramp's steps run together; with NO_COLOR set it draws everything in grey.
"""

from __future__ import annotations

from textual.app import App


def truecolour(app: App) -> bool:
    """True where `app` draws 24-bit colour: COLORTERM=truecolor (or 24bit), or
    TEXTUAL_COLOR_SYSTEM=truecolor, and no NO_COLOR."""
    return not app.no_color and app.console.color_system == "truecolor"
