"""Textual's footer, keeping to one line: where its keys would spill past the edge (60x20),
the least needed go, the command palette's first; `?` lists every key."""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Dropped in this order where the line is too short; pause, help and quit always stay.
DROP_ORDER = ("command_palette", "save", "restart", "toggle_plot", "edit_hyperparams",
              "focus_prompt")


def key_width(key: FooterKey, compact: bool = True) -> int:
    """Columns a key takes in the footer: "key description" and its margin or border."""
    text = len(key.key_display) + (1 + len(key.description) if key.description else 0)
    if key.has_class("-command-palette"):
        return text + 2  # its border and padding
    return text + (1 if compact else 3)


class FittingFooter(Footer):
    _width = 0

    def compose(self):
        keys = list(super().compose())
        room = self.size.width or self.app.size.width
        for action in DROP_ORDER:
            if sum(key_width(k, self.compact) for k in keys) <= room:
                break
            keys = [k for k in keys if not (isinstance(k, FooterKey) and k.action == action)]
        yield from keys

    def on_resize(self) -> None:
        if self.size.width != self._width:
            self._width = self.size.width
            self.call_after_refresh(self.recompose)
