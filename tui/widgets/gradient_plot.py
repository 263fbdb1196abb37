"""Gradient norms through time on a log axis (plotext): vanishing gradients fall to the left.

Each curve has its colour; without truecolour (where colours may run together, or be grey)
each has its own marker too, which the legend shows beside its name.
"""

from __future__ import annotations

import math

from textual.reactive import reactive, var

from ..colour import truecolour
from .replotting_plot import ReplottingPlot

COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")  # LSTM clipped: 5 curves
MARKERS = ("o", "x", "+", "*", "#", "%")  # without truecolour: one per curve, in the legend too
ROWS_PER_CURVE = 3  # the plot grows by this for each curve past two


class GradientPlot(ReplottingPlot):
    # (name, norms at steps 1..n) per line
    series: reactive[tuple[tuple[str, tuple[float, ...]], ...]] = var(())
    markers: reactive[bool] = var(False)  # a marker per curve, for terminals without truecolour

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "|dL/dH_t| by time step"

    def on_mount(self) -> None:
        self.markers = not truecolour(self.app)
        super().on_mount()

    def watch_series(self) -> None:
        # The legend takes a row per curve out of the plot; past two curves (comparing two
        # runs, an LSTM's clipped gradients) the curves also need rows of their own: at the
        # stylesheet's height, B's dL/dH was drawn over A's, which did not show at all.
        base = self.styles.base.height
        if base is not None and base.is_cells:
            extra = ROWS_PER_CURVE * max(0, len(self.series) - 2)
            self.styles.height = int(base.value) + extra if extra else None
        self.replot()

    def watch_markers(self) -> None:
        self.replot()

    def replot(self) -> None:
        plt = self.fresh_figure("time step t")
        positive = [y for _, ys in self.series for y in ys if y > 0 and math.isfinite(y)]
        if not positive:
            plt.title("waiting for the trainer")
            self.refresh()
            return
        # Plotted as log10 on a linear axis and labelled in powers of ten (plotext's own log
        # axis mislabels), as the perplexity plot does.
        lo, hi = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
        hi = max(hi, lo + 1)
        for (name, ys), colour, marker in zip(self.series, COLOURS, MARKERS):
            pts = [(t + 1, math.log10(y)) for t, y in enumerate(ys) if y > 0 and math.isfinite(y)]
            plt.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, label=name,
                     marker=marker if self.markers else "hd")
        # Headroom above the curves for the legend, which plotext draws in the top left corner:
        # a row for each curve and one to spare, out of the plot's rows.
        rows = max(2, self.content_size.height - 4)
        share = min(0.6, (len(self.series) + 1) / rows)
        plt.ylim(lo, hi + max(1.0, share * (hi - lo) / (1 - share)))
        # At most one label every other row: plotext draws labels that share a row over each
        # other, and which one shows then changes from run to run.
        step = max(1, -(-(hi - lo) // max(1, min(5, rows // 2) - 1)))
        ticks = list(range(lo, hi + 1, step))
        plt.yticks(ticks, [f"1e{k}" for k in ticks])
        n = max(len(ys) for _, ys in self.series)
        plt.xlim(1, max(2, n))
        xt = sorted({round(1 + i * (n - 1) / 4) for i in range(5)})
        plt.xticks(xt, [str(x) for x in xt])
        self.refresh()
