"""Hidden units (u): the hidden state over a typed text as a heatmap, and "find the unit":
the units whose activation follows a character class best, with their correlation."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical, VerticalScroll
from textual.widgets import Input, Static

from engine.inspect import CHAR_CLASSES, UnitsView, units_view

from ..colour import truecolour
from ..widgets.unit_heatmap import UnitHeatmap, legend, scale_of
from .inspect_view import InspectScreen
from .surprise import training_passage

CLASSES = tuple(CHAR_CLASSES)   # keys 1..5 choose one
PASSAGE_CHARS = 400
TOP_UNITS = 12


class HiddenUnitsScreen(InspectScreen):
    BINDINGS = [
        *(Binding(str(i + 1), f"choose_class({i})", name, show=False, id=f"units-class-{name}")
          for i, name in enumerate(CLASSES)),
        Binding("c", "next_part", "H/C/gates", id="units-part", show=False),
    ]

    def __init__(self, text: str = "", char_class: str = "space") -> None:
        super().__init__()
        self.text = text
        self.char_class = char_class
        self.part = "H"
        self.result: UnitsView | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="inspect-dialog") as dialog:
            dialog.border_title = "Hidden units"
            dialog.border_subtitle = "/ text · 1-5 class · c state part · esc closes"
            yield Input(self.text, placeholder="a text to read (empty: the training text's start)",
                        id="units-input", select_on_focus=False)
            yield Static(self.classes_line(), id="units-classes", markup=False)
            yield Static("", classes="inspect-note", markup=False)
            yield Static(legend(colour=truecolour(self.app)), id="units-legend", markup=False)
            with ScrollableContainer(id="units-map"):
                yield UnitHeatmap(id="units-heatmap")
            with VerticalScroll(id="units-ranking-scroll"):
                yield Static("", id="units-ranking", markup=False)

    def classes_line(self) -> Text:
        line = Text("class: ")
        for i, name in enumerate(CLASSES, 1):
            line.append(f"{i} {name}", "reverse bold" if name == self.char_class else "")
            line.append("  ")
        return line

    def on_mount(self) -> None:
        self.set_focus(None)
        self.read()

    def read(self) -> None:
        text, char_class, part = self.text, self.char_class, self.part

        def work(trainer) -> UnitsView:
            return units_view(trainer.net, trainer.vocab,
                              text or training_passage(trainer, PASSAGE_CHARS),
                              trainer.config.preprocess, char_class, TOP_UNITS, part)

        self.ask(work, "running the text one step at a time")

    def action_choose_class(self, index: int) -> None:
        self.char_class = CLASSES[index]
        self.query_one("#units-classes", Static).update(self.classes_line())
        self.read()

    def action_next_part(self) -> None:
        parts = self.result.parts if self.result else ("H",)
        self.part = parts[(parts.index(self.part) + 1) % len(parts)] if self.part in parts \
            else parts[0]
        self.read()

    def show(self, result: UnitsView) -> None:
        self.result = result
        self.query_one(UnitHeatmap).view = result
        self.query_one("#units-legend", Static).update(
            legend(scale_of(result), truecolour(self.app)))
        ranking = Text()
        ranking.append(f"{result.char_class}: {CHAR_CLASSES[result.char_class]}\n", "bold")
        if result.problem:
            ranking.append(result.problem + "\n", "italic")
        else:
            ranking.append(f"of {result.num_units:,} units of {result.part}, these follow it best "
                           f"(Pearson's r over {len(result.text):,} characters):\n")
            for unit, r in result.ranked:
                ranking.append(f"  unit {unit:<5} r = {r:+.3f}  ")
                ranking.append("█" * round(abs(r) * 20), "red" if r > 0 else "blue")
                ranking.append("\n")
        if len(result.parts) > 1:
            ranking.append(f"c shows the next part of the state: {', '.join(result.parts)}\n",
                           "dim")
        self.query_one("#units-ranking", Static).update(ranking)
