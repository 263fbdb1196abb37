"""A text coloured character by character by the model's loss on it, with a text fallback.

In colour, each character's background goes from dark (expected) to bright (surprising).
Without colour (`markers`), a row of digits under each line gives the loss in whole nats, and
the hardest characters are underlined in both. The text is shown literally: control
characters are drawn as visible symbols, nothing in it is read as markup.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive, var

from engine.inspect import Surprise

from ..figures import SURPRISE_MAX, ramp
from ..format import visible
from .character_figure import CharacterFigure


def loss_style(loss: float) -> Style:
    r, g, b = ramp(loss / SURPRISE_MAX)
    dark = loss / SURPRISE_MAX < 0.45
    return Style(bgcolor=f"rgb({r},{g},{b})", color="white" if dark else "black")


def loss_level(loss: float) -> str:
    """One character for a loss: '.' below 1 nat, else the whole nats (9 for 9 or more)."""
    return "." if loss < 1 else str(min(9, int(loss)))


def legend(markers: bool) -> Text:
    if markers:
        return Text("under each character: its loss in whole nats (. below 1); "
                    "underlined: the hardest")
    text = Text("loss per character: ")
    for nats in range(int(SURPRISE_MAX) + 1):
        text.append(f" {nats}{'+' if nats == SURPRISE_MAX else ''} ", loss_style(nats))
    text.append(" nats; underlined: the hardest")
    return text


class SurpriseText(CharacterFigure):
    result: reactive[Surprise | None] = var(None)

    def render_text(self, width: int) -> Text:
        s = self.result
        if s is None:
            return Text("")
        hard = {h.position for h in s.hardest}
        losses = [None, *s.losses]
        if not self.markers:
            out = Text(no_wrap=False)
            for i, ch in enumerate(s.text):
                style = Style() if losses[i] is None else loss_style(losses[i])
                if i in hard:
                    style += Style(underline=True, bold=True)
                out.append(visible(ch), style)
            return out
        out = Text(no_wrap=True)
        for start in range(0, len(s.text), max(1, width)):
            end = min(len(s.text), start + max(1, width))
            for i in range(start, end):
                out.append(visible(s.text[i]), Style(underline=True, bold=True) if i in hard
                           else Style())
            out.append("\n")
            out.append("".join(" " if losses[i] is None else loss_level(losses[i])
                               for i in range(start, end)), "dim")
            if end < len(s.text):
                out.append("\n")
        return out
