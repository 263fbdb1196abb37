"""A run is never lost silently: its directory is checked and locked before training, and a
write that fails mid-run stops (headless) or pauses (the app) the run with a clear message,
keeping the last good checkpoint."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.recorder
from engine.checkpoint import load_checkpoint
from engine.config import TrainConfig
from engine.files import atomic_write
from engine.recorder import RunRecorder
from engine.rundir import RunDirError, RunLock, check_writable
from engine.runlog import read_metrics
from engine.trainer import EpochDone, Trainer
from tui.cli import main

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--hidden", "32", "--max-tokens", "3000", "--batch-size", "8", "--num-steps", "10",
         "--threads", "1", "--impl", "book"]
SMALL_CONFIG = dict(num_hiddens=32, max_tokens=3000, batch_size=8, num_steps=10, threads=1,
                    impl="book", sample_every=1000)


def headless(*args: str) -> int:
    return main(["train", "--headless", *SMALL, *args])


# ---- before training ----------------------------------------------------------------------

def test_a_run_dir_that_is_a_file_is_refused_before_training(tmp_path, capsys, timemachine_path):
    target = tmp_path / "run"
    target.write_text("not a directory")
    assert headless("--corpus", str(timemachine_path), "--run-dir", str(target)) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"rnn-tui: error: run directory {str(target)!r} is a file, not a "
                            "directory\n")
    assert "epoch" not in captured.out  # nothing trained
    assert target.read_text() == "not a directory"


def test_a_run_dir_under_a_file_is_refused(tmp_path, capsys, timemachine_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert headless("--corpus", str(timemachine_path), "--run-dir", str(blocker / "run")) == 2
    assert capsys.readouterr().err == (
        f"rnn-tui: error: cannot create run directory {str(blocker / 'run')!r}: "
        f"{str(blocker)!r} is a file, not a directory\n")


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_a_run_dir_that_cannot_be_written_is_refused(tmp_path, capsys, monkeypatch,
                                                     timemachine_path, code):
    """Root ignores permissions, so the file system's refusal is simulated at the write."""
    import engine.rundir
    real_write = os.write

    def refuse(fd, data):
        if data == b"rnn-tui":  # the probe check_writable writes
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(engine.rundir.os, "write", refuse)
    run = tmp_path / "run"
    assert headless("--corpus", str(timemachine_path), "--run-dir", str(run)) == 2
    assert capsys.readouterr().err == (
        f"rnn-tui: error: run directory {str(run)!r} cannot be written: {os.strerror(code)}\n")
    assert list(run.iterdir()) == []  # the probe is gone too


def test_check_writable_on_any_path_shape(tmp_path):
    (tmp_path / "f").write_text("x")
    for bad in (tmp_path / "f", tmp_path / "f" / "a" / "b"):
        with pytest.raises(RunDirError, match="is a file, not a directory"):
            check_writable(bad)
    assert check_writable(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert list((tmp_path / "new" / "deep").iterdir()) == []


HOLD = """
import sys, time
from engine.rundir import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


def hold_lock(run: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_the_same_dir_is_refused_naming_the_holder(tmp_path, capsys,
                                                                  timemachine_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = hold_lock(run)
    try:
        assert headless("--corpus", str(timemachine_path), "--run-dir", str(run)) == 2
        assert capsys.readouterr().err == (
            f"rnn-tui: error: run directory {str(run)!r} is in use by another rnn-tui run "
            f"(PID {holder.pid}); wait for it to end, or choose another --run-dir\n")
        assert not (run / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_runs_lock_is_taken_over(tmp_path, capsys, timemachine_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = hold_lock(run)
    holder.send_signal(signal.SIGKILL)  # as kill -9 or a crash would leave it
    holder.wait()
    assert (run / ".lock").read_text().strip() == str(holder.pid)
    assert headless("--corpus", str(timemachine_path), "--epochs", "1", "--run-dir", str(run)) == 0
    assert (f"notice: took over {run} from a run that ended without letting go of it "
            f"(PID {holder.pid})") in capsys.readouterr().err
    assert (run / ".lock").read_text() == ""  # let go at the end
    assert load_checkpoint(run / "checkpoint.pt").epoch == 1


def test_in_use_is_whether_a_run_holds_the_lock_now(tmp_path):
    from engine.rundir import in_use
    assert not in_use(tmp_path)                      # never recorded here
    with RunLock(tmp_path):
        assert in_use(tmp_path)                      # held, by this very process too
        assert in_use(tmp_path)                      # and the probe took nothing
    assert not in_use(tmp_path)                      # let go: an empty file
    (tmp_path / ".lock").write_text(f"{os.getpid()}\n")
    assert not in_use(tmp_path)                      # a PID left in the file holds nothing
    with RunLock(tmp_path) as lock:                  # and the probe did not block a run
        assert lock.held


def test_a_lock_file_naming_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(f"{dead.pid}\n")
    with RunLock(tmp_path) as lock:
        assert lock.taken_over == dead.pid
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(RunDirError, match=f"PID {os.getpid()}"):
            RunLock(tmp_path).acquire()  # even from this process: one run per directory
    assert (tmp_path / ".lock").read_text() == ""
    with RunLock(tmp_path) as again:
        assert again.taken_over is None


# ---- during training -------------------------------------------------------------------------

def failing_save_after(monkeypatch, good_saves: int, code: int = errno.ENOSPC) -> dict:
    """Checkpoint writes that start failing, as a full disk fails: part of the file is
    written, then the write raises. Returns a counter of attempts."""
    calls = {"n": 0}

    def torch_save(record, path):
        calls["n"] += 1
        if calls["n"] <= good_saves:
            return real(record, path)

        def write(f):
            f.write(b"PK\x03\x04 part of a checkpoint")
            raise OSError(code, os.strerror(code))

        atomic_write(path, write)

    import engine.checkpoint
    real = engine.checkpoint._atomic_torch_save
    monkeypatch.setattr(engine.checkpoint, "_atomic_torch_save", torch_save)
    return calls


def test_a_full_disk_mid_run_stops_headless_keeping_the_last_checkpoint(
        tmp_path, capsys, monkeypatch, timemachine_path):
    run = tmp_path / "run"
    failing_save_after(monkeypatch, good_saves=2)
    status = headless("--corpus", str(timemachine_path), "--epochs", "50", "--autosave-every",
                      "1", "--run-dir", str(run))
    captured = capsys.readouterr()
    assert status == 1
    last = captured.err.strip().splitlines()[-1]
    assert last == (f"rnn-tui: error: cannot save checkpoint {str(run / 'checkpoint.pt')!r}: "
                    f"No space left on device; the last checkpoint saved, "
                    f"{str(run / 'checkpoint.pt')!r}, holds epoch 2")
    assert "stopped at epoch 3 of 50" in captured.out
    assert "checkpoint " + str(run) not in captured.out  # no "saved" line for a stale file
    assert load_checkpoint(run / "checkpoint.pt").epoch == 2
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_metrics_that_cannot_be_written_stop_headless(tmp_path, capsys, timemachine_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    status = headless("--corpus", str(timemachine_path), "--epochs", "50", "--run-dir", str(run))
    captured = capsys.readouterr()
    assert status == 1
    assert captured.err.strip().splitlines()[-1] == (
        f"rnn-tui: error: cannot write the run's metrics in {str(run)!r}: No space left on "
        f"device; the last checkpoint saved, {str(run / 'checkpoint.pt')!r}, holds epoch 0")
    assert "stopped at epoch 0 of 50" in captured.out


def recorded_trainer(tmp_path, corpus, epochs=30, **kw):
    trainer = Trainer(TrainConfig(**SMALL_CONFIG, epochs=epochs), corpus=corpus)
    failures = []

    def on_failure(message):
        failures.append(message)
        trainer.stop()

    recorder = RunRecorder(trainer, run_dir=tmp_path / "run", on_failure=on_failure, **kw)
    return trainer, recorder, failures


def test_a_run_dir_deleted_mid_run_is_noticed(tmp_path, timemachine_corpus):
    import shutil
    trainer, recorder, failures = recorded_trainer(tmp_path, timemachine_corpus,
                                                   autosave_every=1)
    trainer.add_listener(lambda e: shutil.rmtree(tmp_path / "run")
                         if isinstance(e, EpochDone) and e.epoch == 3 else None)
    snap = trainer.run()
    recorder.close()
    assert len(failures) == 1 and snap.state.value == "stopped"
    assert failures[0].startswith(f"cannot write the run's metrics in {str(tmp_path / 'run')!r}: "
                                  "the file was deleted during the run; the last checkpoint")


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(good_saves=st.integers(0, 3),
       code=st.sampled_from([errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EACCES]))
def test_any_failed_save_keeps_the_last_good_checkpoint(tmp_path_factory, timemachine_corpus,
                                                        good_saves, code):
    tmp_path = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        failing_save_after(mp, good_saves, code)
        trainer, recorder, failures = recorded_trainer(tmp_path, timemachine_corpus,
                                                       autosave_every=1)
        snap = trainer.run()
        recorder.close()
    assert failures and os.strerror(code) in failures[0]
    assert snap.epoch == good_saves + 1  # stopped at the boundary after the failed save
    if good_saves:
        assert recorder.saved_epoch == good_saves
        assert load_checkpoint(tmp_path / "run" / "checkpoint.pt").epoch == good_saves
        assert failures[0].endswith(f"holds epoch {good_saves}")
    else:
        assert not (tmp_path / "run" / "checkpoint.pt").exists()
        assert failures[0].endswith("no checkpoint of this run was saved")
    records = read_metrics(tmp_path / "run")
    assert records[-1]["type"] == "end" and records[-1]["epoch"] == good_saves + 1
