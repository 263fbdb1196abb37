"""End to end: the real `rnn-tui` command in a real terminal (tmux), read off the screen.

It starts, shows epochs advancing, pauses, answers a typed prefix, takes an edited learning
rate, and quits with status 0; it forks a run, overlays the two runs' curves and opens the
surprise view. Skipped where tmux is not installed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
REPO = Path(__file__).resolve().parents[1]
EPOCH = re.compile(r"epoch (\d+)/(\d+)")


def rnn_tui_command() -> list[str]:
    """This checkout's rnn-tui, not whatever the environment has installed: `python -m tui`
    from the repository root puts the checkout first on sys.path."""
    return [sys.executable, "-m", "tui"]


class Terminal:
    def __init__(self, command: list[str], env: dict[str, str], size=(100, 30)) -> None:
        self.socket = f"rnn-tui-test-{uuid.uuid4().hex[:8]}"
        self.session = "app"
        # A clean environment: under pytest, COLUMNS=80 and LINES=24 are set, and Textual
        # would believe them over the terminal.
        base = {k: os.environ[k] for k in ("HOME", "PATH", "LANG") if k in os.environ}
        env_args = " ".join(f"{k}={shlex.quote(v)}" for k, v in {**base, **env}.items())
        # The shell reports the exit status, then waits so that the screen can be read.
        shell = (f"cd {shlex.quote(str(REPO))} && env -i {env_args} {shlex.join(command)}; "
                 f"echo EXIT=$?; sleep 120")
        self.tmux("new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y", str(size[1]),
                  shell)

    def tmux(self, *args: str) -> str:
        out = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True,
                             timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {out.stderr}")
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def styled_screen(self) -> str:
        """The screen with its colours, as SGR escape sequences."""
        return self.tmux("capture-pane", "-p", "-e", "-t", self.session)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def wait_for(self, condition, timeout: float = 60.0, what: str = "the screen",
                 styled: bool = False) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.styled_screen() if styled else self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                size = self.tmux("display", "-p", "-t", self.session,
                                 "#{window_width}x#{window_height}").strip()
                raise AssertionError(f"timed out waiting for {what}; the screen ({size}):\n{screen}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


def epoch(screen: str) -> int:
    match = EPOCH.search(screen)
    return int(match.group(1)) if match else -1


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_the_app_trains_pauses_answers_and_quits(tmp_path, size):
    env = {"XDG_DATA_HOME": str(tmp_path / "share"), "TERM": "xterm-256color"}
    command = rnn_tui_command() + ["--hidden", "64", "--epochs", "100000", "--max-tokens", "5000",
                                   "--threads", "1", "--corpus", "timemachine"]
    term = Terminal(command, env, size)
    try:
        screen = term.wait_for(lambda s: "training" in s and epoch(s) >= 1 and "^p palette" in s,
                               timeout=90, what="training to start")
        rows = screen.splitlines()
        assert max(len(row) for row in rows) == size[0] and len(rows) == size[1]
        assert rows[-1].rstrip().endswith("^p palette") and "q Quit" in rows[-1]
        assert "timemachine" in screen and "vocab 28" in screen
        first = epoch(screen)
        term.wait_for(lambda s: epoch(s) > first + 1, what="epochs advancing")

        term.keys("Space")
        screen = term.wait_for(lambda s: "● paused" in s, what="the paused state")
        paused_at = epoch(screen)
        time.sleep(1.0)
        assert epoch(term.screen()) == paused_at

        # g and the prefix in one write, as a fast typist or a paste delivers them: the
        # prefix must land in the prompt, not run the app's keys (e edits, space resumes).
        term.keys("gtime traveller", literal=True)
        # The prompt's subtitle names the epoch and the mode once an answer is shown.
        screen = term.wait_for(lambda s: f"epoch {paused_at} · greedy" in s,
                               what="a continuation of the prefix")
        line = next(row for row in screen.splitlines() if "time traveller" in row and "│" in row
                    and "type a prefix" not in row)
        assert line.count("time traveller") >= 1
        assert epoch(screen) == paused_at  # typing went to the prompt, not to the keys

        # A terminal cannot tell escape-then-q from alt+q when they come together: wait for the
        # footer to show the app's keys again, as a person would see it.
        term.keys("Escape")
        term.wait_for(lambda s: "q Quit" in s, what="the app's keys after escape")

        # Editing keys in one write apply in the order typed: home and ctrl+k clear the field
        # before 0.5 is typed, then enter applies it.
        term.keys("e")
        term.wait_for(lambda s: "esc Leave input" in s, what="the learning rate field")
        term.keys("C-a", "C-k", "0.5", "Enter")
        term.wait_for(lambda s: "learning rate: 1 → 0.5" in s, what="the new learning rate")
        term.keys("Escape")
        term.wait_for(lambda s: "q Quit" in s, what="the app's keys after escape")
        term.keys("q")
        screen = term.wait_for(lambda s: "EXIT=" in s, timeout=60, what="the app to exit")
        assert "EXIT=0" in screen
        runs = list((tmp_path / "share" / "rnn-tui" / "runs").glob("*/checkpoint.pt"))
        assert len(runs) == 1  # the stopped run was saved
    finally:
        term.close()


@pytest.mark.parametrize("sig", ["TERM", "HUP"])
def test_a_signal_saves_and_exits(tmp_path, sig):
    """SIGTERM, or SIGHUP when an SSH connection drops: the run is checkpointed, no traceback."""
    env = {"XDG_DATA_HOME": str(tmp_path / "share"), "TERM": "xterm-256color"}
    command = rnn_tui_command() + ["--hidden", "32", "--epochs", "100000", "--max-tokens", "3000",
                                   "--threads", "1", "--autosave-every", "100000",
                                   "--run-dir", str(tmp_path / "run")]
    term = Terminal(command, env, (100, 30))
    try:
        term.wait_for(lambda s: epoch(s) >= 3, timeout=90, what="a few epochs")
        pid = term.tmux("display", "-p", "-t", term.session, "#{pane_pid}").strip()
        # The pane runs a shell, whose child is the app.
        child = subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True).stdout.split()
        assert child, "the app's process was not found"
        subprocess.run(["kill", f"-{sig}", child[0]], check=True)
        screen = term.wait_for(lambda s: "EXIT=" in s, timeout=60, what="the app to exit")
        assert "Traceback" not in screen
        from engine.checkpoint import load_checkpoint
        assert load_checkpoint(tmp_path / "run" / "checkpoint.pt").epoch >= 3
    finally:
        term.close()


SGR = re.compile(r"\x1b\[([0-9;:]*)m")
BLOCKS = set("▖▗▘▙▚▛▜▝▞▟▀▄▌▐█━")


def coloured_cells(line: str) -> list[tuple[str, str, str]]:
    """(character, foreground, background) for each character of a line captured with -e;
    a colour as its SGR parameters ("38;5;12", "31"), or "" for the default."""
    cells, fg, bg, at = [], "", "", 0
    for match in [*SGR.finditer(line), None]:
        end = match.start() if match else len(line)
        cells += [(ch, fg, bg) for ch in line[at:end]]
        if match is None:
            break
        at = match.end()
        params = match.group(1).replace(":", ";").split(";") if match.group(1) else ["0"]
        i = 0
        while i < len(params):
            p = params[i]
            if p == "0":
                fg = bg = ""
            elif p == "39":
                fg = ""
            elif p == "49":
                bg = ""
            elif p in ("38", "48") and i + 1 < len(params):
                n = 3 if params[i + 1] == "5" else 5
                if p == "38":
                    fg = ";".join(params[i:i + n])
                else:
                    bg = ";".join(params[i:i + n])
                i += n - 1
            elif p.isdigit() and (30 <= int(p) <= 37 or 90 <= int(p) <= 97):
                fg = p
            elif p.isdigit() and (40 <= int(p) <= 47 or 100 <= int(p) <= 107):
                bg = p
            i += 1
    return cells


def test_fork_overlay_and_surprise(tmp_path):
    """A person's way through the comparison: train, pause, change the hidden size in the
    panel, fork from epoch 0, let the fork train, mark both runs in the browser, overlay their
    curves (two colours, a legend naming both runs), then read a text's surprise."""
    from tui.widgets.hyperparam_form import LIVE, RESTART
    assert RESTART[0].name == "num_hiddens"  # the first field after the live ones
    share = tmp_path / "share"
    env = {"XDG_DATA_HOME": str(share), "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    command = rnn_tui_command() + ["--hidden", "32", "--epochs", "100000", "--max-tokens", "3000",
                                   "--threads", "1", "--corpus", "timemachine"]
    term = Terminal(command, env, (80, 24))
    try:
        term.wait_for(lambda s: "training" in s and epoch(s) >= 20 and "q Quit" in s,
                      timeout=90, what="training to start")
        # Paused, so that the fork can catch up: two curves of about the same length.
        term.keys("Space")
        parent_epochs = epoch(term.wait_for(lambda s: "● paused" in s, what="the pause"))
        # e goes to the learning rate; tab past the live fields to the hidden size.
        term.keys("e")
        term.wait_for(lambda s: "esc Leave input" in s, what="the hyperparameter panel")
        # The tabs and the new value in one write, as a fast typist or tmux delivers them:
        # the value must land in the field the tabs reach (the hidden size), not the one before.
        # A model too small to learn much: its curve stays well above the parent's.
        term.keys(*["Tab"] * len(LIVE), "C-a", "C-k", "4")
        term.wait_for(lambda s: re.search(r"hidden size +4 ", s), what="hidden size 4 typed")
        term.keys("Escape")
        term.wait_for(lambda s: "q Quit" in s, what="the app's keys after escape")
        term.keys("f")
        term.wait_for(lambda s: "Fork this run?" in s and "hidden size: 32 → 4" in s,
                      what="the fork dialog with the change")
        term.keys("0")  # from epoch 0, the same seed
        runs_dir = share / "rnn-tui" / "runs"

        def fork_epochs() -> int:
            logs = list(runs_dir.glob("*-h4-*/metrics.jsonl"))
            return logs[0].read_text().count('"type": "epoch"') if logs else 0

        term.wait_for(lambda s: fork_epochs() >= parent_epochs and epoch(s) >= 3
                      and "● training" in s and "Fork this run?" not in s,
                      what="the fork training as long as its parent")
        runs = sorted(p.name for p in runs_dir.iterdir())
        assert len(runs) == 2 and {"-h32-" in r for r in runs} == {True, False}

        term.keys("b")
        term.wait_for(lambda s: "2 of 2 runs" in s and all(r in s for r in runs),
                      what="both runs in the browser")
        term.keys("Space")
        term.wait_for(lambda s: "1 marked" in s, what="the first run marked")
        term.keys("Down")
        term.keys("Space")
        term.wait_for(lambda s: "2 marked" in s, what="both runs marked")
        term.keys("v")
        screen = term.wait_for(lambda s: "2 run(s)" in s and "perplexity (log)" in s
                               and all(r in s for r in runs), what="the overlay")
        # The legend: a line per run, its number, its colour's mark and its name.
        styled = term.styled_screen().splitlines()
        legend = {}
        for line in styled:
            cells = coloured_cells(line)
            text = "".join(ch for ch, _, _ in cells)
            for name in runs:
                if name in text and "━━" in text:
                    legend[name] = next(fg for ch, fg, _ in cells if ch == "━")
        assert set(legend) == set(runs) and len(set(legend.values())) == 2, legend
        # The plot: between its frame's top and bottom, curve cells in both legend colours.
        rows = screen.splitlines()
        top = next(i for i, r in enumerate(rows) if "┌" in r)
        bottom = next(i for i, r in enumerate(rows) if "└" in r)
        drawn = {fg for line in styled[top + 1:bottom] for ch, fg, _ in coloured_cells(line)
                 if ch in BLOCKS and fg}
        assert set(legend.values()) <= drawn, (legend, drawn)

        term.keys("Escape")
        term.wait_for(lambda s: "2 marked" in s and "2 run(s)" not in s, what="the browser")
        term.keys("Escape")
        term.wait_for(lambda s: "q Quit" in s and "2 marked" not in s, what="the main screen")
        term.keys("i")
        screen = term.wait_for(
            lambda s: re.search(r"perplexity \d+\.\d{3} on [\d,]+ characters of the training", s),
            what="the surprise view's perplexity")
        assert "Surprise" in screen and "Traceback" not in screen
        term.keys("Escape")
        term.wait_for(lambda s: "q Quit" in s and "Surprise" not in s, what="the main screen")
        term.keys("q")
        screen = term.wait_for(lambda s: "EXIT=" in s, timeout=60, what="the app to exit")
        assert "EXIT=0" in screen
    finally:
        term.close()
