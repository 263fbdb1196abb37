"""A small bar chart of the most likely next characters after the prompt."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from .. import format as fmt

EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int) -> str:
    """A horizontal bar `fraction` of `width` cells long, to an eighth of a cell."""
    eighths = max(0, min(width * 8, round(fraction * width * 8)))
    full, rest = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[rest] if rest else "")


class TopChars(Widget):
    """One row per candidate: the character, a bar as long as its probability, the percent."""

    top: reactive[tuple[tuple[str, float], ...]] = reactive(())

    def render(self) -> Content:
        if not self.top:
            return Content.styled("next-character odds appear here", "$text-muted")
        width = max(4, self.size.width - 14)
        parts: list = []
        for i, (ch, p) in enumerate(self.top):
            parts += [(f" {fmt.char(ch):<5}", "bold"),
                      (f"{bar(p, width):<{width}}", "$text-accent" if i == 0 else "$text-primary"),
                      (f" {100 * p:5.1f}%", "$text-muted")]
            if i < len(self.top) - 1:
                parts.append("\n")
        return Content.assemble(*parts)
