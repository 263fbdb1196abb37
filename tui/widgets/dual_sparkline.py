"""Two perplexity curves (training and validation) in one small braille sparkline.

Textual's Sparkline draws one series scaled to its own range; training and validation must
share one scale, or the gap between them (the thing to see) disappears. Each cell is a
braille character, 2 points wide and 4 high; a cell that holds a validation point takes the
validation colour.
"""

from __future__ import annotations

import math
from typing import Sequence

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

# Braille dot bits by (column, row) within a cell, rows from the top.
DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
TRAIN_STYLE, VAL_STYLE = "ansi_cyan", "#ffaf00"  # the full plot's colours


def log_level(value: float) -> float:
    """Perplexity on a log axis; NaN and blown-up values pinned so the rest stays readable."""
    return math.log(min(max(value, 1.0), 1e9)) if value == value else 0.0


def resample(values: Sequence[float], points: int) -> list[float]:
    """`points` values spread over the series (stretched when it is shorter)."""
    n = len(values)
    return [values[min(n - 1, i * n // points)] for i in range(points)] if n else []


def braille_rows(series: Sequence[Sequence[float]], width: int, height: int
                 ) -> list[list[tuple[int, int]]]:
    """For each of `height` rows of `width` cells: (dot bits, index of the last series drawn
    in it, or -1). All series share one log scale."""
    points = 2 * width
    levels = 4 * height
    curves = [[log_level(v) for v in resample(s, points)] for s in series if s]
    values = [v for c in curves for v in c]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = hi - lo or 1.0
    cells = [[[0, -1] for _ in range(width)] for _ in range(height)]
    for k, curve in enumerate(curves):
        previous = None
        for x, v in enumerate(curve):
            level = round((v - lo) / span * (levels - 1))
            low, high = (level, level) if previous is None else sorted((previous, level))
            for lv in range(low, high + 1):  # joined to the point before: a line, not dust
                row, dot = divmod(levels - 1 - lv, 4)
                cell = cells[row][x // 2]
                cell[0] |= DOTS[x % 2][dot]
                cell[1] = k
            previous = level
    return [[(bits, k) for bits, k in row] for row in cells]


class DualSparkline(Widget):
    """Training (and validation, when there is one) perplexity per epoch, log scale."""

    DEFAULT_CSS = "DualSparkline { height: 3; }"

    train: reactive[tuple[float, ...]] = reactive(())
    val: reactive[tuple[float, ...]] = reactive(())

    def render(self) -> Content:
        width, height = self.content_size.width, self.content_size.height
        if width <= 0 or height <= 0 or not self.train:
            return Content("")
        series = [self.train] + ([self.val] if self.val else [])
        styles = (TRAIN_STYLE, VAL_STYLE)
        lines = []
        for row in braille_rows(series, width, height):
            lines.append(Content.assemble(*((chr(0x2800 + bits), styles[k] if k >= 0 else "")
                                            for bits, k in row)))
        return Content("\n").join(lines)
