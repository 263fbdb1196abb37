"""Overlay: the perplexity curves of several runs in one plot, with a legend.

Training curves are drawn as lines, validation curves as dots, one colour per run; without
truecolour (where colours run together, or are grey) each run's curves are drawn with its
number (training) and its letter (validation) instead. Run names never reach plotext (which
draws with terminal codes): the legend below the plot names them, as untrusted text, in
their curves' colours and with their marks.
"""

from __future__ import annotations

import math
from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Static

from engine.runs import RunSummary
from engine.text import printable

from ..colour import truecolour
from ..plot_file import series
from ..widgets.replotting_plot import ReplottingPlot
from ..widgets.perplexity_plot import log_ticks

# One colour per run, as RGB, so that the plot and the legend show the very same one (plotext's
# named colours go through the terminal's palette, the legend's through Rich's). Okabe and
# Ito's palette, which colour-blind eyes tell apart, then two more.
PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178),
           (213, 94, 0), (204, 121, 167), (153, 153, 153), (255, 255, 255), (0, 210, 210))
COLOURS = tuple((rgb, "rgb({},{},{})".format(*rgb)) for rgb in PALETTE)  # (plotext, rich)


def marks(i: int) -> tuple[str, str]:
    """Run i's markers without truecolour: its number for training, its letter for validation."""
    return str(i + 1)[-1], "abcdefghijklmnopqrstuvwxyz"[i % 26]


class OverlayPlot(ReplottingPlot):
    log: reactive[bool] = reactive(True)
    x: reactive[str] = reactive("epochs")
    markers: reactive[bool] = reactive(False)  # marks(i) instead of lines and dots

    def __init__(self, runs: Sequence[RunSummary], markers: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs = list(runs)
        self.set_reactive(OverlayPlot.markers, markers)

    def watch_markers(self) -> None:
        self.replot()

    def watch_log(self) -> None:
        self.replot()

    def watch_x(self) -> None:
        self.replot()

    def replot(self) -> None:
        plt = self.fresh_figure("epoch" if self.x == "epochs" else "training seconds")
        plt.ylabel("perplexity" + (" (log)" if self.log else ""))
        top = 1.1
        for i, run in enumerate(self.runs):
            colour = COLOURS[i % len(COLOURS)][0]
            for label, points in series(run, self.x):
                xs = [a for a, _ in points]
                ys = [b for _, b in points]
                top = max(top, max(ys))
                if self.log:
                    ys = [math.log10(max(y, 1.0)) for y in ys]
                # No plotext legend: it covers the first epochs; the one below names them.
                train_mark, val_mark = marks(i) if self.markers else ("hd", "dot")
                plt.plot(xs, ys, color=colour, marker=train_mark if label == "train" else val_mark)
        if self.log:
            plt.ylim(0, math.log10(top) * 1.05)
            ticks = log_ticks(top, rows=max(2, self.content_size.height - 4))
            plt.yticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])
        self.refresh()


class OverlayScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="overlay-close"),
        Binding("l", "toggle_log", "Log/linear", id="overlay-log"),
        Binding("x", "toggle_x", "Epochs/seconds", id="overlay-x"),
    ]

    def __init__(self, runs: Sequence[RunSummary]) -> None:
        super().__init__()
        self.runs = list(runs)

    def compose(self) -> ComposeResult:
        with Vertical(id="overlay-dialog") as dialog:
            dialog.border_title = f"{len(self.runs)} run(s)"
            dialog.border_subtitle = "l log/linear · x epochs/seconds · escape closes"
            yield OverlayPlot(self.runs, markers=not truecolour(self.app), id="overlay-plot")
            yield Static(self.legend(), id="overlay-legend")

    def legend(self) -> Text:
        """One line a run: its number and colour as in the plot, its name, its last numbers."""
        text = Text()
        markers = not truecolour(self.app)
        for i, run in enumerate(self.runs):
            colour = COLOURS[i % len(COLOURS)][1]
            train_mark, val_mark = (f"{c * 2}" for c in marks(i)) if markers else ("━━", "··")
            if text:
                text.append("\n")
            text.append(f"{i + 1} {train_mark} ", style=f"bold {colour}")
            text.append(printable(run.name), style=colour)
            val = f" · val {run.last_val:.3g} {val_mark}" if run.last_val is not None else ""
            last = f"{run.last_train:.3g}" if run.last_train is not None else "-"
            text.append(f"  train {last}{val}", style="dim")
        return text

    def action_toggle_log(self) -> None:
        plot = self.query_one(OverlayPlot)
        plot.log = not plot.log

    def action_toggle_x(self) -> None:
        plot = self.query_one(OverlayPlot)
        plot.x = "seconds" if plot.x == "epochs" else "epochs"
