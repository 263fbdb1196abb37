"""Runs side by side: what each run directory's metrics.jsonl says, in a few numbers.

Pure Python (no torch): `rnn-tui compare`, `rnn-tui watch` and the run browser read runs
with these, and a run that trains elsewhere can be read while it grows.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .runlog import METRICS_FILE, _restore_nonfinite, default_runs_dir, read_metrics

# A run whose log has not ended and has not changed for this long was killed (or its machine
# went away); until then it counts as running.
STALE_S = 300.0


class RunError(ValueError):
    """A path that is not a readable run; the message says which and why, in one line."""


@dataclass(frozen=True)
class Curve:
    """Per-epoch numbers of a run, in epoch order (a resumed run's repeats replaced)."""
    epochs: tuple[int, ...] = ()
    seconds: tuple[float, ...] = ()          # training seconds at the end of each epoch
    train: tuple[float, ...] = ()
    val: tuple[float | None, ...] = ()       # None where nothing was held out


@dataclass(frozen=True)
class RunSummary:
    path: Path                   # the run directory
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    date: str = ""               # when the run (its first start record) began, UTC
    state: str = "unknown"       # finished, stopped, diverged, error, running, interrupted
    epoch: int = 0               # epochs done
    epochs: int = 0              # epochs asked for
    best_train: float | None = None
    last_train: float | None = None
    best_val: float | None = None
    last_val: float | None = None
    tokens_per_sec: float | None = None   # the last epoch's
    corpus: str = ""
    curve: Curve = Curve()

    @property
    def has_val(self) -> bool:
        return self.best_val is not None


def metrics_path(path: str | Path) -> Path:
    """The metrics.jsonl of a run directory, or the file itself."""
    p = Path(path).expanduser()
    return p / METRICS_FILE if p.is_dir() else p


def list_runs(*roots: str | Path) -> list[Path]:
    """Run directories (those holding a metrics.jsonl) directly under each root, or the root
    itself; newest name last. Missing roots are skipped."""
    found: dict[Path, None] = {}
    for root in roots or (default_runs_dir(),):
        r = Path(root).expanduser()
        if (r / METRICS_FILE).is_file():
            found[r] = None
        try:
            children = sorted(r.iterdir())
        except OSError:
            continue
        for child in children:
            if (child / METRICS_FILE).is_file():
                found[child] = None
    return list(found)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def summarize(records: Sequence[dict[str, Any]], path: str | Path, modified: float | None = None,
              now: float | None = None) -> RunSummary:
    """The summary of a run from its records; `modified` (the file's mtime) tells a run still
    writing from one that was killed."""
    p = Path(path)
    run_dir = p.parent if p.name == METRICS_FILE else p
    settings: dict[str, Any] = {}
    date, corpus, end = "", "", "running"
    by_epoch: dict[int, dict[str, Any]] = {}
    live_epochs = None
    # A resumed run's log starts past epoch 0, and one resumed once finished has no epoch
    # record at all: its start and end records say where it is.
    reached, end_ppl = 0, None
    for r in records:
        kind = r.get("type")
        if kind in ("start", "end") and isinstance(r.get("epoch"), int):
            reached = max(reached, r["epoch"])
        if kind == "start":
            if isinstance(r.get("config"), dict):
                settings = dict(r["config"])
            date = date or str(r.get("time", ""))
            corpus = str(r.get("corpus", corpus))
            end = "running"
            live_epochs = None
        elif kind == "epoch" and isinstance(r.get("epoch"), int):
            by_epoch[r["epoch"]] = r
        elif kind == "setting" and r.get("name") == "epochs" and isinstance(r.get("new"), int):
            live_epochs = r["new"]
        elif kind == "end":
            end = "stopped" if r.get("stopped") else "finished"
            end_ppl = _finite(r.get("perplexity"))
        elif kind in ("diverged", "error"):
            end = kind
    if end == "running" and modified is not None:
        if (now if now is not None else time.time()) - modified > STALE_S:
            end = "interrupted"
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    train = tuple(_finite(r.get("perplexity")) for r in rows)
    val = tuple(_finite(r.get("val_perplexity")) for r in rows)
    curve = Curve(tuple(int(r["epoch"]) for r in rows),
                  tuple(_finite(r.get("wall_time")) or 0.0 for r in rows),
                  tuple(math.nan if t is None else t for t in train), val)
    finite_train = [t for t in train if t is not None and math.isfinite(t)]
    finite_val = [v for v in val if v is not None and math.isfinite(v)]
    epochs = live_epochs if live_epochs is not None else settings.get("epochs", 0)
    return RunSummary(
        path=run_dir, name=run_dir.name, settings=settings, date=date, state=end,
        epoch=max(curve.epochs[-1] if curve.epochs else 0, reached),
        epochs=epochs if isinstance(epochs, int) else 0,
        best_train=min(finite_train) if finite_train else end_ppl,
        last_train=train[-1] if train else end_ppl,
        best_val=min(finite_val) if finite_val else None,
        last_val=val[-1] if val else None,
        tokens_per_sec=_finite(rows[-1].get("tokens_per_sec")) if rows else None,
        corpus=corpus, curve=curve)


def read_run(path: str | Path) -> RunSummary:
    """The summary of a run directory (or its metrics.jsonl). Raises RunError."""
    p = metrics_path(path)
    try:
        records = read_metrics(p)
        modified = p.stat().st_mtime
    except FileNotFoundError:
        raise RunError(f"{path}: no run there (no {METRICS_FILE})") from None
    except IsADirectoryError:
        raise RunError(f"{path}: is a directory without a {METRICS_FILE}") from None
    except OSError as e:
        raise RunError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not any(r.get("type") == "start" for r in records):
        raise RunError(f"{path}: not an rnn-tui run log (it has no start record)")
    return summarize(records, p, modified)


def differing_settings(runs: Sequence[RunSummary]) -> list[str]:
    """The settings whose values are not the same in every run, in the first run's order."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.settings))
    return [k for k in keys if len({json.dumps(r.settings.get(k), sort_keys=True)
                                    for r in runs}) > 1]


# ---- managing run directories ---------------------------------------------------------------

SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def rename_run(path: str | Path, new_name: str) -> Path:
    """Rename a run directory within its parent; returns the new path. Raises RunError."""
    src = Path(path)
    new_name = new_name.strip()
    if not SAFE_NAME.fullmatch(new_name) or new_name in (".", ".."):
        raise RunError(f"{new_name!r} is not a usable name: use letters, digits, '.', '_' "
                       "and '-'")
    dst = src.parent / new_name
    if dst.exists():
        raise RunError(f"a run named {new_name!r} already exists there")
    try:
        src.rename(dst)
    except OSError as e:
        raise RunError(f"cannot rename {src.name!r}: {e.strerror or e}") from None
    return dst


def delete_run(path: str | Path) -> None:
    """Delete a run directory and everything in it; only a directory holding a
    metrics.jsonl (never anything else). Raises RunError."""
    p = Path(path)
    if p.is_symlink() or not (p / METRICS_FILE).is_file():
        raise RunError(f"{p}: not a run directory; nothing was deleted")
    try:
        shutil.rmtree(p)
    except OSError as e:
        raise RunError(f"cannot delete {p.name!r}: {e.strerror or e}") from None


# ---- following a log as it grows --------------------------------------------------------------

class MetricsTail:
    """Reads the records added to a metrics.jsonl since the last call.

    A line without its newline yet (the writer is mid-line) waits for the next call. A file
    that is replaced or cut shorter (a new run in the same directory) starts over: `reset`
    is then True for that call, and the records are the whole new file's."""

    def __init__(self, path: str | Path):
        self.path = metrics_path(path)
        self._offset = 0
        self._partial = b""
        self._identity: tuple[int, int] | None = None
        self.reset = False

    def read(self) -> list[dict[str, Any]]:
        self.reset = False
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        identity = (st.st_dev, st.st_ino)
        if self._identity is not None and (identity != self._identity or st.st_size < self._offset):
            self._offset, self._partial, self.reset = 0, b"", True
        self._identity = identity
        if st.st_size == self._offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        records = []
        for line in lines:
            try:
                record = json.loads(line.decode("utf-8", errors="replace"))
            except ValueError:
                continue  # a damaged line; the rest still counts
            if isinstance(record, dict):
                records.append(_restore_nonfinite(record))
        return records


# ---- what the gap between training and validation says -----------------------------------------

# Validation has not improved for this many epochs while training went on improving, or
# validation is this many times training: the model is memorizing its training text.
MEMORIZING_PATIENCE = 20
MEMORIZING_RATIO = 1.5


def memorization(train: Sequence[float], val: Sequence[float | None], stride: int = 1,
                 patience: int = MEMORIZING_PATIENCE, ratio: float = MEMORIZING_RATIO
                 ) -> str | None:
    """A sentence when the gap between training and validation perplexity shows that the
    model is memorizing its training text; None while both still improve together.

    train and val are per-epoch histories (one point per `stride` epochs), the same length."""
    n = min(len(train), len(val))
    if n < 2:
        return None
    train, val = list(train[:n]), list(val[:n])
    if not all(x is not None and math.isfinite(x) for x in val + train):
        return None
    best = min(range(n), key=val.__getitem__)
    since = (n - 1 - best) * stride
    if since >= patience and train[-1] < train[best]:
        return (f"memorizing: validation perplexity has not improved for {since} epochs "
                f"(best {val[best]:.3g} at epoch {1 + best * stride}, now {val[-1]:.3g}) while "
                f"training perplexity fell to {train[-1]:.3g}")
    if val[-1] > ratio * train[-1]:
        return (f"memorizing: validation perplexity {val[-1]:.3g} is {val[-1] / train[-1]:.1f}x "
                f"training's {train[-1]:.3g}")
    return None
