"""Two models' surprise on one text: each character coloured by B's loss minus A's.

In colour, the background is diverging: blue where B is less surprised than A, white where
they agree, red where B is more surprised; grey where one of the two vocabularies lacks the
character (not compared). Without colour (`markers`), a row of marks under each line gives
the difference's sign and size (tui.figures.difference_mark). The characters where the two
differ most are underlined in both. The text is shown literally: control characters are drawn
as visible symbols, nothing in it is read as markup.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive, var

from engine.inspect import SurpriseComparison

from ..figures import DIFFERENCE_MAX, difference_colour, difference_mark
from ..format import visible
from .character_figure import CharacterFigure

NOT_COMPARED = Style(bgcolor="rgb(110,110,110)", color="white", italic=True)
MOST = Style(underline=True, bold=True)


def difference_style(delta: float) -> Style:
    r, g, b = difference_colour(delta)
    return Style(bgcolor=f"rgb({r},{g},{b})",
                 color="white" if abs(delta) / DIFFERENCE_MAX > 0.6 else "black")


def difference_legend(markers: bool) -> Text:
    if markers:
        return Text("below each character, B - A: . under ½ nat · +/- up to 2 nats (B more/"
                    "less surprised) · ▲/▼ more · ? not compared · underlined: differ most")
    text = Text("B - A per character: ")
    steps = int(DIFFERENCE_MAX)
    for nats in range(-steps, steps + 1):
        text.append(f" {nats:+d} " if nats else " 0 ", difference_style(nats))
    text.append(" nats (blue: B less surprised, red: more); ")
    text.append(" ? ", NOT_COMPARED)
    text.append(" not compared; underlined: differ most")
    return text


class SurpriseDifference(CharacterFigure):
    result: reactive[SurpriseComparison | None] = var(None)

    def render_text(self, width: int) -> Text:
        c = self.result
        if c is None:
            return Text("")
        most = {m.position for m in c.most}
        # Per character of the text: (difference, compared); the first has none.
        cells = [(None, True), *zip(c.differences, c.known)]
        if not self.markers:
            out = Text(no_wrap=False)
            for i, ch in enumerate(c.text):
                delta, known = cells[i]
                style = Style() if delta is None else (
                    difference_style(delta) if known else NOT_COMPARED)
                if i in most:
                    style += MOST
                out.append(visible(ch), style)
            return out
        out = Text(no_wrap=True)
        width = max(1, width)
        for start in range(0, len(c.text), width):
            end = min(len(c.text), start + width)
            for i in range(start, end):
                out.append(visible(c.text[i]), MOST if i in most else Style())
            out.append("\n")
            out.append("".join(" " if cells[i][0] is None else difference_mark(*cells[i])
                               for i in range(start, end)), "dim")
            if end < len(c.text):
                out.append("\n")
        return out
