"""Two models' surprise on one text, side by side: the same lines, A's colours on the left,
B's on the right, so that a line on one side is the same characters as on the other.

Both sides use SurpriseText's colours (loss_style) and, without colour (`markers`), its row
of whole nats under each line. The text is cut into lines of a fixed width (not at words):
the two sides then always hold the same characters line by line. A character a side's
vocabulary lacks is grey on that side (that model was asked for <unk>); each side's hardest
characters (among those both can read) are underlined. Shown literally, never as markup.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive, var
from textual.widget import Widget

from engine.inspect import SurpriseComparison

from ..format import visible
from .surprise_difference import NOT_COMPARED
from .surprise_text import loss_level, loss_style

GAP = 3                     # columns between the two sides
HARD = Style(underline=True, bold=True)
GAP_STYLE = Style(dim=True)  # its own segment: an unstyled first character is not merged into it


class SurpriseSides(Widget):
    result: reactive[SurpriseComparison | None] = var(None)
    markers: reactive[bool] = reactive(False)
    labels: reactive[tuple[str, str]] = var(("A", "B"))

    DEFAULT_CSS = "SurpriseSides { height: auto; }"

    def watch_result(self) -> None:
        self.refresh(layout=True)

    def watch_markers(self) -> None:
        self.refresh(layout=True)

    def watch_labels(self) -> None:
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.render_text(width).split()))

    def render(self) -> Text:
        return self.render_text(max(1, self.content_size.width))

    def column(self, width: int) -> int:
        return max(1, (width - GAP) // 2)

    def render_text(self, width: int) -> Text:
        c = self.result
        if c is None:
            return Text("")
        col = self.column(width)
        text = c.text
        sides = []
        for losses, missing, alone in ((c.losses_a, c.missing_a, c.surprise_a()),
                                       (c.losses_b, c.missing_b, c.surprise_b())):
            sides.append(([None, *losses], set(missing), {h.position for h in alone.hardest}))
        out = Text(no_wrap=True, overflow="crop")
        for i, label in enumerate(self.labels):
            shown = label if len(label) <= col else label[:col - 1] + "…"
            out.append(shown, "bold")
            out.append(" " * (col - len(shown) + GAP) if i == 0 else "\n")
        for start in range(0, len(text), col):
            end = min(len(text), start + col)
            for s, (losses, missing, hard) in enumerate(sides):
                for i in range(start, end):
                    if self.markers:
                        style = Style()
                    elif text[i] in missing:
                        style = NOT_COMPARED
                    else:
                        style = Style() if losses[i] is None else loss_style(losses[i])
                    out.append(visible(text[i]), style + HARD if i in hard else style)
                out.append(" " * (col - (end - start) + GAP) if s == 0 else "\n", GAP_STYLE)
            if self.markers:
                for s, (losses, missing, _) in enumerate(sides):
                    out.append("".join(" " if losses[i] is None else "?" if text[i] in missing
                                       else loss_level(losses[i]) for i in range(start, end)),
                               "dim")
                    out.append(" " * (col - (end - start) + GAP) if s == 0 else "\n")
        out.rstrip()
        return out
