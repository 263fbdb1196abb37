"""The book's full run (d2l 8.5: 500 epochs, sequential) with each implementation.

    python bench/book_run.py [--epochs 500] [--iterator sequential] [--device cpu]
                             [--threads 2] [--corpus PATH]

Trains with the real Trainer, the book's loop first and then the fast path, and prints the wall
time, the final perplexity and the two continuations the book shows ('time traveller',
'traveller'), then the ratio of the wall times. The two runs end at different perplexities
after many epochs even though their steps agree to 1e-6: at lr 1 training is chaotic (see
docs/performance.md, "Equality"); compare them across seeds, not digit by digit.
"""

from __future__ import annotations

import argparse
import time

from common import add_machine_args, open_corpus  # first: it puts the checkout on the path

from engine.config import TrainConfig  # noqa: E402
from engine.trainer import Trainer  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--iterator", choices=["sequential", "random"], default="sequential")
    add_machine_args(parser)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    corpus = open_corpus(args.corpus)
    wall = {}
    for impl in ("book", "fast"):
        config = TrainConfig(impl=impl, epochs=args.epochs, iterator=args.iterator,
                             device=args.device, threads=args.threads, seed=args.seed)
        trainer = Trainer(config, corpus=corpus)
        start = time.perf_counter()
        snap = trainer.run()
        wall[impl] = time.perf_counter() - start
        info = trainer.info
        print(f"{impl}: {info.impl} on {info.device}, corpus {info.corpus}")
        if snap.message:
            print(f"  {snap.state.value}: {snap.message}")
        ppl = f"{snap.perplexity:.2f}" if snap.perplexity is not None else "none"
        print(f"  wall time {wall[impl]:.1f} s, {snap.epoch} epochs, final perplexity {ppl}, "
              f"last epoch {snap.tokens_per_sec:,.0f} tokens/s")
        latest = [s for s in snap.samples if s.epoch == snap.epoch] or list(snap.samples)
        for sample in sorted(latest, key=lambda s: config.prefixes.index(s.prefix)):
            print(f"  {sample.prefix}{sample.text}")
    print(f"wall-time ratio book/fast: {wall['book'] / wall['fast']:.2f}")


if __name__ == "__main__":
    main()
