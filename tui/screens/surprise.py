"""Surprise (i): a text coloured by the model's loss on each character, its perplexity, and
the characters that surprised the model most.

`c` compares the model with another run's checkpoint on the same text: the difference (B's
loss minus the live model's, diverging colours) or, with `d`, the two side by side. The other
checkpoint is read off the UI thread; its forward pass, like the live model's, runs on the
trainer's thread."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

from engine.inspect import Surprise, SurpriseComparison, compare_surprise, surprise

from .. import format as fmt
from ..colour import truecolour
from ..format import visible_text
from ..widgets.surprise_difference import SurpriseDifference, difference_legend
from ..widgets.surprise_sides import SurpriseSides
from ..widgets.surprise_text import SurpriseText, legend
from .comparing import ComparingScreen

PASSAGE_CHARS = 2_000   # an empty field reads this much of the training text


def training_passage(trainer, chars: int = PASSAGE_CHARS) -> str:
    """The start of the text the model trains on, as it reads it (on the trainer's thread)."""
    return "".join(trainer.vocab.to_tokens(trainer.loader.corpus[:chars]))


class SurpriseScreen(ComparingScreen):
    BINDINGS = [
        Binding("m", "toggle_markers", "Markers", id="surprise-markers"),
        Binding("d", "toggle_sides", "Difference/sides", id="surprise-toggle-sides"),
    ]

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text
        self.result: Surprise | SurpriseComparison | None = None
        self.sides = False       # comparing: the two side by side, not their difference
        self.markers = False     # a text fallback for terminals without truecolour

    def compose(self) -> ComposeResult:
        with Vertical(classes="inspect-dialog") as dialog:
            dialog.border_title = "Surprise"
            dialog.border_subtitle = ("/ text · enter reads · space again · c compare · "
                                      "m markers · esc closes")
            yield Input(self.text, placeholder="a text to read (empty: the training text's start)",
                        id="surprise-input", select_on_focus=False)
            yield Static("", classes="inspect-note", markup=False)
            yield Static("", id="surprise-summary", markup=False)
            yield Static("", id="surprise-legend", markup=False)
            with VerticalScroll(id="surprise-scroll"):
                yield SurpriseText(id="surprise-text")
                yield SurpriseDifference(id="surprise-difference")
                yield SurpriseSides(id="surprise-sides")
                yield Static("", id="surprise-hardest", markup=False)

    def on_mount(self) -> None:
        self.markers = not truecolour(self.app)
        self.show_views()
        self.set_focus(None)
        self.read()

    # ---- asking ------------------------------------------------------------------------------

    def read(self) -> None:
        text, other = self.text, self.other
        if other is None:
            def work(trainer) -> Surprise:
                return surprise(trainer.net, trainer.vocab, text or training_passage(trainer),
                                trainer.config.preprocess, top=10)
        else:
            def work(trainer) -> SurpriseComparison:  # both forward passes, on this thread
                return compare_surprise(trainer.net, trainer.vocab, other.net, other.vocab,
                                        text or training_passage(trainer),
                                        trainer.config.preprocess, top=10)

        self.ask(work, "reading the text" if other is None else "reading the text twice")

    def action_toggle_sides(self) -> None:
        self.sides = not self.sides
        self.show_views()

    def action_toggle_markers(self) -> None:
        self.markers = not self.markers
        self.show_views()

    # ---- showing -----------------------------------------------------------------------------

    def show_views(self) -> None:
        """Which views show, with which legend, in colour or with markers."""
        comparing = isinstance(self.result, SurpriseComparison)
        for view in (self.query_one(SurpriseText), self.query_one(SurpriseDifference),
                     self.query_one(SurpriseSides)):
            view.markers = self.markers
        self.query_one("#surprise-text").display = not comparing
        self.query_one("#surprise-difference").display = comparing and not self.sides
        self.query_one("#surprise-sides").display = comparing and self.sides
        if comparing and not self.sides:
            shown = difference_legend(self.markers)
        else:
            shown = legend(self.markers)
            if comparing:
                shown.append(" · A left, B right; grey: not in its vocabulary")
        self.query_one("#surprise-legend", Static).update(shown)
        dialog = self.query_one(".inspect-dialog")
        dialog.border_subtitle = (
            "c other · d " + ("difference" if self.sides else "side by side") + " · x alone · "
            "m markers · esc closes" if comparing else
            "/ text · enter reads · space again · c compare · m markers · esc closes")

    def show(self, result: Surprise | SurpriseComparison) -> None:
        self.result = result
        if isinstance(result, SurpriseComparison):
            self.show_comparison(result)
        else:
            self.show_alone(result)
        self.show_views()

    def _source(self) -> str:
        return "the training text's start" if not self.text else "your text"

    def show_alone(self, result: Surprise) -> None:
        self.query_one("#surprise-text", SurpriseText).result = result
        notes = []
        if result.truncated:
            notes.append(f"the first {len(result.text):,} characters")
        if result.unknown:
            notes.append(f"{result.unknown:,} unknown, read as <unk>")
        summary = (f"perplexity {result.perplexity:.3f} on {len(result.losses):,} characters of "
                   f"{self._source()} (mean loss {result.mean_loss:.3f} nats)")
        if notes:
            summary += " · " + ", ".join(notes)
        self.query_one("#surprise-summary", Static).update(summary)
        hardest = Text()
        hardest.append("hardest characters\n", "bold")
        for i, h in enumerate(result.hardest, 1):
            hardest.append(f"{i:>3}. {h.loss:5.2f} nats  …{visible_text(h.before)}")
            hardest.append(visible_text(h.char), "bold underline")
            hardest.append(f"  (at {h.position})\n")
        self.query_one("#surprise-hardest", Static).update(hardest)

    def show_comparison(self, result: SurpriseComparison) -> None:
        other = self.other
        name = self.other_name()
        about = other.about if other is not None else ""
        self.query_one(SurpriseDifference).result = result
        sides = self.query_one(SurpriseSides)
        sides.result = result
        sides.labels = (f"A: this run · perplexity {result.perplexity_a:.3f}",
                        f"B: {name} · perplexity {result.perplexity_b:.3f}")
        summary = Text()
        summary.append(f"perplexity A {result.perplexity_a:.3f} (this run) · B "
                       f"{result.perplexity_b:.3f} ({name}: {about}) · B - A "
                       f"{fmt.signed(result.mean_difference)} nats per character, on "
                       f"{result.compared:,} characters of {self._source()}")
        notes = []
        if result.truncated:
            notes.append(f"the first {len(result.text):,} characters")
        for side, missing in (("A", result.missing_a), ("B", result.missing_b)):
            if missing:
                notes.append(f"{side} lacks {visible_text(missing)!r}: grey, not compared")
        if other is not None and self.app_preprocess() not in (None, other.preprocess):
            notes.append(f"read as this run reads ({self.app_preprocess()!r}), not as B did "
                         f"({other.preprocess!r})")
        if notes:
            summary.append(" · " + "; ".join(notes), "italic")
        self.query_one("#surprise-summary", Static).update(summary)
        most = Text()
        most.append("where they differ most (B - A, and each one's loss, in nats)\n", "bold")
        for i, m in enumerate(result.most, 1):
            most.append(f"{i:>3}. {m.delta:+5.2f}  A {m.loss_a:4.2f} B {m.loss_b:4.2f}  "
                        f"…{visible_text(m.before)}")
            most.append(fmt.char(m.char), "bold underline")
            most.append(f"  (at {m.position})\n")
        self.query_one("#surprise-hardest", Static).update(most)

    def app_preprocess(self) -> str | None:
        trainer = self.app.trainer
        return trainer.config.preprocess if trainer is not None else None
