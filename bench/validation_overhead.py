"""What held-out perplexity costs: the validation pass against the epoch it follows.

    python bench/validation_overhead.py [--epochs 10] [--rounds 3] [--val-fraction 0.1]
                                        [--impl fast] [--device cpu] [--threads 2]

The book's setting (hidden 512, batch 32 x 35, the first 10,000 tokens), sequential. In each
round, one run with --val-fraction F and one without, side by side; for the run with F it
times each epoch's validation pass (the trainer counts it in the run's seconds but not in
tokens/s) and prints it as a share of the epoch's training time, then the throughput of both
runs counting every second spent (training and validation). Prints medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import add_machine_args, open_corpus  # first: it puts the checkout on the path

from engine.config import TrainConfig  # noqa: E402
from engine.trainer import EpochDone, Trainer  # noqa: E402


def run(config: TrainConfig, corpus) -> tuple[float, float, int]:
    """(training seconds, validation seconds, training tokens) over the run's epochs, the
    first epoch (warm-up) left out."""
    epochs: list[EpochDone] = []
    trainer = Trainer(config, corpus=corpus, on_event=lambda e: isinstance(e, EpochDone)
                      and epochs.append(e))
    trainer.run()
    tokens_per_epoch = trainer.loader.batch_size * trainer.loader.num_steps * len(trainer.loader)
    train_s = sum(tokens_per_epoch / e.tokens_per_sec for e in epochs[1:])
    total_s = epochs[-1].elapsed - epochs[0].elapsed
    return train_s, total_s - train_s, tokens_per_epoch * (len(epochs) - 1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--impl", default="fast")
    add_machine_args(parser)
    args = parser.parse_args(argv)
    corpus = open_corpus(args.corpus)
    base = TrainConfig(epochs=args.epochs, impl=args.impl, device=args.device,
                       threads=args.threads, sample_every=10_000)
    shares, ratios = [], []
    for r in range(args.rounds):
        t0, v0, n0 = run(base, corpus)
        t1, v1, n1 = run(base.replace(val_fraction=args.val_fraction), corpus)
        share = v1 / t1
        plain, held = n0 / (t0 + v0), n1 / (t1 + v1)
        shares.append(share)
        ratios.append(held / plain)
        print(f"round {r + 1}: validation {1000 * v1 / (args.epochs - 1):.1f} ms/epoch = "
              f"{100 * share:.1f}% of training {1000 * t1 / (args.epochs - 1):.0f} ms/epoch; "
              f"tokens/s counting validation {held:,.0f} vs {plain:,.0f} without "
              f"({held / plain:.3f})")
    print(f"median: validation costs {100 * statistics.median(shares):.1f}% of an epoch's "
          f"training; throughput with/without {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
