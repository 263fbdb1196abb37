"""`rnn-tui compare RUN...`: runs side by side as a table, and their curves as an image.

The table shows the settings that differ between the runs, best and last perplexity
(training and validation), tokens/s, state and date. Run names and settings are untrusted
text: every cell is a rich Text, never markup.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.runs import RunError, RunSummary, differing_settings, read_run

from .plot_file import X_AXES, PlotError, write_plot


def add_compare_parser(sub) -> None:
    compare = sub.add_parser(
        "compare", help="compare runs: a table, and their perplexity curves as an image",
        description="Compare runs (run directories or their metrics.jsonl): the settings that "
                    "differ, best and last perplexity (training and validation), tokens/s, "
                    "state and date; --out writes the curves (training solid, validation "
                    "dashed) as an SVG or PNG.")
    compare.add_argument("runs", nargs="+", metavar="RUN",
                         help="a run directory or its metrics.jsonl")
    compare.add_argument("--out", metavar="PLOT", help="write the curves to PLOT (.svg or .png)")
    scale = compare.add_mutually_exclusive_group()
    scale.add_argument("--log", dest="log", action="store_true", default=True,
                       help="log-scale perplexity axis (the default)")
    scale.add_argument("--linear", dest="log", action="store_false",
                       help="linear perplexity axis")
    compare.add_argument("--x", choices=X_AXES, default="epochs",
                         help="x axis: epochs or training seconds (default: epochs)")


def show(value: Any) -> str:
    """A setting's value as one short line."""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if isinstance(value, (int, str)) else json.dumps(value)


def ppl(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 100 else f"{value:.4g}"


def table(runs: Sequence[RunSummary]) -> Table:
    differ = differing_settings(runs) if len(runs) > 1 else []
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    t.add_column("run", overflow="fold")
    for key in differ:
        t.add_column(Text(key), style="yellow")
    any_val = any(r.has_val for r in runs)
    for title in ("epoch", "best", "last") + (("best val", "last val") if any_val else ()):
        t.add_column(title, justify="right")
    for title in ("tokens/s", "state", "date"):
        t.add_column(title, justify="right" if title == "tokens/s" else "left")
    for r in runs:
        cells = [Text(r.name)] + [Text(show(r.settings.get(k, "-"))) for k in differ]
        cells += [Text(f"{r.epoch}/{r.epochs}"), Text(ppl(r.best_train)), Text(ppl(r.last_train))]
        if any_val:
            cells += [Text(ppl(r.best_val)), Text(ppl(r.last_val))]
        speed = "-" if r.tokens_per_sec is None else f"{r.tokens_per_sec:,.0f}"
        cells += [Text(speed), Text(r.state), Text(r.date[:19].replace("T", " "))]
        t.add_row(*cells)
    return t


def run_compare(args: argparse.Namespace, console: Console | None = None) -> int:
    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:  # into a file or a pipe: whole rows, not folded to 80
            console.width = 240
    err = Console(stderr=True, highlight=False)
    runs = []
    for path in args.runs:
        try:
            runs.append(read_run(path))
        except RunError as e:
            err.print(Text(f"rnn-tui compare: error: {e}"), soft_wrap=True)
            return 2
    console.print(table(runs))
    if len(runs) > 1 and not differing_settings(runs):
        console.print("(the runs have the same settings)")
    if args.out:
        try:
            written = write_plot(runs, args.out, x=args.x, log=args.log)
        except PlotError as e:
            err.print(Text(f"rnn-tui compare: error: {e}"), soft_wrap=True)
            return 2
        console.print(Text(f"plot {written}"), soft_wrap=True)
    return 0
