"""What the benchmarks share: the checkout on the import path, the corpus, the machine flags.

Run them from a checkout (`python bench/NAME.py`): they import the engine and the app from
it, installed or not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.corpus import Corpus, load_text  # noqa: E402


def open_corpus(name: str = "timemachine") -> Corpus:
    """A corpus by name ('timemachine' ships in the package) or path, as the app takes it."""
    return load_text(name)


def add_machine_args(parser: argparse.ArgumentParser, threads: int = 2) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    parser.add_argument("--threads", type=int, default=threads,
                        help="torch threads (0: all cores)")
    parser.add_argument("--corpus", default="timemachine",
                        help="'timemachine' (the book's, in the package), 'pydoc', or a path")
