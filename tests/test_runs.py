"""Run summaries, comparing runs (table and plot), and following a log as it grows."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest
from rich.console import Console

from engine.runlog import RunLog, read_metrics
from engine.runs import (STALE_S, MetricsTail, RunError, delete_run, differing_settings,
                         list_runs, read_run, rename_run, summarize)
from tui.cli import main
from tui.plot_file import svg


def fake_run(root: Path, name: str, train, val=None, *, end: str | None = "finished",
             config: dict | None = None, speed: float = 1000.0) -> Path:
    """A run directory as the recorder writes one: start, epochs, and an end."""
    run_dir = root / name
    settings = {"num_hiddens": 512, "lr": 1.0, "epochs": len(train), "seed": 0,
                "val_fraction": 0.1 if val else 0.0, **(config or {})}
    with RunLog(run_dir) as log:
        log.write({"type": "start", "epoch": 0, "config": settings, "corpus": "timemachine"})
        for i, ppl in enumerate(train):
            record = {"type": "epoch", "epoch": i + 1, "perplexity": ppl,
                      "tokens_per_sec": speed + i, "wall_time": 0.5 * (i + 1)}
            if val:
                record["val_perplexity"] = val[i]
            log.write(record)
        if end == "finished":
            log.write({"type": "end", "epoch": len(train), "perplexity": train[-1]})
        elif end == "stopped":
            log.write({"type": "end", "epoch": len(train), "stopped": True})
        elif end == "diverged":
            log.write({"type": "diverged", "epoch": len(train), "message": "boom"})
    return run_dir


def test_summary_of_a_run(tmp_path):
    d = fake_run(tmp_path, "a", [20.0, 8.0, 3.0, 4.0], [21.0, 9.0, 6.0, 7.5])
    s = read_run(d)
    assert s.name == "a" and s.path == d and s.state == "finished"
    assert (s.epoch, s.epochs) == (4, 4)
    assert (s.best_train, s.last_train, s.best_val, s.last_val) == (3.0, 4.0, 6.0, 7.5)
    assert s.tokens_per_sec == 1003.0 and s.settings["num_hiddens"] == 512
    assert s.curve.epochs == (1, 2, 3, 4) and s.curve.seconds == (0.5, 1.0, 1.5, 2.0)
    assert s.date.startswith("20") and s.corpus == "timemachine"
    assert read_run(d / "metrics.jsonl") == s  # the file names the same run


def test_states_and_a_killed_run(tmp_path):
    assert read_run(fake_run(tmp_path, "s", [5.0], end="stopped")).state == "stopped"
    assert read_run(fake_run(tmp_path, "d", [5.0], end="diverged")).state == "diverged"
    live = fake_run(tmp_path, "live", [5.0, 4.0], end=None)
    assert read_run(live).state == "running"
    records = read_metrics(live)
    assert summarize(records, live, modified=time.time() - STALE_S - 1).state == "interrupted"


def test_a_resumed_run_counts_each_epoch_once(tmp_path):
    d = fake_run(tmp_path, "r", [9.0, 5.0, 4.0], end="stopped")
    with RunLog(d) as log:  # resumed after epoch 2 (epoch 3 was never checkpointed)
        log.write({"type": "start", "epoch": 2, "config": {"epochs": 4}})
        for e, p in ((3, 3.5), (4, 3.0)):
            log.write({"type": "epoch", "epoch": e, "perplexity": p, "tokens_per_sec": 1.0,
                       "wall_time": e})
        log.write({"type": "end", "epoch": 4, "perplexity": 3.0})
    s = read_run(d)
    assert s.curve.epochs == (1, 2, 3, 4) and s.curve.train == (9.0, 5.0, 3.5, 3.0)
    assert s.state == "finished" and s.epochs == 4


def test_bad_paths_say_why(tmp_path):
    with pytest.raises(RunError, match="no run there"):
        read_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no run there"):
        read_run(tmp_path / "empty")
    (tmp_path / "x.jsonl").write_text('{"type": "epoch"}\nnot json\n')
    with pytest.raises(RunError, match="has no start record"):
        read_run(tmp_path / "x.jsonl")


def test_list_and_differing_settings(tmp_path):
    a = fake_run(tmp_path, "20260101-a", [5.0], config={"num_hiddens": 256})
    b = fake_run(tmp_path, "20260102-b", [4.0], config={"lr": 0.5})
    (tmp_path / "not-a-run").mkdir()
    assert list_runs(tmp_path) == [a, b]
    assert list_runs(a) == [a] and list_runs(tmp_path / "missing") == []
    runs = [read_run(a), read_run(b)]
    assert differing_settings(runs) == ["num_hiddens", "lr"]


def test_rename_and_delete(tmp_path):
    a = fake_run(tmp_path, "a", [5.0])
    fake_run(tmp_path, "b", [5.0])
    with pytest.raises(RunError, match="not a usable name"):
        rename_run(a, "../evil")
    with pytest.raises(RunError, match="already exists"):
        rename_run(a, "b")
    renamed = rename_run(a, "better-name")
    assert renamed == tmp_path / "better-name" and read_run(renamed).name == "better-name"
    (tmp_path / "keep").mkdir()
    with pytest.raises(RunError, match="not a run directory; nothing was deleted"):
        delete_run(tmp_path / "keep")
    assert (tmp_path / "keep").is_dir()
    delete_run(renamed)
    assert not renamed.exists()


def test_tail_reads_what_was_added_waits_for_half_lines_and_starts_over(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read() == []  # no file yet
    line = json.dumps({"type": "start", "config": {}})
    path.write_text(line + "\n" + '{"type": "epo')
    assert [r["type"] for r in tail.read()] == ["start"]
    with open(path, "a") as f:
        f.write('ch", "epoch": 1, "perplexity": null, "nonfinite": {"perplexity": "inf"}}\n')
    (epoch,) = tail.read()
    assert epoch["epoch"] == 1 and epoch["perplexity"] == math.inf and not tail.reset
    assert tail.read() == []
    replacement = tmp_path / "new.jsonl"
    replacement.write_text(line + "\n")
    os.replace(replacement, path)  # a new run in the same directory
    assert [r["type"] for r in tail.read()] == ["start"] and tail.reset


def test_compare_prints_a_table_and_writes_svg(tmp_path, capsys):
    a = fake_run(tmp_path, "[b]a[i]", [20.0, 8.0, 3.0], [21.0, 9.0, 6.0],
                 config={"num_hiddens": 256})
    b = fake_run(tmp_path, "b", [18.0, 7.0, 2.5], end="stopped", speed=2000.0)
    out = tmp_path / "plot.svg"
    assert main(["compare", str(a), str(b / "metrics.jsonl"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[b]a[i]" in text  # a name is shown as it is, never as markup
    assert "num_hiddens" in text and "val_fraction" in text and "lr" not in text.split("\n")[0]
    assert "3.000" in text and "6.000" in text and "2,002" in text and "stopped" in text
    doc = out.read_text()
    assert doc.startswith("<svg") and doc.count("<polyline") == 3  # a: train + val; b: train
    assert doc.count('stroke-dasharray="6 4"') == 2  # a's validation curve and its legend
    assert "[b]a[i] · validation" in doc and "(log scale)" in doc


def test_compare_options_and_errors(tmp_path, capsys):
    a = fake_run(tmp_path, "a<&>", [20.0, 8.0])
    linear = svg([read_run(a)], x="seconds", log=False)
    assert "a&lt;&amp;&gt; · train" in linear and "training seconds" in linear
    assert "log scale" not in linear
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert "rnn-tui compare: error:" in capsys.readouterr().err
    assert main(["compare", str(a), "--out", str(tmp_path / "p.gif")]) == 2
    assert "must end in .svg or .png" in capsys.readouterr().err


def test_compare_png_with_matplotlib_or_a_clear_message(tmp_path, capsys):
    a = fake_run(tmp_path, "a", [20.0, 8.0], [21.0, 9.0])
    out = tmp_path / "p.png"
    code = main(["compare", str(a), "--out", str(out), "--x", "seconds"])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert code == 2 and "needs matplotlib" in capsys.readouterr().err
        return
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_resumed_once_finished_is_at_its_epoch_not_zero(tmp_path):
    """Opening a finished run's checkpoint starts a log with a start and an end at that epoch
    and no epoch record: the summary is at that epoch, with the end's perplexity."""
    run_dir = tmp_path / "resumed"
    with RunLog(run_dir) as log:
        log.write({"type": "start", "epoch": 30, "config": {"epochs": 30}})
        log.write({"type": "end", "epoch": 30, "perplexity": 10.75, "tokens_per_sec": 0.0})
    s = read_run(run_dir)
    assert (s.epoch, s.epochs, s.state) == (30, 30, "finished")
    assert (s.best_train, s.last_train) == (10.75, 10.75)
    # Resumed at 30 and trained on: the epochs it logged.
    with RunLog(run_dir) as log:
        log.write({"type": "start", "epoch": 30, "config": {"epochs": 32}})
        for epoch, ppl in ((31, 9.0), (32, 9.5)):
            log.write({"type": "epoch", "epoch": epoch, "perplexity": ppl})
    s = read_run(run_dir)
    assert (s.epoch, s.epochs, s.state) == (32, 32, "running")
    assert (s.best_train, s.last_train) == (9.0, 9.5)
