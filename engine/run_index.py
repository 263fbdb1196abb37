"""The run directories used outside the default runs folder (`--run-dir`), remembered in a
small text file beside it, so that the app's checkpoint list finds those runs too."""

from __future__ import annotations

import os
from pathlib import Path

from .runlog import default_runs_dir

INDEX_FILE = "run-dirs.txt"
MAX_REMEMBERED = 200


def index_path() -> Path:
    """$XDG_DATA_HOME/rnn-tui/run-dirs.txt (beside runs/)."""
    return default_runs_dir().parent / INDEX_FILE


def remember_run_dir(run_dir: str | Path) -> None:
    """Note a run directory that is not under the default runs folder (which is scanned
    anyway). Best effort: a read-only data directory never stops a run."""
    path = Path(run_dir).expanduser().resolve()
    try:
        path.relative_to(default_runs_dir().resolve())
        return
    except ValueError:
        pass
    known = known_run_dirs(existing_only=False)
    if path in known:
        return
    try:
        index_path().parent.mkdir(parents=True, exist_ok=True)
        lines = [str(p) for p in (known + [path])[-MAX_REMEMBERED:]]
        tmp = index_path().with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        tmp.replace(index_path())
    except OSError:
        pass


def known_run_dirs(existing_only: bool = True) -> list[Path]:
    """The remembered run directories, oldest first (those still there, by default)."""
    try:
        lines = index_path().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    dirs = list(dict.fromkeys(Path(line) for line in lines if line.strip()))
    return [d for d in dirs if d.is_dir()] if existing_only else dirs
