"""What the three looking-inside screens share: asking the trainer's thread, and its answer.

The screens never touch the model: they hand the trainer a function (engine.inspect on its
model, as it is now) through `Trainer.request`; it runs between batches, or while paused, and
the answer (plain numbers and strings) comes back as a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from engine.events import RunState
from engine.text import printable

# States in which the trainer's thread answers requests (the app's prompt uses the same).
ANSWERING = (RunState.TRAINING, RunState.PAUSED, RunState.DIVERGED, RunState.FINISHED)


class InspectScreen(ModalScreen[None]):
    """A full-screen view that asks the trainer for something and shows the answer."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="inspect-close"),
        Binding("slash", "focus_text", "Text", id="inspect-text", show=False),
        Binding("space", "again", "Again", id="inspect-again", show=False),
    ]

    @dataclass
    class Answered(Message):
        token: int
        result: Any
        error: str | None

    text = ""  # what the screen reads (empty: the start of the training text)

    def __init__(self) -> None:
        super().__init__()
        self._token = 0
        self.pending = False

    def ask(self, work: Callable[[Any], Any], what: str = "computing") -> bool:
        """Send work(trainer) to the trainer's thread; False (with a note shown) if there is
        no model to ask."""
        app = self.app
        trainer, snap = app.trainer, app.last_snapshot
        if trainer is None or snap is None or snap.state not in ANSWERING:
            state = snap.state.value if snap is not None else "starting"
            self.show_note(f"No model to look at now (training is {state}).", error=True)
            return False
        self._token += 1
        token = self._token
        self.pending = True
        self.show_note(f"{what} on the trainer's thread (between batches) …")

        def done(future) -> None:  # on the trainer's thread: post, never block
            error = future.exception()
            if error is not None:
                message = str(error) if isinstance(error, ValueError) else \
                    f"{type(error).__name__}: {error}"
                self.post_message(self.Answered(token, None, message))
            else:
                self.post_message(self.Answered(token, future.result(), None))

        # work reads the trainer's model, but runs on the trainer's thread, between batches.
        trainer.request(lambda: work(trainer)).add_done_callback(done)
        return True

    def on_inspect_screen_answered(self, message: "InspectScreen.Answered") -> None:
        if message.token != self._token:
            return  # an older question's answer
        self.pending = False
        if message.error is not None:
            self.show_note(message.error, error=True)
        else:
            self.show_note("")
            self.show(message.result)

    def show(self, result: Any) -> None:
        """Draw an answer (each screen)."""

    def show_note(self, text: str, error: bool = False) -> None:
        """A line above the figures; an error's text may quote a path or a file's contents,
        so it is shown literally, control characters as symbols."""
        note = self.query_one(".inspect-note", Static)
        note.update(printable(text))
        note.set_class(error, "-error")
        note.display = bool(text)

    def action_close(self) -> None:
        if isinstance(self.focused, Input):
            self.set_focus(None)  # escape leaves the field first
        else:
            self.dismiss(None)

    def action_focus_text(self) -> None:
        for field in self.query(Input):
            self.set_focus(field)
            return

    def read(self) -> None:
        """Ask the trainer for this screen's figures (each screen), on `self.text`."""

    def action_again(self) -> None:
        """Ask again: the model has moved on since."""
        self.read()

    @on(Input.Submitted)
    def _text_submitted(self, event: Input.Submitted) -> None:
        """A screen's text field: enter reads the typed text."""
        event.stop()
        self.text = event.value
        self.set_focus(None)
        self.read()
