"""No tracebacks: whatever a user can cause ends in one line and a non-zero exit status.

Most cases run the real command in a subprocess (`python -m tui`), so what is asserted is
exactly what a terminal would show: stderr holds one line, never "Traceback".
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.errors
from engine.checkpoint import CheckpointError
from engine.config import ConfigError
from engine.corpus import CorpusError
from engine.data import DataError
from engine.devices import DeviceError
from engine.errors import RnnTuiError
from engine.rundir import RunDirError
from engine.sampling import SamplingError
from engine.settings import SettingsError, parse_settings
from tui.cli import main

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--hidden", "32", "--max-tokens", "3000", "--batch-size", "8", "--num-steps", "10",
         "--threads", "1", "--impl", "book"]


def rnn_tui(*args: str, timeout: float = 120, env: dict | None = None, **kw):
    """The command as a user runs it, from this checkout."""
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})}, **kw)


def one_line_error(proc, status: int, message: str) -> None:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_every_user_error_is_one_family():
    for cls in (CheckpointError, ConfigError, CorpusError, DataError, DeviceError, RunDirError,
                SamplingError, SettingsError):
        assert issubclass(cls, RnnTuiError) and issubclass(cls, ValueError)
    assert engine.errors.RnnTuiError is RnnTuiError


def test_a_corpus_changed_since_its_checkpoint(tmp_path, timemachine_path):
    corpus = tmp_path / "book.txt"
    corpus.write_bytes(timemachine_path.read_bytes())
    first = rnn_tui("train", "--headless", *SMALL, "--epochs", "1", "--corpus", str(corpus),
                    "--run-dir", str(tmp_path / "run"))
    assert first.returncode == 0, first.stderr
    with open(corpus, "a") as f:
        f.write("one more line\n")
    again = rnn_tui("train", "--headless", "--resume", str(tmp_path / "run" / "checkpoint.pt"),
                    "--epochs", "2")
    one_line_error(again, 2, "was trained on corpus 'book.txt' (SHA-1 ")
    assert "not on this one (SHA-1 " in again.stderr


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
def test_a_deeply_nested_settings_file(tmp_path, depth):
    cfg = tmp_path / "deep.toml"
    cfg.write_text("hidden = " + "[" * depth + "]" * depth + "\n")
    proc = rnn_tui("--config", str(cfg), "--print-config")
    one_line_error(proc, 2, "deep.toml:")


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(1, 3000), opener=st.sampled_from(["[", "{a = "]),
       closer_missing=st.booleans())
def test_nested_toml_of_any_depth_is_a_settings_error(depth, opener, closer_missing):
    close = "]" if opener == "[" else "}"
    text = "x = " + opener * depth + ("" if closer_missing else "1" + close * depth) + "\n"
    with pytest.raises(SettingsError):  # never RecursionError, whatever the depth
        parse_settings(text, "n.toml")


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("flag", ["--corpus", "--config"])
def test_a_fifo_is_refused_not_waited_on(tmp_path, fifo, flag):
    args = ["train", "--headless", *SMALL, "--epochs", "1", flag, str(fifo)]
    start = time.monotonic()
    proc = rnn_tui(*args, timeout=60)
    assert time.monotonic() - start < 60
    what = "corpus file " if flag == "--corpus" else ""
    one_line_error(proc, 2, f"{what}{str(fifo)!r}" if what else f"{fifo}: ")
    assert "is a FIFO (named pipe), not a regular file" in proc.stderr


@pytest.mark.parametrize("flag", ["--corpus", "--config"])
def test_a_device_is_refused_not_read_forever(flag):
    proc = rnn_tui("train", "--headless", *SMALL, "--epochs", "1", flag, "/dev/zero", timeout=60)
    one_line_error(proc, 2, "/dev/zero")
    assert "is a character device, not a regular file" in proc.stderr


def test_files_over_the_size_limits_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:  # sparse: takes no disk space
        f.truncate((1 << 30) + 1)
    proc = rnn_tui("train", "--headless", *SMALL, "--epochs", "1", "--corpus", str(big))
    one_line_error(proc, 2, f"corpus file {str(big)!r} is 1 GiB, more than the limit of 1 GiB")
    cfg = tmp_path / "big.toml"
    cfg.write_text("# comment\n" * 200_000)
    proc = rnn_tui("--config", str(cfg), "--print-config")
    one_line_error(proc, 2, "is 1.91 MiB, more than the limit of 1 MiB")


def test_a_file_that_grows_past_the_limit_is_not_read_past_it(tmp_path, monkeypatch):
    """A /proc file says size 0 and then has content; reading stops at the limit."""
    from engine.files import NotReadable, read_regular_file
    path = tmp_path / "f.txt"
    path.write_text("x" * 100)
    with pytest.raises(NotReadable, match="more than the limit of 50 bytes"):
        read_regular_file(path, 50)
    assert read_regular_file(Path("/proc/self/status"), 1 << 20).startswith(b"Name:")


SLOW_CORPUS = """
import sys, time
import engine.corpus
real = engine.corpus.read_regular_file
def slow(*a, **k):
    print("reading", file=sys.stderr, flush=True)
    time.sleep(30)
    return real(*a, **k)
engine.corpus.read_regular_file = slow
from tui.__main__ import main
sys.exit(main())
"""


def interrupt_when(proc, marker: str, timeout: float = 90) -> str:
    """Wait for a line on stderr, then send SIGINT as ctrl+c would; return what was read."""
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
    assert marker in seen, seen
    proc.send_signal(signal.SIGINT)
    return seen


def test_ctrl_c_while_a_corpus_is_read(tmp_path, timemachine_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CORPUS, "train", "--headless", *SMALL,
         "--corpus", str(timemachine_path), "--run-dir", str(tmp_path / "run")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    interrupt_when(proc, "reading")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "rnn-tui: interrupted" and "Traceback" not in err
    lock = tmp_path / "run" / ".lock"
    assert not lock.exists() or lock.read_text() == ""  # let go


def test_ctrl_c_while_the_program_starts():
    """SIGINT at random moments of start-up, from the imports on: one line, status 130."""
    for delay in (0.3, 0.8, 1.5):
        proc = subprocess.Popen([sys.executable, "-m", "tui", "train", "--headless", *SMALL,
                                 "--epochs", "100000"], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, (delay, err)
        # Early, it is the one line; once training runs, ctrl+c stops and saves (status 0).
        # On a loaded machine the signal may come before Python has set up its handler: then
        # the process ends as any program does on ctrl+c (killed by SIGINT), with at most the
        # one line.
        assert (proc.returncode == 130 and err.strip() == "rnn-tui: interrupted") or (
            proc.returncode == 0 and "SIGINT: stopping" in err) or (
            proc.returncode == -signal.SIGINT
            and err.strip() in ("", "rnn-tui: interrupted")), (delay, proc.returncode, err)


SLOW_SAVE = """
import sys, time
import engine.recorder
real = engine.recorder.save_checkpoint
def slow(path, ckpt):
    if ckpt.epoch >= 3:
        print(f"saving epoch {ckpt.epoch}", file=sys.stderr, flush=True)
        time.sleep(60)
    return real(path, ckpt)
engine.recorder.save_checkpoint = slow
from tui.__main__ import main
sys.exit(main())
"""


def test_a_second_ctrl_c_during_the_save_on_stop(tmp_path, timemachine_path):
    from engine.checkpoint import load_checkpoint
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, "train", "--headless", *SMALL, "--epochs", "100000",
         "--autosave-every", "1", "--corpus", str(timemachine_path), "--run-dir", str(run)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = interrupt_when(proc, "saving epoch 3")      # the third autosave hangs: stop...
    seen += interrupt_when(proc, "SIGINT: stopping")   # ...and a second ctrl+c during it
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in seen + err
    lines = err.strip().splitlines()
    assert lines[-1] == (f"rnn-tui: interrupted again: quitting without saving; the last "
                         f"checkpoint saved, {str(run / 'checkpoint.pt')!r}, holds epoch 2")
    assert load_checkpoint(run / "checkpoint.pt").epoch == 2  # intact


def test_a_data_directory_that_is_a_file(tmp_path, timemachine_path):
    data = tmp_path / "data"
    data.write_text("a file")
    runs = data / "rnn-tui" / "runs"
    for command in (["train", "--headless"], []):  # headless, and the app before it opens
        proc = rnn_tui(*command, *SMALL, "--corpus", str(timemachine_path),
                       env={"XDG_DATA_HOME": str(data)})
        one_line_error(proc, 2, f"rnn-tui: error: cannot create runs folder {str(runs)!r}: "
                                f"{str(data)!r} is a file, not a directory (it is under "
                                f"$XDG_DATA_HOME, {str(data)!r})")


def test_a_read_only_data_directory(tmp_path, monkeypatch, capsys, timemachine_path):
    """As root, permissions do not stop a write, so the file system's answer is simulated."""
    import engine.rundir

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(engine.rundir.tempfile, "mkstemp", read_only)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert main(["train", "--headless", *SMALL, "--corpus", str(timemachine_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"rnn-tui: error: runs folder {str(tmp_path / 'share' / 'rnn-tui' / 'runs')!r} cannot "
        f"be written: Read-only file system (it is under $XDG_DATA_HOME, "
        f"{str(tmp_path / 'share')!r})")
    assert "epoch" not in captured.out


def test_a_closed_pipe_on_stdout_is_not_a_traceback():
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--print-config"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `rnn-tui --print-config | head -0` would
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGPIPE and err == ""


def test_a_closed_terminal_after_sighup(tmp_path, timemachine_path):
    """The app in a terminal that goes away (an SSH session that drops): SIGHUP saves the
    run, and the final line, which now has no terminal to go to, is no traceback."""
    import fcntl
    import pty
    import struct
    import termios
    from engine.checkpoint import load_checkpoint
    from engine.runlog import read_metrics

    run = tmp_path / "run"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", *SMALL, "--epochs", "100000", "--corpus",
         str(timemachine_path), "--run-dir", str(run), "--autosave-every", "100000"],
        cwd=REPO, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color"},
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                os.read(master, 1 << 16)  # a terminal reads what the app draws
            except OSError:
                break
            if (run / "metrics.jsonl").exists() and any(
                    r["type"] == "epoch" and r["epoch"] >= 2 for r in read_metrics(run)):
                break
        os.close(master)  # the terminal goes: the kernel sends SIGHUP, and writes fail
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status == 128 + signal.SIGHUP  # not 1, an uncaught exception's status
    assert load_checkpoint(run / "checkpoint.pt").epoch >= 2
    logs = Path(os.environ["XDG_STATE_HOME"]) / "rnn-tui" / "log"
    assert not logs.exists() or not list(logs.iterdir())


def test_an_internal_error_is_a_short_message_and_a_log(monkeypatch, capsys):
    import tui.cli

    def bug(argv):
        return {}["no such key"]

    monkeypatch.setattr(tui.cli, "run_command", bug)
    assert main([]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnn-tui: internal error (KeyError: 'no such key'); this is a bug in "
                          "rnn-tui, please report it: the traceback is in ")
    assert len(err.splitlines()) == 1
    log = Path(err.rsplit("the traceback is in ", 1)[1])
    assert log.parent == Path(os.environ["XDG_STATE_HOME"]) / "rnn-tui" / "log"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in bug" in text and "KeyError" in text


def test_a_user_error_anywhere_is_one_line_and_status_2(monkeypatch, capsys):
    import tui.cli

    def refuse(argv):
        raise DeviceError("device 'cuda' is not available here; available: cpu")

    monkeypatch.setattr(tui.cli, "run_command", refuse)
    assert main([]) == 2
    assert capsys.readouterr().err == (
        "rnn-tui: error: device 'cuda' is not available here; available: cpu\n")
