"""Open a checkpoint: the saved runs, newest first, with their key facts, or a typed path.

The list holds the default runs folder and every run directory written elsewhere
(`--run-dir`, remembered by engine.run_index); the run that is training now is marked, with
its live epoch beside the one its checkpoint holds. Runs marked in the run browser come first,
with a ✓: the one to compare with is usually among them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from engine.checkpoint import CheckpointError, CheckpointSummary, describe, list_checkpoints
from engine.config import quoted
from engine.text import printable
from engine.run_index import known_run_dirs

from .. import format as fmt
from ..paths import same_path


@dataclass(frozen=True)
class CurrentRun:
    """The run training now: its checkpoint's path and the epoch it has reached."""
    checkpoint: Path
    epoch: int


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
    """Dismisses with the chosen checkpoint's path (enter in the list or the path field), or
    None (escape)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="picker-cancel")]

    def __init__(self, runs_dir: Path, current: CurrentRun | None = None,
                 other_dirs: list[Path] | None = None,
                 marked: frozenset[Path] = frozenset()) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.current = current
        self.marked = marked  # run directories
        self.other_dirs = known_run_dirs() if other_dirs is None else other_dirs
        self.paths: list[Path] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog") as dialog:
            dialog.border_title = "Open a checkpoint"
            dialog.border_subtitle = "enter opens · tab: the list or a path · escape cancels"
            yield Static(printable(f"reading {fmt.home(self.runs_dir)} …"), id="picker-note",
                         markup=False)
            yield DataTable(id="picker-table", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="picker-path-row"):
                yield Label("or a path", classes="control-label")
                yield Input(placeholder="a checkpoint file, or a run directory",
                            id="picker-path", compact=True)
            yield Static(id="picker-error", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # The figures before the names, which are long: at 80 columns they stay in view.
        table.add_columns("", "epoch", "perplexity", "hidden", "run", "corpus", "saved")
        self.query_one("#picker-path", Input).focus()
        self.load()

    @work(thread=True, exclusive=True, group="picker")
    def load(self) -> None:
        """Read the summaries off the UI thread (a checkpoint is a few MB each)."""
        found: dict[Path, None] = {}
        for directory in (self.runs_dir, *self.other_dirs):
            for path in list_checkpoints(directory) if directory.is_dir() else []:
                found.setdefault(path, None)

        def mtime(path: Path) -> float:
            try:
                return path.stat().st_mtime
            except OSError:
                return 0.0

        marked = {path for path in found if self.is_marked(path)}
        rows: list[tuple[Path, CheckpointSummary | None, str, bool]] = []
        for path in sorted(found, key=lambda p: (p not in marked, -mtime(p))):  # marked first
            try:
                rows.append((path, describe(path), "", path in marked))
            except CheckpointError as e:
                rows.append((path, None, str(e), path in marked))
        self.app.call_from_thread(self.show, rows)

    def show(self, rows) -> None:
        table = self.query_one(DataTable)
        note = self.query_one("#picker-note", Static)
        self.paths = []
        current = None
        marked = 0
        for path, summary, problem, is_marked in rows:
            run = path.parent.name if path.parent != self.runs_dir else path.name
            is_current = self.current is not None and same_path(path, self.current.checkpoint)
            mark = ""
            if is_current:
                mark, run = "●", f"{run} (this run)"
                current = len(self.paths)
            elif is_marked:
                mark = "✓"
                marked += 1
            if summary is None:
                table.add_row(mark, "", "", "", cell(run), cell("damaged"), "", key=str(path))
            else:
                ppl = "n/a" if summary.perplexity is None else f"{summary.perplexity:.3g}"
                epoch = f"{summary.epoch}/{summary.epochs}"
                if is_current and self.current.epoch != summary.epoch:
                    epoch = f"{self.current.epoch}/{summary.epochs}, saved {summary.epoch}"
                table.add_row(mark, cell(epoch), cell(ppl), cell(str(summary.num_hiddens)),
                              cell(run), cell(summary.corpus_name), cell(_when(summary.created)),
                              key=str(path))
            self.paths.append(path)
        where = fmt.home(self.runs_dir)
        if self.other_dirs:
            where += f" and {len(self.other_dirs)} other run director" + (
                "y" if len(self.other_dirs) == 1 else "ies")
        if rows:
            note.update(printable(f"{len(rows)} checkpoint(s) in {where}"
                                  + (" · ● marks the run training now" if current is not None
                                     else "")
                                  + (" · ✓ the runs marked in the run browser" if marked
                                     else "")))
            if not self.query_one("#picker-path", Input).value:  # not while typing a path
                table.focus()
        else:
            note.update(printable(f"No checkpoints yet in {where}. Runs save one every few "
                                  "epochs; s saves now."))

    def is_marked(self, path: Path) -> bool:
        """Whether the checkpoint is in a marked run (reads the disk: not on the UI thread)."""
        return any(same_path(path.parent, run) for run in self.marked)

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(Path(event.row_key.value))

    @on(Input.Submitted, "#picker-path")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        error = self.query_one("#picker-error", Static)
        if not text:
            error.update("type the path of a checkpoint file or of a run directory")
            return
        path = Path(text).expanduser()
        try:
            if path.is_dir():
                inside = list_checkpoints(path)
                if not inside:
                    error.update(f"no checkpoint in the directory {quoted(text)}")
                    return
                path = inside[0]
            elif not path.is_file():
                error.update(f"no file {quoted(text)}")
                return
        except OSError as e:
            error.update(f"cannot read {quoted(text)}: {e.strerror or e}")
            return
        self.dismiss(path)
