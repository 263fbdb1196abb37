"""Ask for one line of text over the app (a new name for a run, a directory to add)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from engine.text import printable


class TextPrompt(ModalScreen["str | None"]):
    """Dismisses with the text typed (enter) or None (escape)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="text-prompt-cancel")]
    AUTO_FOCUS = "#text-prompt-input"

    def __init__(self, title: str, body: str, value: str = "") -> None:
        super().__init__()
        self.prompt_title, self.body, self.value = title, body, value

    def compose(self) -> ComposeResult:
        with Vertical(id="text-prompt-dialog") as dialog:
            dialog.border_title = self.prompt_title
            dialog.border_subtitle = "enter accepts · escape cancels"
            # A body may quote a run's name: shown literally, control characters too.
            yield Static(printable(self.body, multiline=True), id="text-prompt-body",
                         markup=False)
            yield Input(self.value, id="text-prompt-input")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)
