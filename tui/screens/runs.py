"""The run browser: every run on disk, side by side; mark some to overlay their curves.

Runs come from the runs directory and any directory added here (a). Settings that differ
between the runs shown are highlighted. Names, settings and paths are untrusted text: every
cell is a rich Text, never markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from engine.rundir import in_use
from engine.runs import (RunError, RunSummary, delete_run, differing_settings, list_runs, read_run,
                         rename_run)
from engine.text import printable

from ..paths import same_path
from .confirm import ConfirmScreen
from .overlay import OverlayScreen
from .text_prompt import TextPrompt

# Settings always shown in the settings column, by short label; others appear when they differ.
SHOWN = (("num_hiddens", "h"), ("lr", "lr"), ("iterator", "iter"), ("val_fraction", "val"),
         ("seed", "seed"))
SHORT = dict(SHOWN)


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


def _ppl(v: float | None) -> str:
    if v is None:
        return "-"
    if not math.isfinite(v):
        return "inf" if v > 0 else "nan"
    return f"{v:.3f}" if v < 100 else f"{v:.4g}"


# Sort orders: (label, key); None sorts last.
SORTS: tuple[tuple[str, Callable[[RunSummary], object]], ...] = (
    ("date", lambda r: (r.date, r.name)),
    ("name", lambda r: r.name.lower()),
    ("best train", lambda r: (r.best_train is None, r.best_train or 0.0)),
    ("best validation", lambda r: (r.best_val is None, r.best_val or 0.0)),
    ("tokens/s", lambda r: (r.tokens_per_sec is None, -(r.tokens_per_sec or 0.0))),
    ("state", lambda r: r.state),
)


class RunsScreen(ModalScreen[None]):
    """Browse runs. Opening one hands its checkpoint to `open_checkpoint` (the app's flow).

    The marks and the directories added outlive the screen: it starts from the ones it is
    given and says each change in a message, which the app keeps for the session (the
    surprise view's compare picker offers the marked runs first)."""

    @dataclass
    class Marked(Message):
        """The runs marked now (run directories)."""
        paths: frozenset[Path]

    @dataclass
    class DirectoryAdded(Message):
        path: Path

    BINDINGS = [
        Binding("escape", "close", "Close", id="runs-close"),
        Binding("space,m", "mark", "Mark", id="runs-mark"),
        Binding("v", "overlay", "Overlay", id="runs-overlay"),
        Binding("s", "sort", "Sort", id="runs-sort"),
        Binding("n", "rename", "Rename", id="runs-rename"),
        Binding("d,delete", "delete", "Delete", id="runs-delete"),
        Binding("a", "add_dir", "Add dir", id="runs-add"),
        Binding("slash", "filter", "Filter", id="runs-filter", show=False),
    ]
    AUTO_FOCUS = "#runs-table"  # commands by key; other printable keys start the filter
    HINT = ("type to filter · space marks · v overlay · enter opens · s sorts · n renames · "
            "d deletes · a adds a dir · esc")

    def __init__(self, roots: list[Path], open_checkpoint: Callable[[Path], None] | None = None,
                 marked: frozenset[Path] = frozenset(), own: Path | None = None) -> None:
        super().__init__()
        self.roots = list(roots)
        self.own = own  # the run this app records to: it keeps writing there
        self.open_checkpoint = open_checkpoint
        self.runs: list[RunSummary] = []
        self.problems: list[str] = []
        self.marked: set[Path] = set(marked)
        self.sort_index = 0
        self.shown: list[RunSummary] = []
        self._message_timer = None

    def compose(self) -> ComposeResult:
        with Vertical(id="runs-dialog") as dialog:
            dialog.border_title = "Runs"
            dialog.border_subtitle = self.HINT
            yield Input(placeholder="filter: part of a name, a setting or a state",
                        id="runs-filter-input", select_on_focus=False)
            yield Static("reading runs …", id="runs-note", markup=False)
            message = Static("", id="runs-message", markup=False)
            message.display = False  # until an action has something to say (notify)
            yield message
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.load()

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """What an action did or why it could not, on a line of the browser's own: toasts
        never show over a dialog, and the browser is one."""
        line = self.query_one("#runs-message", Static)
        line.update(printable(f"{title}: {message}" if title else message))
        line.set_class(severity == "error", "-error")
        line.display = True
        if self._message_timer is not None:
            self._message_timer.stop()
        self._message_timer = self.set_timer(timeout or 8, self.clear_message)

    def clear_message(self) -> None:
        self.query_one("#runs-message").display = False
        if self._message_timer is not None:
            self._message_timer.stop()
            self._message_timer = None

    # ---- reading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="runs")
    def load(self) -> None:
        """Read every run's log off the UI thread."""
        runs, problems = [], []
        for path in list_runs(*self.roots):
            try:
                runs.append(read_run(path))
            except RunError as e:
                problems.append(str(e))
        self.app.call_from_thread(self._loaded, runs, problems)

    def _loaded(self, runs: list[RunSummary], problems: list[str]) -> None:
        self.runs, self.problems = runs, problems
        self.set_marked(self.marked & {r.path for r in runs})  # deleted runs drop out

    # ---- the table ----------------------------------------------------------------------------

    def filtered(self) -> list[RunSummary]:
        words = self.query_one("#runs-filter-input", Input).value.lower().split()
        label, key = SORTS[self.sort_index]
        runs = sorted(self.runs, key=key, reverse=label == "date")  # newest first
        if not words:
            return runs

        def text(r: RunSummary) -> str:
            settings = " ".join(f"{k}={_value(v)}" for k, v in r.settings.items())
            return f"{r.name} {r.state} {r.corpus} {settings}".lower()
        return [r for r in runs if all(w in text(r) for w in words)]

    def refresh_table(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        cursor = self.current()
        table.clear(columns=True)
        has_val = any(r.has_val for r in self.runs)
        # The figures first, the settings after: at 80 columns a run's numbers stay in view.
        columns = ["", "run", "epoch", "best", "last"]
        columns += ["best val", "last val"] if has_val else []
        columns += ["state", "settings", "tok/s", "date"]
        table.add_columns(*columns)
        self.shown = self.filtered()
        differ = set(differing_settings(self.shown))
        for r in self.shown:
            row = [Text("✓" if r.path in self.marked else " ", style="bold"),
                   Text(printable(r.name)), Text(f"{r.epoch}/{r.epochs}"), Text(_ppl(r.best_train)),
                   Text(_ppl(r.last_train))]
            if has_val:
                row += [Text(_ppl(r.best_val)), Text(_ppl(r.last_val))]
            speed = "-" if r.tokens_per_sec is None else f"{r.tokens_per_sec:,.0f}"
            row += [Text(r.state), self.settings_text(r, differ), Text(speed),
                    Text(printable(r.date[:16].replace("T", " ")))]
            table.add_row(*row, key=str(r.path))
        if cursor is not None and cursor in self.shown:
            table.move_cursor(row=self.shown.index(cursor))
        note = self.query_one("#runs-note", Static)
        where = ", ".join(printable(str(p)) for p in self.roots)
        label = SORTS[self.sort_index][0]
        if not self.runs:
            note.update(f"No runs yet in {where}. Every run the app or train --headless starts "
                        "is kept there.")
        else:
            marked = f" · {len(self.marked)} marked" if self.marked else ""
            problems = f" · {len(self.problems)} unreadable" if self.problems else ""
            note.update(f"{len(self.shown)} of {len(self.runs)} runs in {where} · sorted by "
                        f"{label}{marked}{problems}")

    @staticmethod
    def settings_text(run: RunSummary, differ: set[str]) -> Text:
        """The usual settings, and any other that differs; those that differ highlighted."""
        text = Text()
        keys = [k for k, _ in SHOWN] + sorted(differ - set(SHORT))
        for key in keys:
            if key not in run.settings:
                continue
            if text:
                text.append(" ")
            style = "bold yellow" if key in differ else ""
            text.append(printable(f"{SHORT.get(key, key)}={_value(run.settings[key])}"),
                        style=style)
        return text

    def current(self) -> RunSummary | None:
        table = self.query_one("#runs-table", DataTable)
        row = table.cursor_row
        if not self.shown or row is None or not 0 <= row < len(self.shown):
            return None
        return self.shown[row]

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()  # enter on a row opens it
        self.action_open()

    @on(Input.Changed, "#runs-filter-input")
    def _filter_changed(self) -> None:
        self.refresh_table()

    @on(Input.Submitted, "#runs-filter-input")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#runs-table").focus()

    def on_key(self, event: events.Key) -> None:
        """Type to filter: a printable key that is not a command starts the filter."""
        field = self.query_one("#runs-filter-input", Input)
        if field.has_focus:
            if event.key == "escape":
                event.stop()
                event.prevent_default()
                self.query_one("#runs-table").focus()
            return
        if (event.is_printable and event.character and event.character not in " mvsnda/"
                and not event.character.isspace()):
            event.stop()
            event.prevent_default()
            field.focus()
            field.insert_text_at_cursor(event.character)

    # ---- actions ------------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_filter(self) -> None:
        self.query_one("#runs-filter-input").focus()

    def action_mark(self) -> None:
        run = self.current()
        if run is None:
            return
        self.set_marked(self.marked ^ {run.path})

    def set_marked(self, marked: set[Path]) -> None:
        if marked != self.marked:
            self.post_message(self.Marked(frozenset(marked)))
        self.marked = marked
        self.refresh_table()

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.refresh_table()

    def action_overlay(self) -> None:
        runs = [r for r in self.shown if r.path in self.marked]
        if not runs and self.current() is not None:
            runs = [self.current()]
        if not runs:
            self.notify("Mark runs with space first.", timeout=4)
            return
        self.app.push_screen(OverlayScreen(runs))

    def action_open(self) -> None:
        run = self.current()
        if run is None:
            return
        from engine.recorder import CHECKPOINT_FILE  # loads torch: only when opening

        checkpoint = run.path / CHECKPOINT_FILE
        if not checkpoint.is_file():
            self.notify(f"{run.name} has no checkpoint to open.", title="Open",
                        severity="warning", markup=False)
            return
        self.dismiss(None)
        if self.open_checkpoint is not None:
            self.open_checkpoint(checkpoint)

    def in_use(self, run: RunSummary, doing: str) -> bool:
        """Whether a run is still being written (this app's own run, or one whose log grows):
        renamed or deleted, its writer would go on in the old place. Says so."""
        own = self.own is not None and same_path(run.path, self.own)
        if own or in_use(run.path):
            whose = "this app records to it" if own else "a running rnn-tui writes to it"
            self.notify(f"{run.name}: {whose}; it can be {doing} once it has stopped "
                        "(quit, or open another run).", title=f"Not {doing}", severity="error")
            return True
        return False

    def action_rename(self) -> None:
        run = self.current()
        if run is None or self.in_use(run, "renamed"):
            return

        def answered(name: str | None) -> None:
            if not name or name == run.name:
                return
            try:
                new = rename_run(run.path, name)
            except RunError as e:
                self.notify(str(e), title="Not renamed", severity="error", markup=False)
                return
            self.clear_message()  # an earlier "Not renamed" no longer holds
            if run.path in self.marked:
                self.set_marked((self.marked - {run.path}) | {new})
            self.load()

        shown = printable(run.name)
        self.app.push_screen(TextPrompt("Rename the run", f"New name for {shown}:", shown),
                             answered)

    def action_delete(self) -> None:
        run = self.current()
        if run is None or self.in_use(run, "deleted"):
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_run(run.path)
            except RunError as e:
                self.notify(str(e), title="Not deleted", severity="error", markup=False)
                return
            self.notify(f"Deleted {run.name}.", title="Runs", timeout=4, markup=False)
            self.load()

        self.app.push_screen(ConfirmScreen(
            "Delete this run?", f"{run.path}\nepoch {run.epoch}/{run.epochs} · {run.state}",
            confirm="Delete", details="Its metrics, samples and checkpoints are removed from "
                                      "the disk; this cannot be undone."), answered)

    def action_add_dir(self) -> None:
        def answered(text: str | None) -> None:
            if not text or not text.strip():
                return
            path = Path(text.strip()).expanduser()
            if not path.is_dir():
                self.notify(f"{path} is not a directory.", title="Not added", severity="error",
                            markup=False)
                return
            self.clear_message()
            if path not in self.roots:
                self.roots.append(path)
                self.post_message(self.DirectoryAdded(path))
            self.load()

        self.app.push_screen(TextPrompt("Add a directory of runs",
                                        "A directory whose subdirectories are runs (or a run):"),
                             answered)
