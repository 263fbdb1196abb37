"""Every key, read from the one table in tui.bindings (with the user's keymap applied)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..bindings import KEYMAP_ENV, KEYS, SECTIONS

# Keys that belong to widgets rather than to the app's table.
FIELD_KEYS = (
    ("enter", "Apply a live value; in the prompt, generate again"),
    ("tab / shift+tab", "Next / previous field"),
    ("ctrl+p", "Command palette: every action by name"),
    ("ctrl+q", "Quit at once, from anywhere"),
)


class HelpScreen(ModalScreen[None]):
    """Scrolls where it does not fit (80x24): up/down, page keys, home/end, tab/shift+tab."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help-close"),
                Binding("tab", "page(1)", "Next page", show=False),
                Binding("shift+tab", "page(-1)", "Previous page", show=False)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog") as dialog:
            dialog.border_title = "Keys"
            dialog.border_subtitle = "↑↓ pgup pgdn scroll · escape closes"
            for section, rows in self.sections():
                yield Static(section, classes="help-section", markup=False)
                with Grid(classes="help-keys"):
                    for keys, text in rows:
                        yield Static(keys, classes="help-key", markup=False)
                        yield Static(text, classes="help-text", markup=False)
            yield Static(f"Remap a key by its id: {KEYMAP_ENV}=\"pause=x;quit=ctrl+q\". Ids: "
                         f"{', '.join(k.id for k in KEYS)}.", id="help-remap", markup=False)

    def on_mount(self) -> None:
        # The scrolling dialog takes the keys: up, down, pageup, pagedown, home and end.
        self.query_one("#help-dialog").focus()

    def action_page(self, direction: int) -> None:
        dialog = self.query_one("#help-dialog", VerticalScroll)
        if direction > 0:
            dialog.scroll_page_down(animate=False)
        else:
            dialog.scroll_page_up(animate=False)

    def sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        keymap = getattr(self.app, "_keymap", {}) or {}
        out = []
        for section in SECTIONS:
            rows = []
            for spec in (k for k in KEYS if k.section == section):
                keys = keymap.get(spec.id, spec.key)
                shown = " or ".join(self.app.get_key_display(Binding(k.strip(), spec.action))
                                    for k in keys.split(","))
                rows.append((shown, spec.help))
            out.append((section, rows))
        out.append(("In a field", list(FIELD_KEYS)))
        return out

    def text(self) -> str:
        """Everything the screen says, as plain text (for tests and the palette)."""
        return "\n".join(f"{keys}  {text}" for _, rows in self.sections() for keys, text in rows)
