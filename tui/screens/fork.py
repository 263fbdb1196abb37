"""Fork the running model: from epoch 0 with the same seed, or from its current weights."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

CPU_NOTE = ("One run trains at a time (on a CPU two runs fight over the cores): this run stops "
            "here, checkpointed and kept; switch back to it with b (the run browser), enter.")
UNRECORDED_NOTE = ("One run trains at a time (on a CPU two runs fight over the cores): this run "
                   "stops here and, not recorded, cannot be taken up again.")


class ForkScreen(ModalScreen["str | None"]):
    """Dismisses with "start" (from epoch 0), "branch" (from the current weights) or None."""

    BINDINGS = [
        Binding("0", "choose('start')", "From epoch 0", id="fork-start"),
        Binding("w", "choose('branch')", "From these weights", id="fork-branch"),
        Binding("escape,n", "choose(None)", "Cancel", id="fork-cancel"),
    ]
    AUTO_FOCUS = "#fork-branch"

    def __init__(self, changes: str, parent: str, recorded: bool = True) -> None:
        super().__init__()
        self.changes, self.parent_kept, self.recorded = changes, parent, recorded

    def compose(self) -> ComposeResult:
        with Vertical(id="fork-dialog") as dialog:
            dialog.border_title = "Fork this run?"
            yield Static(f"A new run with the hyperparameter panel's settings; this one "
                         f"{self.parent_kept}.", id="fork-body", markup=False)
            yield Static(self.changes, id="fork-changes", markup=False)
            yield Static(CPU_NOTE if self.recorded else UNRECORDED_NOTE, id="fork-note",
                         markup=False)
            with Horizontal(id="fork-buttons"):
                yield Button("From epoch 0, same seed (0)", id="fork-start", variant="primary")
                yield Button("From these weights (w)", id="fork-branch", variant="warning")
                yield Button("Cancel (n)", id="fork-cancel")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss({"fork-start": "start", "fork-branch": "branch"}.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
