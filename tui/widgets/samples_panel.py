"""The book's samples: greedy continuations of its prefixes every N epochs, newest first."""

from __future__ import annotations

import time
from itertools import groupby

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import reactive, var
from textual.timer import Timer
from textual.widgets import Static

from engine.events import Sample
from engine.text import printable

MAX_ROUNDS_SHOWN = 20  # the trainer keeps 50 rounds; a screenful is plenty
MIN_REDRAW_S = 1.0     # with a tiny model samples can come many times a second; read them at 1 Hz


class SamplesPanel(VerticalScroll):
    _ready = False  # set on mount: watchers run before the children exist
    samples: reactive[tuple[Sample, ...]] = var(())
    every: reactive[int] = var(0)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Samples"
        self.can_focus = False
        self._drawn_at = -MIN_REDRAW_S
        self._redraw: Timer | None = None
        self._drawn_samples: tuple[Sample, ...] = ()
        self._height = -1

    def compose(self) -> ComposeResult:
        yield Static(id="samples-text", markup=False)

    def on_mount(self) -> None:
        self._ready = True
        self._show()

    def watch_samples(self) -> None:
        wait = self._drawn_at + MIN_REDRAW_S - time.monotonic()
        if wait <= 0 or not self.samples or not self._drawn_samples:
            self._show()
        elif self._redraw is None:
            self._redraw = self.set_timer(wait, self._show)

    @property
    def up_to_date(self) -> bool:
        """Whether the samples drawn are the latest (a redraw may wait for MIN_REDRAW_S)."""
        return self._drawn_samples == self.samples

    def watch_every(self, every: int) -> None:
        self.border_subtitle = f"every {every} epochs" if every else ""

    def _show(self) -> None:
        self._redraw = None
        if not self._ready:
            return
        self._drawn_at = time.monotonic()
        self._drawn_samples = self.samples
        text = self.query_one("#samples-text", Static)
        if not self.samples:
            every = f" every {self.every} epochs" if self.every else ""
            text.update(Content.styled(
                f"The model continues the book's prefixes{every}; its samples appear here, "
                "newest first.", "$text-muted"))
            self._height = -1
            return
        parts: list = []
        rounds = groupby(self.samples, key=lambda s: s.epoch)
        for i, (epoch, group) in enumerate(rounds):
            if i == MAX_ROUNDS_SHOWN:
                break
            if i:
                parts.append("\n")
            parts.append((f"epoch {epoch}\n", "bold $text-secondary" if i == 0 else "$text-muted"))
            for sample in group:
                latest = "$text-success on $success 12%" if i == 0 else "on $foreground 6%"
                # One row per sample, whatever the model wrote: control characters shown.
                parts += [(printable(sample.prefix), "$text-muted"),
                          (printable(sample.text), latest)]
                if sample.memorized is not None:  # how much of it was copied from training
                    parts.append((f" {sample.memorized:.0%} seen", "$text-muted"))
                parts.append("\n")
        content = Content.assemble(*parts).rstrip()
        # A layout pass costs more than the text: ask for one only when the height changes
        # (it stops changing once MAX_ROUNDS_SHOWN rounds are shown).
        height = content.get_height(text.styles, max(1, text.content_size.width))
        text.update(content, layout=height != self._height)
        self._height = height
        self.scroll_home(animate=False)
