"""A yes/no question over the app, e.g. before a restart drops the run's progress."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from engine.text import printable


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True (confirm: enter or y) or False (cancel: escape or n)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]
    AUTO_FOCUS = "#confirm-yes"

    def __init__(self, title: str, body: str, confirm: str = "Yes", cancel: str = "Cancel",
                 details: str = "") -> None:
        super().__init__()
        self.question_title = title
        self.body = body
        self.details = details
        self.confirm_label = confirm
        self.cancel_label = cancel

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog") as dialog:
            dialog.border_title = self.question_title
            # Bodies quote paths and corpus names: shown literally, control characters too.
            yield Static(printable(self.body, multiline=True), id="confirm-body", markup=False)
            if self.details:
                yield Static(printable(self.details, multiline=True), id="confirm-details",
                             markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.confirm_label} (y)", id="confirm-yes", variant="warning")
                yield Button(f"{self.cancel_label} (n)", id="confirm-no", variant="default")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
