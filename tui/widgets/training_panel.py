"""Training progress: epoch and ETA, speed, loss, gradient norm, a perplexity sparkline."""

from __future__ import annotations

import math
import time

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive, var
from textual.timer import Timer
from textual.widgets import Sparkline, Static

from engine.events import RunState, Snapshot
from engine.runs import memorization
from engine.text import printable

from .. import format as fmt
from .dual_sparkline import TRAIN_STYLE, VAL_STYLE, DualSparkline
from ..bindings import hint

REDRAW_S = 0.2
SPARK_REDRAW_S = 1.0

# {id}: the key of that entry of tui.bindings' table, under the user's keymap.
HINTS = {
    RunState.PAUSED: "paused · {pause} resumes · {step} steps",
    RunState.FINISHED: "finished · {edit}: +epochs · {restart} restarts",
    RunState.DIVERGED: "diverged · lower the learning rate ({edit}), then {pause}",
    RunState.ERROR: "error · fix the settings, then {restart}",
    RunState.STOPPED: "stopped",
}


TRAIN, VAL = TRAIN_STYLE, VAL_STYLE  # the two curves' colours, in words too


def log_scale(ppl: float) -> float:
    return math.log(min(max(ppl, 1.0), 1e9)) if ppl == ppl else 0.0


def progress_bar(fraction: float, width: int) -> Content:
    """A bar like Textual's ProgressBar, drawn as text so that updating it costs no layout."""
    width = max(1, width)
    fraction = min(1.0, max(0.0, fraction))
    halves = round(fraction * width * 2)
    full, half = divmod(halves, 2)
    done = "━" * full + ("╸" if half else "")
    return Content.assemble((done, "$primary"), ("━" * (width - len(done)), "$primary 15%"))


class TrainingPanel(Vertical):
    """Reads one Snapshot at a time (set by the app ~10 times a second).

    Everything but the sparkline is one Static of fixed height, updated only when its text
    changes and without a layout pass: the app must stay cheap while training runs
    (bench/app_throughput.py)."""

    _ready = False  # set on mount: watchers run before the children exist

    snapshot: reactive[Snapshot | None] = var(None, always_update=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Training"
        self._history: tuple[float, ...] | None = None
        self._shown: dict[str, object] = {}
        self._drawn_key: tuple | None = None
        self._drawn_at = 0.0
        self._spark_at = 0.0
        self._redraw: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="stats", markup=False)
        yield Static(id="training-message", markup=False)
        yield Sparkline([], id="sparkline")
        # With a held-out part: training and validation on one scale, in place of the above.
        yield DualSparkline(id="val-sparkline")
        yield Static(id="memorization", markup=False)
        yield Static(id="sparkline-caption", markup=False)

    def on_mount(self) -> None:
        self._ready = True
        self._show(self.snapshot)

    def on_resize(self) -> None:
        if not self._ready:
            return
        self._shown.clear()
        self._drawn_key = None
        self._show(self.snapshot)

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        if self._ready:
            self._show(snapshot)

    def _update(self, selector: str, content, layout: bool = False) -> None:
        """Update a Static only when what it shows has changed."""
        if self._shown.get(selector) != content:
            self._shown[selector] = content
            self.query_one(selector, Static).update(content, layout=layout)

    def _display(self, selector: str, show: bool) -> None:
        key = selector + ":display"
        if self._shown.get(key) != show:
            self._shown[key] = show
            self.query_one(selector).display = show

    def _show(self, snap: Snapshot | None) -> None:
        if snap is None:
            snap = Snapshot()
        # The numbers and the sparkline redraw at most every REDRAW_S: each redraw costs the
        # UI thread a few milliseconds, and that time is partly the trainer's too (the GIL).
        # A new state (paused, finished...) redraws at once.
        now = time.monotonic()
        key = (snap.state, snap.epochs, snap.message)
        wait = self._drawn_at + REDRAW_S - now
        if key == self._drawn_key and wait > 0:
            if self._redraw is None:  # draw the latest numbers when the time comes
                self._redraw = self.set_timer(wait, lambda: self._show(self.snapshot))
            return
        if self._redraw is not None:
            self._redraw.stop()
            self._redraw = None
        new_state = key != self._drawn_key
        self._drawn_key, self._drawn_at = key, now
        self._update("#stats", self._stats(snap, self.content_size.width))
        self._display("#training-message", bool(snap.message))
        if snap.message:
            # An error message may quote a file name or a corpus: control characters shown.
            self._update("#training-message", printable(snap.message, multiline=True),
                         layout=True)
        subtitle = hint(self.app, HINTS.get(snap.state, ""))
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
        validating = bool(snap.val_history)
        self._display("#sparkline", bool(snap.history) and not validating)
        self._display("#val-sparkline", validating)
        memorizing = memorization(snap.history, snap.val_history, snap.history_stride)
        self._display("#memorization", bool(memorizing))
        if memorizing:  # one short line here; the notification and the tooltip say why
            self._update("#memorization", "memorizing: validation has turned up", layout=True)
            self.query_one("#memorization").tooltip = memorizing
        # The sparkline (a Rich renderable, the dearest part to draw) grows at most once a
        # second; the timer above brings the last epochs in.
        if snap.history != self._history and (new_state or now - self._spark_at >= SPARK_REDRAW_S):
            self._spark_at = now
            self._history = snap.history
            # A new list each time: Sparkline repaints on assignment only. Log scale, so that
            # the late gains (1.5 to 1.1) show as well as the early fall (28 to 10).
            if validating:
                spark = self.query_one(DualSparkline)
                spark.train, spark.val = snap.history, snap.val_history
            else:
                self.query_one("#sparkline", Sparkline).data = [log_scale(p) for p in snap.history]
        # The caption is cheap: it keeps up with the numbers above it.
        self._update("#sparkline-caption", self._caption(snap, self.content_size.width))

    @staticmethod
    def _stats(snap: Snapshot, width: int) -> Content:
        label, value = "$text-muted", "bold"
        done = snap.epoch + (snap.batch / snap.batches_per_epoch if snap.batches_per_epoch else 0)
        fraction = done / snap.epochs if snap.epochs else 0.0
        head = Content.assemble(("epoch ", label), (f"{snap.epoch}", value), (f"/{snap.epochs} ", ""))
        percent = f" {100 * fraction:3.0f}%"
        bar = progress_bar(fraction, width - head.cell_length - len(percent))
        parts: list = [head, bar, (percent, ""), "\n"]
        if snap.state is RunState.PAUSED and snap.batches_per_epoch:  # where n steps to
            parts.append((f"batch {snap.batch}/{snap.batches_per_epoch} of epoch {snap.epoch + 1}",
                          label))
        elif snap.val_history:
            best = min(snap.val_history)
            parts += [(f"{'validation':<11}", label),
                      (f"{fmt.number(snap.val_perplexity, 4):<8}", VAL),
                      (f"{'best':<10}", label), (fmt.number(best, 4), VAL)]
        parts.append("\n")
        rows = [
            (("perplexity", fmt.number(snap.perplexity, 4)), ("loss", fmt.number(snap.loss, 4))),
            (("tokens/s", fmt.rate(snap.tokens_per_sec, unit="")),
             ("grad norm", fmt.number(snap.grad_norm, 3))),
            (("elapsed", fmt.duration(snap.elapsed)), ("ETA", fmt.duration(snap.eta))),
        ]
        for i, ((l1, v1), (l2, v2)) in enumerate(rows):
            parts += [(f"{l1:<11}", label), (f"{v1:<8}", value), (f"{l2:<10}", label), (v2, value)]
            if i < len(rows) - 1:
                parts.append("\n")
        return Content.assemble(*parts)

    @staticmethod
    def _caption(snap: Snapshot, width: int) -> Content:
        h = snap.history
        if not h:
            return Content.styled("perplexity per epoch appears here", "$text-muted")
        per = "per epoch" if snap.history_stride == 1 else f"every {snap.history_stride} epochs"
        v = snap.val_history
        if v:  # the colours are the sparkline's
            return Content.assemble(("train ", TRAIN), (fmt.number(h[0], 3), ""),
                                    (" → ", "$text-muted"), (fmt.number(h[-1], 3), "bold"),
                                    (" · ", "$text-muted"), ("validation ", VAL),
                                    (fmt.number(v[0], 3), ""), (" → ", "$text-muted"),
                                    (fmt.number(v[-1], 3), "bold"))
        values = Content.assemble((fmt.number(h[0], 3), ""), (" → ", "$text-muted"),
                                  (fmt.number(h[-1], 3), "bold"),
                                  (f" · best {fmt.number(min(h), 3)}", "$text-muted"))
        label = Content.styled(f"perplexity {per}: ", "$text-muted")
        if label.cell_length + values.cell_length > width:
            label = Content.styled("perplexity ", "$text-muted")
        return label + values
