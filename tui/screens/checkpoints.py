"""Open a checkpoint: the saved runs, newest first, with their key facts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from rich.text import Text
from textual.widgets import DataTable, Static

from engine.checkpoint import CheckpointError, CheckpointSummary, describe, list_checkpoints
from engine.text import printable


def _when(created: str) -> str:
    try:
        return datetime.fromisoformat(created.replace("Z", "+00:00")).astimezone().strftime(
            "%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):  # a file's own text: anything may be in it
        return created[:16]


def cell(text: str) -> Text:
    """A table cell shown as written: DataTable reads a str cell as markup, and run and corpus
    names come from files and may hold brackets or control characters."""
    return Text(printable(text))


class CheckpointPicker(ModalScreen["Path | None"]):
    """Dismisses with the chosen checkpoint's path (enter), or None (escape)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="picker-cancel")]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.paths: list[Path] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog") as dialog:
            dialog.border_title = "Open a checkpoint"
            dialog.border_subtitle = "enter opens · escape cancels"
            yield Static(printable(f"reading {self.runs_dir} …"), id="picker-note", markup=False)
            yield DataTable(id="picker-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("run", "corpus", "epoch", "perplexity", "hidden", "saved")
        self.load()

    @work(thread=True, exclusive=True, group="picker")
    def load(self) -> None:
        """Read the summaries off the UI thread (a checkpoint is a few MB each)."""
        rows: list[tuple[Path, CheckpointSummary | None, str]] = []
        for path in list_checkpoints(self.runs_dir) if self.runs_dir.is_dir() else []:
            try:
                rows.append((path, describe(path), ""))
            except CheckpointError as e:
                rows.append((path, None, str(e)))
        self.app.call_from_thread(self.show, rows)

    def show(self, rows) -> None:
        table = self.query_one(DataTable)
        note = self.query_one("#picker-note", Static)
        self.paths = []
        for path, summary, problem in rows:
            run = path.parent.name if path.parent != self.runs_dir else path.name
            if summary is None:
                table.add_row(cell(run), cell("damaged"), "", "", "", "", key=str(path))
            else:
                ppl = "n/a" if summary.perplexity is None else f"{summary.perplexity:.3g}"
                table.add_row(cell(run), cell(summary.corpus_name),
                              cell(f"{summary.epoch}/{summary.epochs}"), cell(ppl),
                              cell(str(summary.num_hiddens)), cell(_when(summary.created)),
                              key=str(path))
            self.paths.append(path)
        if rows:
            note.update(printable(f"{len(rows)} checkpoint(s) in {self.runs_dir}"))
            table.focus()
        else:
            note.update(printable(f"No checkpoints yet in {self.runs_dir}. Runs save one every "
                                  "few epochs; s saves now."))

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(Path(event.row_key.value))
