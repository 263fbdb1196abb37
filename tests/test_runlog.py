"""Run logs: run directories, JSON Lines that stay valid, and a full disk that never stops a run."""

from __future__ import annotations

import enum
import json
import os
import threading
from datetime import datetime
from pathlib import Path

import pytest
import torch

from engine.runlog import (METRICS_FILE, SAMPLES_FILE, RunLog, default_runs_dir, jsonable,
                           new_run_dir, read_metrics, run_dir_name)


def strict_lines(path: Path) -> list[dict]:
    """Parse every line as strict JSON: NaN and Infinity are not JSON."""
    def no_constants(name):
        raise ValueError(f"{name} in a JSON line")
    return [json.loads(line, parse_constant=no_constants)
            for line in path.read_text("utf-8").splitlines()]


def test_default_runs_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_runs_dir() == tmp_path / "data" / "rnn-tui" / "runs"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_runs_dir() == tmp_path / "home" / ".local" / "share" / "rnn-tui" / "runs"


def test_new_run_dir_is_named_and_unique(tmp_path):
    now = datetime(2025, 3, 4, 5, 6, 7)
    first = new_run_dir("timemachine", tmp_path, now=now)
    second = new_run_dir("timemachine", tmp_path, now=now)
    third = new_run_dir("timemachine", tmp_path, now=now)
    assert first.name == "20250304-050607-timemachine"
    assert second.name == "20250304-050607-timemachine-2"
    assert third.name == "20250304-050607-timemachine-3"
    assert all(p.is_dir() for p in (first, second, third))


def test_new_run_dir_in_the_default_place(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    run = new_run_dir("pydoc")
    assert run.parent == tmp_path / "rnn-tui" / "runs" and run.name.endswith("-pydoc")


def test_concurrent_run_dirs_never_collide(tmp_path):
    now = datetime(2025, 1, 1)
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(new_run_dir("x", tmp_path, now=now)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8


@pytest.mark.parametrize("name,expected", [
    ("/home/me/my book.txt", "my-book.txt"), ("a/b:c*d", "b-c-d"), ("..", "run"), ("", "run"),
    ("x" * 100, "x" * 40),
])
def test_run_dir_names_are_safe(name, expected):
    assert run_dir_name(name, datetime(2025, 1, 2, 3, 4, 5)) == f"20250102-030405-{expected}"


def test_records_are_flushed_json_lines(tmp_path):
    log = RunLog(tmp_path / "run")
    log.write({"type": "start", "config": {"lr": 1.0, "prefixes": ("a", "b")}})
    log.write({"type": "epoch", "epoch": 1, "perplexity": 17.5, "tokens_per_sec": 1e5,
               "lr": 1.0, "clip": 1.0, "grad_norm": 0.5, "elapsed": 0.25})
    log.write({"type": "setting", "epoch": 1, "name": "lr", "old": 1.0, "new": 0.5})
    records = strict_lines(tmp_path / "run" / METRICS_FILE)  # readable before close()
    assert [r["type"] for r in records] == ["start", "epoch", "setting"]
    assert records[0]["config"]["prefixes"] == ["a", "b"]
    assert records[1]["perplexity"] == 17.5
    assert all(datetime.fromisoformat(r["time"]).tzinfo is not None for r in records)
    log.close()
    assert log.ok and log.dropped == 0


def test_non_finite_numbers_stay_valid_json_and_come_back(tmp_path):
    with RunLog(tmp_path) as log:
        log.write({"type": "diverged", "epoch": 3, "loss": float("nan"),
                   "perplexity": float("inf"), "nested": {"low": float("-inf")},
                   "values": [1.0, float("nan")]})
    raw, = strict_lines(tmp_path / METRICS_FILE)
    assert raw["loss"] is None and raw["perplexity"] is None
    assert raw["nonfinite"] == {"loss": "nan", "perplexity": "inf", "nested.low": "-inf",
                                "values.1": "nan"}
    record, = read_metrics(tmp_path)
    assert record["perplexity"] == float("inf") and record["nested"]["low"] == float("-inf")
    assert record["loss"] != record["loss"] and record["values"][1] != record["values"][1]
    assert "nonfinite" not in record


def test_values_of_other_kinds_become_plain_json():
    class State(enum.Enum):
        RUN = "training"

    out = jsonable({"state": State.RUN, "norm": torch.tensor(2.5), "path": Path("/x"),
                    "bad": torch.tensor(float("nan")), 3: "key"})
    assert out == {"state": "training", "norm": 2.5, "path": "/x", "bad": None, "3": "key",
                   "nonfinite": {"bad": "nan"}}


def test_samples_go_to_both_files(tmp_path):
    with RunLog(tmp_path) as log:
        log.sample(10, "time traveller", " the time traveller")
        log.sample(20, "traveller", " said\nthe")
    assert (tmp_path / SAMPLES_FILE).read_text("utf-8").splitlines() == [
        "epoch   10  time traveller the time traveller",
        "epoch   20  traveller said⏎the",
    ]
    records = read_metrics(tmp_path / METRICS_FILE)
    assert [(r["epoch"], r["prefix"], r["text"]) for r in records] == [
        (10, "time traveller", " the time traveller"), (20, "traveller", " said\nthe")]


def test_appends_to_an_existing_log(tmp_path):
    with RunLog(tmp_path) as log:
        log.write({"type": "start"})
    with RunLog(tmp_path) as log:
        log.write({"type": "end"})
    assert [r["type"] for r in read_metrics(tmp_path)] == ["start", "end"]


def test_unknown_record_type_is_a_programming_error(tmp_path):
    with RunLog(tmp_path) as log:
        with pytest.raises(ValueError, match="type"):
            log.write({"epoch": 1})
        with pytest.raises(ValueError, match="'bogus'"):
            log.write({"type": "bogus"})


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_is_remembered_not_raised(tmp_path):
    (tmp_path / METRICS_FILE).symlink_to("/dev/full")  # every write: ENOSPC
    log = RunLog(tmp_path)
    log.write({"type": "start"})
    log.write({"type": "epoch", "epoch": 1})
    log.sample(1, "a", "b")
    log.close()
    assert not log.ok and "No space left" in str(log.error)
    assert log.dropped == 4  # three records, one line of samples.txt


def test_unwritable_run_dir_is_remembered_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    log = RunLog(blocker / "run")
    log.write({"type": "start"})
    log.sample(1, "a", "b")
    log.close()
    assert isinstance(log.error, OSError) and log.dropped == 3


def test_writes_after_close_are_dropped(tmp_path):
    log = RunLog(tmp_path)
    log.close()
    log.write({"type": "end"})
    assert log.ok and log.dropped == 1 and read_metrics(tmp_path) == []


def test_read_metrics_skips_a_line_cut_by_a_kill(tmp_path):
    with RunLog(tmp_path) as log:
        log.write({"type": "epoch", "epoch": 1})
        log.write({"type": "epoch", "epoch": 2})
    with open(tmp_path / METRICS_FILE, "a", encoding="utf-8") as f:
        f.write('{"type": "epoch", "ep')
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1, 2]


def test_threads_write_whole_lines(tmp_path):
    log = RunLog(tmp_path)

    def writer(n):
        for i in range(200):
            log.write({"type": "epoch", "epoch": i, "writer": n, "pad": "x" * 500})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    records = strict_lines(tmp_path / METRICS_FILE)
    assert len(records) == 600
    for n in range(3):
        assert [r["epoch"] for r in records if r["writer"] == n] == list(range(200))
