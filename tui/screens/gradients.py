"""Gradients through time (t): for one batch, the norm of the loss's gradient with respect to
the hidden state at each time step, before and after clipping, on a log axis, and what each
step adds to each weight's gradient (d2l 8.7: vanishing and exploding gradients).

`c` compares with another run's checkpoint on the same batch (an LSTM against the book's RNN,
say): both models' curves on one plot, and how much each step back multiplies the last
step's gradient by, for each."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from engine.inspect import (GradientsComparison, GradientsThroughTime, GradientsView,
                            compare_gradients, gradients_view)

from ..widgets.gradient_plot import GradientPlot
from .comparing import ComparingScreen

ALONE_KEYS = "b next batch · space again · c compare · esc closes"
COMPARING_KEYS = "b next batch · space again · c other · x alone · esc closes"


def _decay(g: GradientsThroughTime) -> str:
    decay = g.decay_per_step()
    return "n/a" if decay is None else f"x{decay:.3g} a step back"


class GradientsScreen(ComparingScreen):
    BINDINGS = [Binding("b", "next_batch", "Next batch", id="gradients-next-batch")]

    def __init__(self) -> None:
        super().__init__()
        self.index = 0
        self.result: GradientsView | GradientsComparison | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="inspect-dialog") as dialog:
            dialog.border_title = "Gradients through time"
            dialog.border_subtitle = ALONE_KEYS
            yield Static("", classes="inspect-note", markup=False)
            yield Static("", id="gradients-summary", markup=False)
            with VerticalScroll(id="gradients-scroll"):
                yield GradientPlot(id="gradients-plot")
                yield Static("", id="gradients-table", markup=False)

    def on_mount(self) -> None:
        self.read()

    def read(self) -> None:
        index, other = self.index, self.other
        if other is None:
            def work(trainer) -> GradientsView:
                c = trainer.config
                return gradients_view(trainer.net, trainer.loader.corpus, c.batch_size,
                                      c.num_steps, trainer.snapshot().clip, index)
        else:
            def work(trainer) -> GradientsComparison:  # both models, on this thread
                c = trainer.config
                text = "".join(trainer.vocab.to_tokens(trainer.loader.corpus))
                return compare_gradients(trainer.net, trainer.vocab, other.net, other.vocab,
                                         text, c.batch_size, c.num_steps,
                                         trainer.snapshot().clip, index)

        self.ask(work, "unrolling one batch" if other is None else "unrolling one batch twice")

    def action_next_batch(self) -> None:
        shown = self.shown_view()
        self.index = (shown.index + 1) if shown else self.index + 1
        self.read()

    def shown_view(self) -> GradientsView | None:
        """The live model's view of the batch shown (A's when comparing)."""
        return self.result.a if isinstance(self.result, GradientsComparison) else self.result

    def show(self, result: GradientsView | GradientsComparison) -> None:
        self.result = result
        dialog = self.query_one(".inspect-dialog")
        if isinstance(result, GradientsComparison):
            dialog.border_subtitle = COMPARING_KEYS
            self.show_comparison(result)
        else:
            dialog.border_subtitle = ALONE_KEYS
            self.show_alone(result)

    def show_alone(self, result: GradientsView) -> None:
        g = result.gradients
        series = [(f"dL/d{name}", norms) for name, norms in g.state_norms.items()]
        if g.scale < 1:
            series += [(f"dL/d{name} clipped", g.clipped(name)) for name in g.state_norms]
        series.append(("dL_T/dH (last step's loss)", g.last_norms["H"]))
        self.query_one(GradientPlot).series = tuple(series)
        H = g.H
        ratio = H[0] / H[-1] if H[-1] > 0 else float("inf")
        last = g.last_norms["H"]
        carried = last[0] / last[-1] if last[-1] > 0 else 0.0
        clipped = (f"clipped to {g.clip:g}: scaled by {g.scale:.3g}" if g.scale < 1
                   else f"under the clip {g.clip:g}: not scaled")
        summary = (f"batch {result.index + 1} of {result.batches} ({result.batch_size} x "
                   f"{result.num_steps}), fresh state · loss {g.loss:.3f} · gradient norm "
                   f"{g.grad_norm:.4g}, {clipped} · |dL/dH_1| / |dL/dH_{result.num_steps}| = "
                   f"{ratio:.3g} · dL_T/dH {_decay(g)} (x{carried:.3g} over "
                   f"{result.num_steps - 1} steps)")
        if result.note:
            summary += f" · {result.note}"
        self.query_one("#gradients-summary", Static).update(summary)
        names = list(g.param_norms)
        table = Text()
        table.append("what each step adds to each weight's gradient (norms)\n", "bold")
        table.append("step " + "".join(f"{n:>10}" for n in names) + "\n", "dim")
        for t in range(result.num_steps):
            table.append(f"{t + 1:<4} " + "".join(f"{g.param_norms[n][t]:>10.2e}" for n in names)
                         + "\n")
        self.query_one("#gradients-table", Static).update(table)

    def show_comparison(self, result: GradientsComparison) -> None:
        a, b = result.a, result.b
        ga, gb = a.gradients, b.gradients
        self.query_one(GradientPlot).series = (
            ("A dL/dH", ga.H), ("A dL_T/dH (last step's loss)", ga.last_norms["H"]),
            ("B dL/dH", gb.H), ("B dL_T/dH (last step's loss)", gb.last_norms["H"]))
        about = f": {self.other.about}" if self.other is not None else ""
        summary = Text()
        summary.append(f"batch {a.index + 1} of {a.batches} ({a.batch_size} x {a.num_steps}), "
                       f"fresh state · A (this run): loss {ga.loss:.3f}, gradient norm "
                       f"{ga.grad_norm:.4g}, dL_T/dH {_decay(ga)} · B ({self.other_name()}"
                       f"{about}): loss {gb.loss:.3f}, gradient norm {gb.grad_norm:.4g}, "
                       f"dL_T/dH {_decay(gb)}")
        notes = [a.note] if a.note else []
        if result.missing_b:
            notes.append(f"B reads {len(result.missing_b)} character(s) it does not know as "
                         "<unk>")
        if notes:
            summary.append(" · " + "; ".join(notes), "italic")
        self.query_one("#gradients-summary", Static).update(summary)
        table = Text()
        table.append("|dL/dH_t| and the last step's |dL_T/dH_t|, A and B\n", "bold")
        table.append("step " + "".join(f"{n:>11}" for n in ("A dL/dH", "B dL/dH", "A dL_T/dH",
                                                             "B dL_T/dH")) + "\n", "dim")
        for t in range(a.num_steps):
            table.append(f"{t + 1:<4} " + "".join(f"{v:>11.2e}" for v in (
                ga.H[t], gb.H[t], ga.last_norms["H"][t], gb.last_norms["H"][t])) + "\n")
        self.query_one("#gradients-table", Static).update(table)
