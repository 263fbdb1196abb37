"""Gradients through time (t): for one batch, the norm of the loss's gradient with respect to
the hidden state at each time step, before and after clipping, on a log axis, and what each
step adds to each weight's gradient (d2l 8.7: vanishing and exploding gradients)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from engine.inspect import GradientsView, gradients_view

from ..widgets.gradient_plot import GradientPlot
from .inspect_view import InspectScreen


class GradientsScreen(InspectScreen):
    BINDINGS = [Binding("b", "next_batch", "Next batch", id="gradients-next-batch")]

    def __init__(self) -> None:
        super().__init__()
        self.index = 0
        self.result: GradientsView | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="inspect-dialog") as dialog:
            dialog.border_title = "Gradients through time"
            dialog.border_subtitle = "b next batch · space again · esc closes"
            yield Static("", classes="inspect-note", markup=False)
            yield Static("", id="gradients-summary", markup=False)
            with VerticalScroll(id="gradients-scroll"):
                yield GradientPlot(id="gradients-plot")
                yield Static("", id="gradients-table", markup=False)

    def on_mount(self) -> None:
        self.read()

    def read(self) -> None:
        index = self.index

        def work(trainer) -> GradientsView:
            c = trainer.config
            return gradients_view(trainer.net, trainer.loader.corpus, c.batch_size, c.num_steps,
                                  trainer.snapshot().clip, index)

        self.ask(work, "unrolling one batch")

    def action_next_batch(self) -> None:
        self.index = (self.result.index + 1) if self.result else self.index + 1
        self.read()

    def show(self, result: GradientsView) -> None:
        self.result = result
        g = result.gradients
        series = [(f"dL/d{name}", norms) for name, norms in g.state_norms.items()]
        if g.scale < 1:
            series += [(f"dL/d{name} clipped", g.clipped(name)) for name in g.state_norms]
        series.append(("dL_T/dH (last step's loss)", g.last_norms["H"]))
        self.query_one(GradientPlot).series = tuple(series)
        H = g.H
        ratio = H[0] / H[-1] if H[-1] > 0 else float("inf")
        last = g.last_norms["H"]
        decay = last[0] / last[-1] if last[-1] > 0 else 0.0
        clipped = (f"clipped to {g.clip:g}: scaled by {g.scale:.3g}" if g.scale < 1
                   else f"under the clip {g.clip:g}: not scaled")
        summary = (f"batch {result.index + 1} of {result.batches} ({result.batch_size} x "
                   f"{result.num_steps}) · loss {g.loss:.3f} · gradient norm {g.grad_norm:.4g}, "
                   f"{clipped} · |dL/dH_1| / |dL/dH_{result.num_steps}| = {ratio:.3g}; for the "
                   f"last step's loss alone {decay:.3g}")
        if result.note:
            summary += f" · {result.note}"
        self.query_one("#gradients-summary", Static).update(summary)
        names = list(g.param_norms)
        table = Text()
        table.append("what each step adds to each weight's gradient (norms)\n", "bold")
        table.append("step " + "".join(f"{n:>10}" for n in names) + "\n", "dim")
        for t in range(result.num_steps):
            table.append(f"{t + 1:>4} " + "".join(f"{g.param_norms[n][t]:>10.2e}" for n in names)
                         + "\n")
        self.query_one("#gradients-table", Static).update(table)
