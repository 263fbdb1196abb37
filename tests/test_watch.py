"""`rnn-tui watch`: the app follows a metrics.jsonl that another process writes, read-only."""

from __future__ import annotations

import json

import pytest

from engine.runlog import RunLog
from engine.events import RunState
from engine.runlog import read_metrics
from engine.watch import LogFollower, config_of
from tui.app import RnnTuiApp
from tui.cli import main
from tui.widgets.dual_sparkline import DualSparkline

from test_app import (_keys_without_idle_wait, notifications, run_async,  # noqa: F401
                      text_of, wait_for)

CONFIG = {"num_hiddens": 64, "epochs": 30, "lr": 1.0, "val_fraction": 0.1, "sample_every": 2}


def epoch(n: int, train: float, val: float) -> dict:
    return {"type": "epoch", "epoch": n, "perplexity": train, "val_perplexity": val,
            "tokens_per_sec": 5000.0, "lr": 1.0, "clip": 1.0, "grad_norm": 0.5,
            "wall_time": n * 0.25}


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@run_async
async def test_watch_follows_a_growing_log_read_only(tmp_path, size):
    run = tmp_path / "run"
    log = RunLog(run)
    log.write({"type": "start", "epoch": 0, "config": CONFIG, "corpus": "timemachine",
               "num_chars": 1000, "num_tokens": 10000, "vocab_size": 28, "device": "cpu",
               "impl": "fast", "num_params": 1234, "val_tokens": 1000})
    follower = LogFollower(run, poll_s=0.02)
    app = RnnTuiApp(config_of(read_metrics(run)), trainer_factory=lambda *a, **k: follower,
                    record=False)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.info is not None, what="the start record")
        assert app.info.vocab_size == 28 and "read-only" in app.info.impl
        assert app.config.num_hiddens == 64  # the watched run's settings in the form
        for n in range(1, 4):
            log.write(epoch(n, 20.0 / n, 21.0 / n))
        # Half a line: the writer is mid-line; nothing of it is read until the newline.
        with open(run / "metrics.jsonl", "a") as f:
            f.write(json.dumps(epoch(4, 4.0, 5.5))[:30])
        await wait_for(pilot, lambda: app.last_snapshot and app.last_snapshot.epoch == 3,
                       what="three epochs")
        await pilot.pause(0.3)
        assert app.last_snapshot.epoch == 3
        with open(run / "metrics.jsonl", "a") as f:
            f.write(json.dumps(epoch(4, 4.0, 5.5))[30:] + "\n")
        await wait_for(pilot, lambda: app.last_snapshot.epoch == 4, what="the fourth epoch")
        snap = app.last_snapshot
        assert snap.history == (20.0, 10.0, 20.0 / 3, 4.0)
        assert snap.val_history == (21.0, 10.5, 7.0, 5.5) and snap.state is RunState.TRAINING
        await pilot.pause(0.3)
        assert "validation" in text_of(app, "#stats") and "5.5" in text_of(app, "#stats")
        assert app.query_one(DualSparkline).display
        log.sample(4, "time traveller", " [red]and[/red] the")
        await wait_for(pilot, lambda: app.last_snapshot.samples, what="a sample")
        # Keys that would steer training say the run is read-only, and change nothing.
        for key in ("space", "e", "h", "s", "r"):
            await pilot.press(key)
        await pilot.pause(0.1)
        said = [n for n in notifications(app) if n.startswith("Read-only")]
        assert len(said) == 5 and "trains elsewhere" in said[0]
        assert not app.query_one("#hp-lr").has_focus
        # The gap opens: validation turns up while training goes on falling.
        for n in range(5, 17):
            log.write(epoch(n, 4.0 - 0.1 * n, 5.5 + 0.2 * n))
        await wait_for(pilot, lambda: any(n.startswith("Validation: memorizing")
                                          for n in notifications(app)), what="the notice")
        await pilot.pause(0.3)
        assert text_of(app, "#memorization") == "memorizing: validation has turned up"
        log.write({"type": "end", "epoch": 16, "perplexity": 2.4})
        await wait_for(pilot, lambda: app.last_snapshot.state is RunState.FINISHED,
                       what="the end")
        await pilot.press("q")
    log.close()
    assert app.return_code == 0 and follower.stop_requested


def test_a_replaced_log_starts_over(tmp_path):
    run = tmp_path / "run"
    with RunLog(run) as log:
        log.write({"type": "start", "epoch": 0, "config": CONFIG})
        log.write(epoch(1, 9.0, 9.5))
        log.write({"type": "end", "epoch": 1, "perplexity": 9.0})
    follower = LogFollower(run)
    follower.poll()
    assert follower.snapshot().history == (9.0,)
    assert follower.snapshot().state is RunState.FINISHED
    (run / "metrics.jsonl").unlink()
    with RunLog(run) as log:  # a new run written into the same directory
        log.write({"type": "start", "epoch": 0, "config": {**CONFIG, "num_hiddens": 32}})
    follower.poll()
    snap = follower.snapshot()
    assert snap.history == () and snap.state is RunState.TRAINING
    assert follower.config.num_hiddens == 32


def test_watch_refuses_a_path_without_a_run(tmp_path, capsys):
    assert main(["watch", str(tmp_path)]) == 2
    assert "rnn-tui watch: error:" in capsys.readouterr().err
