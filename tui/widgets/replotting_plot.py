"""The base of the app's plotext plots: drawn afresh from their reactive data, on mount and
on every resize (plotext lays its axis labels out for the size it is given)."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class ReplottingPlot(PlotextPlot):
    def on_mount(self) -> None:
        super().on_mount()
        self.replot()

    def on_resize(self) -> None:
        self.replot()  # the y labels depend on the height

    def fresh_figure(self, xlabel: str):
        """plotext's figure, emptied, with its x axis named; returns it to draw on."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel(xlabel)
        return plt

    def replot(self) -> None:
        """Draw the data (each plot), then refresh."""
