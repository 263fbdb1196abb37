"""Surprise (i): a text coloured by the model's loss on each character, its perplexity, and
the characters that surprised the model most."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

from engine.inspect import Surprise, surprise

from ..colour import truecolour
from ..format import visible_text
from ..widgets.surprise_text import SurpriseText, legend
from .inspect_view import InspectScreen

PASSAGE_CHARS = 2_000   # an empty field reads this much of the training text


def training_passage(trainer, chars: int = PASSAGE_CHARS) -> str:
    """The start of the text the model trains on, as it reads it (on the trainer's thread)."""
    return "".join(trainer.vocab.to_tokens(list(trainer.loader.corpus[:chars])))


class SurpriseScreen(InspectScreen):
    BINDINGS = [Binding("m", "toggle_markers", "Markers", id="surprise-markers")]

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text
        self.result: Surprise | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="inspect-dialog") as dialog:
            dialog.border_title = "Surprise"
            dialog.border_subtitle = ("/ text · enter reads · space again · m markers · "
                                      "esc closes")
            yield Input(self.text, placeholder="a text to read (empty: the training text's start)",
                        id="surprise-input", select_on_focus=False)
            yield Static("", classes="inspect-note", markup=False)
            yield Static("", id="surprise-summary", markup=False)
            yield Static(legend(not truecolour(self.app)), id="surprise-legend", markup=False)
            with VerticalScroll(id="surprise-scroll"):
                yield SurpriseText(id="surprise-text")
                yield Static("", id="surprise-hardest", markup=False)

    def on_mount(self) -> None:
        self.query_one(SurpriseText).markers = not truecolour(self.app)
        self.set_focus(None)
        self.read()

    def read(self) -> None:
        text = self.text

        def work(trainer) -> Surprise:
            return surprise(trainer.net, trainer.vocab, text or training_passage(trainer),
                            trainer.config.preprocess, top=10)

        self.ask(work, "reading the text")

    @on(Input.Submitted, "#surprise-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.text = event.value
        self.set_focus(None)
        self.read()

    def action_again(self) -> None:
        self.read()

    def action_toggle_markers(self) -> None:
        view = self.query_one(SurpriseText)
        view.markers = not view.markers
        self.query_one("#surprise-legend", Static).update(legend(view.markers))

    def show(self, result: Surprise) -> None:
        self.result = result
        self.query_one(SurpriseText).result = result
        source = "the training text's start" if not self.text else "your text"
        notes = []
        if result.truncated:
            notes.append(f"the first {len(result.text):,} characters")
        if result.unknown:
            notes.append(f"{result.unknown:,} unknown, read as <unk>")
        summary = (f"perplexity {result.perplexity:.3f} on {len(result.losses):,} characters of "
                   f"{source} (mean loss {result.mean_loss:.3f} nats)")
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
