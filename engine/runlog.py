"""Run logs: every run's metrics as JSON Lines, and its samples as text, in a run directory.

A run directory (`~/.local/share/rnn-tui/runs/<YYYYmmdd-HHMMSS>-<name>` by default) holds
`metrics.jsonl` (one record per line: start, epoch, setting, sample, diverged, error, end),
`samples.txt`, and the run's checkpoints. Each line is flushed as it is written, so a killed
run keeps everything up to its last line. A failed write (a full disk, a deleted directory)
never raises: the log keeps the first OSError in `.error` and drops later records until
`reopen()`, and the caller (engine.recorder) pauses or stops the run and says so.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import threading
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from .text import printable

METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.txt"
RECORD_TYPES = ("start", "epoch", "setting", "sample", "notice", "diverged", "error", "end")
# A record whose floats were NaN or infinite holds null there, and says which in this key.
NONFINITE_KEY = "nonfinite"
# json.dumps escapes C0 controls but, with ensure_ascii=False, leaves DEL, C1 controls (CSI is
# U+009B), bidirectional controls and lone surrogates raw: `cat metrics.jsonl` must not obey
# them, and a lone surrogate cannot even be written as UTF-8. JSON reads \uXXXX back the same.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def default_runs_dir() -> Path:
    """$XDG_DATA_HOME/rnn-tui/runs, else ~/.local/share/rnn-tui/runs."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser() / "rnn-tui" / "runs"


def run_dir_name(name: str, now: datetime | None = None) -> str:
    """`<YYYYmmdd-HHMMSS>-<name>` in local time, the name reduced to safe file-name characters."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name or name)
    safe = safe.strip(".-")[:40] or "run"
    return f"{stamp}-{safe}"


def new_run_dir(name: str, root: str | Path | None = None, now: datetime | None = None) -> Path:
    """Create a fresh run directory; two runs started in the same second get -2, -3, ...

    Raises OSError when the directory cannot be made (the caller reports it before training).
    """
    base = Path(root).expanduser() if root is not None else default_runs_dir()
    base.mkdir(parents=True, exist_ok=True)
    stem = run_dir_name(name, now)
    for n in range(1, 10_000):
        candidate = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            candidate.mkdir()  # atomic: exactly one process wins each name
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"too many runs named {stem!r} in {base}")


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def jsonable(record: dict[str, Any]) -> dict[str, Any]:
    """A copy that json.dumps(allow_nan=False) accepts: NaN and infinities become null, and
    NONFINITE_KEY maps their dotted keys to "nan", "inf" or "-inf" so readers can restore them."""
    nonfinite: dict[str, str] = {}
    clean = _clean(record, "", nonfinite)
    if nonfinite:
        clean[NONFINITE_KEY] = nonfinite
    return clean


def _clean(value: Any, key: str, nonfinite: dict[str, str]) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        nonfinite[key] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v, f"{key}.{k}" if key else str(k), nonfinite)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, f"{key}.{i}", nonfinite) for i, v in enumerate(value)]
    if isinstance(value, Enum):
        return _clean(value.value, key, nonfinite)
    if hasattr(value, "item") and callable(value.item):  # a 0-d tensor or numpy scalar
        try:
            return _clean(value.item(), key, nonfinite)
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


class RunLog:
    """Appends records to <run_dir>/metrics.jsonl and samples to <run_dir>/samples.txt."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir).expanduser()
        self.metrics_path = self.dir / METRICS_FILE
        self.samples_path = self.dir / SAMPLES_FILE
        self.error: OSError | None = None  # the first write failure; later records are dropped
        self.dropped = 0                   # records not written because of it
        self._lock = threading.Lock()      # the trainer's thread and the UI may both write
        self._metrics: TextIO | None = None
        self._samples: TextIO | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._fail(e)
        self._open()

    def _open(self) -> None:
        try:
            self._metrics = open(self.metrics_path, "a", encoding="utf-8", newline="\n")
            self._samples = open(self.samples_path, "a", encoding="utf-8", newline="\n")
        except OSError as e:
            self._fail(e)

    def reopen(self) -> bool:
        """After a failure: forget it and open the files again (appending), e.g. once disk
        space was freed. Returns whether writing works; the run directory is not re-created."""
        self.close()
        with self._lock:
            self.error = None
            self._open()
            return self.error is None

    @property
    def ok(self) -> bool:
        return self.error is None

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (it needs a "type" from RECORD_TYPES; "time" is added)."""
        kind = record.get("type")
        if kind not in RECORD_TYPES:
            raise ValueError(f"a run-log record needs a type from {RECORD_TYPES}, got {kind!r}")
        line = json.dumps(jsonable({"type": kind, "time": utc_timestamp(), **record}),
                          ensure_ascii=False, allow_nan=False)
        line = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)
        self._append(self._metrics, line + "\n")

    def sample(self, epoch: int, prefix: str, text: str, memorized: float | None = None) -> None:
        """A sample goes to metrics.jsonl as a record (exact) and to samples.txt as a readable
        line (control characters shown, a newline as ⏎: engine.text.printable); memorized: the
        share of its 20-character windows found in the training text."""
        record = {"type": "sample", "epoch": epoch, "prefix": prefix, "text": text}
        if memorized is not None:
            record["memorized"] = memorized
        self.write(record)
        seen = f"  [{memorized:.0%} seen]" if memorized is not None else ""
        self._append(self._samples, f"epoch {epoch:>4}  {printable(prefix + text)}{seen}\n")

    def _append(self, stream: TextIO | None, text: str) -> None:
        with self._lock:
            if self.error is not None or stream is None or stream.closed:
                self.dropped += 1
                return
            try:
                stream.write(text)
                stream.flush()  # a killed run keeps every line written so far
                if os.fstat(stream.fileno()).st_nlink == 0:  # writes to a deleted file succeed
                    raise FileNotFoundError(errno.ENOENT, "the file was deleted during the run",
                                            stream.name)
            except OSError as e:
                self._fail(e)
                self.dropped += 1

    def _fail(self, error: OSError) -> None:
        if self.error is None:
            self.error = error

    def close(self) -> None:
        with self._lock:
            for stream in (self._metrics, self._samples):
                if stream is None or stream.closed:
                    continue
                try:
                    stream.flush()
                    os.fsync(stream.fileno())
                except OSError as e:
                    self._fail(e)
                finally:
                    try:
                        stream.close()
                    except OSError as e:  # close flushes again; a full disk may fail here too
                        self._fail(e)

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl (or of a run directory), NaN and infinities restored.

    A line that is not a JSON object (the last one, when a run was killed mid-write) is skipped.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / METRICS_FILE
    records = []
    with open(p, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(_restore_nonfinite(record))
    return records


def _restore_nonfinite(record: dict[str, Any]) -> dict[str, Any]:
    marks = record.pop(NONFINITE_KEY, None)
    if not isinstance(marks, dict):
        return record
    for dotted, text in marks.items():
        if text not in ("nan", "inf", "-inf"):
            continue
        *parents, last = str(dotted).split(".")
        target: Any = record
        try:
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target[part]
            if isinstance(target, list):
                target[int(last)] = float(text)
            elif isinstance(target, dict):
                target[last] = float(text)
        except (KeyError, IndexError, ValueError, TypeError):
            continue
    return record
