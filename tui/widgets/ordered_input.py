"""An Input whose editing keys apply in the order they were typed."""

from __future__ import annotations

from textual import events
from textual.widgets import Input

from engine.text import printable


class OrderedInput(Input):
    """Textual's Input, running its own key bindings (home, ctrl+k, backspace, enter, ...) as
    soon as their key arrives.

    Input inserts a typed character at once, but Textual runs a focused widget's bindings only
    after the key has bubbled up to the App. When keys arrive in one read (a paste, a fast
    typist, a loaded machine, tmux send-keys), "ctrl+a ctrl+k 80 enter" then inserted 80 first,
    deleted it, and submitted an empty field. Textual issue #6605; an open pull request
    (#6631) makes the same change in Input itself.
    """

    def validate_value(self, value: str) -> str:
        """Input shows its value as it is: a pasted ESC (or one set from a settings file's
        path) would reach the terminal. Control characters become their visible symbols."""
        return printable(value, multiline=True)  # a tab is typed text; a newline cannot be

    def replace(self, text: str, start: int, end: int) -> None:
        # The same for what is typed or pasted, so the cursor lands after the shown text.
        super().replace(printable(text, multiline=True), start, end)

    async def _on_key(self, event: events.Key) -> None:
        await super()._on_key(event)  # inserts a printable character
        if event.is_printable:
            return
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            # Priority bindings already ran, before the key reached this widget.
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.prevent_default()  # handled: it must not run again at the App
                event.stop()
                return
