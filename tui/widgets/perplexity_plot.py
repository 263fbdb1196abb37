"""The full perplexity curve, with axes (plotext), shown on demand (p)."""

from __future__ import annotations

import math

from textual.content import Content
from textual.reactive import reactive, var

from .replotting_plot import ReplottingPlot

# Plotting costs more than the panels; beyond this many points, plot every k-th one.
MAX_POINTS = 1000


def floor2(x: float) -> float:
    """x rounded down to two significant digits: 1.26 -> 1.2, 37 -> 37, 0.0123 -> 0.012."""
    e = math.floor(math.log10(x)) - 1
    return float(f"{math.floor(x / 10.0 ** e + 1e-9) * 10.0 ** e:.3g}")


def log_ticks(top: float, rows: int = 40, most: int = 5, bottom: float = 1.0) -> list[float]:
    """Round perplexities from `bottom` to about `top`, evenly spread on a log axis `rows`
    high. The axis starts at `bottom` (the curve's lowest value, rounded down), so the late
    gains (1.5 to 1.1) fill the plot instead of its bottom rows.

    At most one label every other row: plotext draws labels that share a row over each other,
    and which one shows then changes from run to run (it goes through a set of strings)."""
    bottom = floor2(bottom)
    lo = math.log10(bottom)
    nice = [m * 10.0 ** e for e in range(-3, 16) for m in (1, 1.5, 2, 3, 5)]
    fit = [bottom] + [t for t in nice if bottom < t <= top * 1.05] + [float(f"{top:.2g}")]
    targets = [lo + (math.log10(top) - lo) * i / (most - 1) for i in range(most)]
    ticks = sorted({min(fit, key=lambda t: abs(math.log10(t) - x)) for x in targets})
    span = (math.log10(top * 1.05) - lo) or 1.0
    kept: list[tuple[int, float]] = []  # (row, tick), from the bottom up
    for t in ticks:
        row = round((math.log10(t) - lo) / span * (rows - 1))
        if kept and row - kept[-1][0] < 2:  # too close to the label below
            if t != ticks[-1] or len(kept) == 1:
                continue  # dropped (the bottom one always stays)
            kept.pop()  # the top label replaces the one below it
        kept.append((row, t))
    return [t for _, t in kept]


def thin(h, stride: int) -> tuple[list[int], list[float]]:
    """(epochs, values) of a history with one point every `stride` epochs, at most about
    MAX_POINTS of them, the last always kept."""
    step = max(1, -(-len(h) // MAX_POINTS))
    ys = list(h[::step])
    xs = [1 + i * step * stride for i in range(len(ys))]
    if xs[-1] != 1 + (len(h) - 1) * stride:
        xs.append(1 + (len(h) - 1) * stride)
        ys.append(h[-1])
    return xs, ys


# The curves' colours as plotext draws them ("cyan", "orange"), for the legend and the sparkline.
TRAIN_COLOUR, VAL_COLOUR = "ansi_cyan", "#ffaf00"
LEGEND = Content.assemble(("━ train", TRAIN_COLOUR), "  ", ("·· validation", VAL_COLOUR))


class PerplexityPlot(ReplottingPlot):
    history: reactive[tuple[float, ...]] = var(())
    val_history: reactive[tuple[float, ...]] = var(())  # validation, when a part is held out
    stride: reactive[int] = var(1)
    y_ticks: tuple[float, ...] = ()  # the perplexities labelled on the y axis, bottom up

    ALLOW_MAXIMIZE = True  # p gives it the whole screen

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Perplexity (log scale)"

    def watch_history(self) -> None:
        self.replot()

    def watch_val_history(self) -> None:
        self.replot()

    def replot(self) -> None:
        # the y axis is named in the title: plotext puts both on one line
        plt = self.fresh_figure("epoch")
        h = self.history
        if not h:
            plt.title("waiting for the first epoch")
            self.refresh()
            return
        xs, ys = thin(h, self.stride)
        v = self.val_history
        vxs, vys = thin(v, self.stride) if v else ([], [])
        # Log scale, as the sparkline: the late gains (1.5 to 1.1) show as well as the early
        # fall (28 to 10), and a blown-up epoch (1e12) does not flatten the rest. Plotted as
        # log10 on a linear axis, labelled in perplexity (plotext's own log axis mislabels).
        # The y range is the data's: from the lowest perplexity (rounded down) to the highest.
        bottom = floor2(max(min(ys + vys), 1.0))
        top = max(max(ys + vys), bottom * 1.1)
        if v:  # first, so that training's curve is drawn whole over it
            plt.plot(vxs, [math.log10(max(y, 1.0)) for y in vys], marker="dot", color="orange")
        plt.plot(xs, [math.log10(max(y, 1.0)) for y in ys], marker="hd", color="cyan")
        # The legend in the frame: plotext's own is drawn over the curve's first epochs.
        legend = LEGEND if v else ""
        if self.border_subtitle != legend:
            self.border_subtitle = legend
        lo = math.log10(bottom)
        plt.ylim(lo, lo + (math.log10(top) - lo) * 1.05)
        # The rows of the plotting area: the widget less its frame and x-axis lines.
        ticks = log_ticks(top, rows=max(2, self.content_size.height - 4), bottom=bottom)
        plt.yticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])
        self.y_ticks = tuple(ticks)
        last = max(2, xs[-1])
        plt.xlim(1, last)
        ticks = sorted({round(1 + i * (last - 1) / 4) for i in range(5)})  # whole epochs
        plt.xticks(ticks, [str(t) for t in ticks])
        self.refresh()
