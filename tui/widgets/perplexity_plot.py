"""The full perplexity curve, with axes (plotext), shown on demand (p)."""

from __future__ import annotations

from textual.reactive import reactive, var
from textual_plotext import PlotextPlot

# Plotting costs more than the panels; beyond this many points, plot every k-th one.
MAX_POINTS = 1000


class PerplexityPlot(PlotextPlot):
    history: reactive[tuple[float, ...]] = var(())
    stride: reactive[int] = var(1)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Perplexity"

    def on_mount(self) -> None:
        super().on_mount()
        self._replot()

    def watch_history(self) -> None:
        self._replot()

    def _replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel("epoch")
        plt.ylabel("perplexity")
        h = self.history
        if not h:
            plt.title("waiting for the first epoch")
            self.refresh()
            return
        step = max(1, -(-len(h) // MAX_POINTS))
        ys = list(h[::step])
        xs = [1 + i * step * self.stride for i in range(len(ys))]
        if xs[-1] != 1 + (len(h) - 1) * self.stride:
            xs.append(1 + (len(h) - 1) * self.stride)
            ys.append(h[-1])
        # Half blocks, not braille: braille glyphs are drawn too wide by many fonts.
        plt.plot(xs, ys, marker="hd", color="cyan")
        top = max(ys)
        plt.ylim(1, max(top * 1.05, 1.1))  # perplexity is 1 at best
        last = max(2, xs[-1])
        plt.xlim(1, last)
        ticks = sorted({round(1 + i * (last - 1) / 4) for i in range(5)})  # whole epochs
        plt.xticks(ticks, [str(t) for t in ticks])
        self.refresh()
