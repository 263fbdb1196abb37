"""Hidden units over time: one row per unit, one column per character of the text.

Each cell is a block whose height gives the unit's activation (low: -1, full: +1) and whose
colour goes from blue (negative) through white to red (positive), so the map reads in a
terminal without colour too (the legend then speaks of heights alone). The rows are the units that follow the chosen class best; the
row above them marks the class. Wide texts scroll sideways.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive, var
from textual.widget import Widget

from engine.inspect import UnitsView

from ..figures import DIVERGING, ramp
from ..format import visible

BLOCKS = " ▁▂▃▄▅▆▇█"
LABEL = 14   # "unit 123 +0.91│"


def cell(value: float, scale: float = 1.0) -> tuple[str, Style]:
    x = max(-1.0, min(1.0, value / scale))
    r, g, b = ramp((x + 1) / 2, DIVERGING)
    return BLOCKS[round((x + 1) / 2 * (len(BLOCKS) - 1))], Style(color=f"rgb({r},{g},{b})",
                                                                  bgcolor="rgb(40,40,40)")


def scale_of(view: UnitsView) -> float:
    """The value a full block stands for: 1 for H (tanh), more where LSTM's C leaves [-1, 1]."""
    return max([1.0] + [abs(x) for row in view.rows for x in row])


def legend(scale: float = 1.0, colour: bool = True) -> Text:
    """What a cell means: its height (and, in colour, its hue) gives the unit's value."""
    text = Text(f"cell: value by height{' and colour' if colour else ''}, -{scale:.3g} ")
    if not colour:
        text.append("(empty) ")
    for level in range(1, len(BLOCKS)):
        glyph, style = cell((level / (len(BLOCKS) - 1) * 2 - 1) * scale, scale)
        text.append(glyph, style if colour else None)
    text.append(f" +{scale:.3g}")
    if colour:
        text.append(" (blue < 0 < red)")
    return text


def class_mark(value: float, char_class: str) -> str:
    if char_class == "line":
        return str(int(value) % 10)
    return "▲" if value else " "


class UnitHeatmap(Widget):
    view: reactive[UnitsView | None] = var(None)

    DEFAULT_CSS = "UnitHeatmap { height: auto; width: auto; }"

    def watch_view(self) -> None:
        self.refresh(layout=True)

    def get_content_width(self, container, viewport) -> int:
        return LABEL + (len(self.view.text) if self.view else 0)

    def get_content_height(self, container, viewport, width: int) -> int:
        return 2 + (len(self.view.rows) if self.view else 0)

    def render(self) -> Text:
        v = self.view
        if v is None:
            return Text("")
        out = Text(no_wrap=True, overflow="crop")
        out.append(f"{'text':>{LABEL - 1}}│", "dim")
        out.append("".join(visible(c) for c in v.text))
        out.append("\n")
        out.append(f"{v.char_class:>{LABEL - 1}}│", "dim")
        out.append("".join(class_mark(x, v.char_class) for x in v.values), "bold")
        scale = scale_of(v)
        for (unit, r), row in zip(v.ranked, v.rows):
            out.append("\n")
            out.append(f"{v.part} {unit:<5} {r:+.2f}"[:LABEL - 1].rjust(LABEL - 1) + "│", "dim")
            for x in row:
                glyph, style = cell(x, scale)
                out.append(glyph, style)
        return out
