"""`rnn-tui watch RUN`: the app's panels on a run that trains elsewhere, read-only.

A headless run over SSH writes its metrics.jsonl as it goes; this follows that file (a copy
kept in sync, a shared disk, or the machine itself) and shows it as the app shows a run of
its own, with nothing that could steer it.
"""

from __future__ import annotations

import argparse
import sys

from engine.runlog import read_metrics
from engine.runs import RunError, metrics_path
from engine.watch import LogFollower, config_of


def add_watch_parser(sub) -> None:
    watch = sub.add_parser(
        "watch", help="follow a run that trains elsewhere, read-only, in the app's panels",
        description="Follow a run (its directory or metrics.jsonl) as its log grows, in the "
                    "app's panels, read-only: for a headless run on another machine or in "
                    "another terminal.")
    watch.add_argument("run", metavar="RUN", help="a run directory or its metrics.jsonl")


def check_run(path: str) -> None:
    """Raise RunError unless `path` is a metrics.jsonl or a directory that has one (it may
    still be empty: a run that has just begun)."""
    p = metrics_path(path)
    if not p.is_file():
        raise RunError(f"{path}: no run there (no metrics.jsonl)")


def run_watch(args: argparse.Namespace) -> int:
    from .app import RnnTuiApp
    from .bindings import keymap_from_env
    try:
        check_run(args.run)
        records = read_metrics(args.run)
        keymap = keymap_from_env()
    except (RunError, OSError, ValueError) as e:
        print(f"rnn-tui watch: error: {e}", file=sys.stderr)
        return 2
    follower = LogFollower(args.run)
    app = RnnTuiApp(config_of(records), trainer_factory=lambda *a, **k: follower, record=False)
    app.set_keymap(keymap)
    app.run()
    return app.return_code if app.return_code is not None else 1
