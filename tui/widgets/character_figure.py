"""The base of the widgets that draw a figure per character of a text (surprise, the
difference of two runs' surprise): a result to draw, a text fallback (`markers`) for terminals
without colour, and a height that follows the wrapped text."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.reactive import reactive, var
from textual.widget import Widget


class CharacterFigure(Widget):
    result: reactive[Any] = var(None)     # what render_text draws; None draws nothing
    markers: reactive[bool] = reactive(False)

    DEFAULT_CSS = "CharacterFigure { height: auto; }"

    def watch_result(self) -> None:
        self.refresh(layout=True)

    def watch_markers(self) -> None:
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.render_text(width).wrap(self.app.console, width)))

    def render(self) -> Text:
        return self.render_text(max(1, self.content_size.width))

    def render_text(self, width: int) -> Text:
        """The figure at `width` columns (markers: a row of marks under each line)."""
        raise NotImplementedError
