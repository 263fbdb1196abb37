"""Open a checkpoint: the saved runs, newest first, with their key facts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from engine.checkpoint import CheckpointError, CheckpointSummary, describe, list_checkpoints



def _when(created: str) -> str:
    try:
        return datetime.fromisoformat(created.replace("Z", "+00:00")).astimezone().strftime(
            "%Y-%m-%d %H:%M")
    except ValueError:
        return created[:16]


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
            yield Static(f"reading {self.runs_dir} …", id="picker-note", markup=False)
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
                table.add_row(run, "damaged", "", "", "", "", key=str(path))
            else:
                ppl = "n/a" if summary.perplexity is None else f"{summary.perplexity:.3g}"
                table.add_row(run, summary.corpus_name, f"{summary.epoch}/{summary.epochs}", ppl,
                              str(summary.num_hiddens), _when(summary.created), key=str(path))
            self.paths.append(path)
        if rows:
            note.update(f"{len(rows)} checkpoint(s) in {self.runs_dir}")
            table.focus()
        else:
            note.update(f"No checkpoints yet in {self.runs_dir}. Runs save one every few epochs; "
                        "s saves now.")

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(Path(event.row_key.value))
