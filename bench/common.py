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

from engine.corpus import Corpus, load_file, load_text  # noqa: E402

# The book's file beside the checkout (where the project's machines keep it): no download.
SHARED_TIMEMACHINE = REPO.parent / "shared" / "data" / "timemachine.txt"


def open_corpus(name: str = "timemachine") -> Corpus:
    """A corpus by name or path, as the app takes it; prints the notice of a fallback."""
    if name == "timemachine" and SHARED_TIMEMACHINE.is_file():
        return load_file(SHARED_TIMEMACHINE)
    path = Path(name)
    corpus = load_file(path) if path.is_file() else load_text(name)
    if corpus.notice:
        print(f"note: {corpus.notice}")
    return corpus


def add_machine_args(parser: argparse.ArgumentParser, threads: int = 2) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    parser.add_argument("--threads", type=int, default=threads,
                        help="torch threads (0: all cores)")
    parser.add_argument("--corpus", default="timemachine",
                        help="'timemachine' (beside the checkout, cached or downloaded; else "
                             "pydoc), 'pydoc', or a path")
