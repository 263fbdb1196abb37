"""The book's comparisons, measured here: each switch of the experiments, a fixed budget of
epochs, two seeds, on The Time Machine (d2l 8.5, 9.1-9.3 and the chapter's exercises).

    python bench/experiments.py [--epochs 100] [--seeds 0 1] [--only rnn,gru] [--threads 2]

Prints one Markdown row per experiment: final perplexity for each seed, their mean, the
median tokens/s over the run's epochs and the wall time; the README's table is this output.
Every run is the real Trainer with the fast path, the book's settings except the one changed.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import add_machine_args, open_corpus  # first: it puts the checkout on the path

from engine.config import TrainConfig  # noqa: E402
from engine.events import EpochDone  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

# name -> the settings that differ from the book's
EXPERIMENTS: dict[str, dict] = {
    "rnn": {},
    "gru": {"cell": "gru"},
    "lstm": {"cell": "lstm"},
    "lstm-2-layers": {"cell": "lstm", "num_layers": 2},
    "rnn-embedding": {"input": "embedding"},
    "rnn-no-clip": {"clip": 0.0},
    "rnn-relu": {"activation": "relu", "lr": 0.1},
    "rnn-adam": {"optimizer": "adam", "lr": 0.01},
}


def run(corpus, settings: dict, seed: int, args) -> tuple[float, float, float, str]:
    speeds: list[float] = []
    config = TrainConfig(epochs=args.epochs, seed=seed, device=args.device, threads=args.threads,
                         sample_every=args.epochs, **settings)
    trainer = Trainer(config, corpus=corpus)
    trainer.add_listener(lambda e: speeds.append(e.tokens_per_sec)
                         if isinstance(e, EpochDone) else None)
    start = time.perf_counter()
    snap = trainer.run()
    wall = time.perf_counter() - start
    ppl = snap.perplexity if snap.perplexity is not None else float("nan")
    state = snap.state.value if snap.state.value != "finished" else ""
    return ppl, statistics.median(speeds) if speeds else 0.0, wall, state


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", default="", help="comma-separated experiment names")
    add_machine_args(parser)
    args = parser.parse_args(argv)
    chosen = [n for n in EXPERIMENTS if not args.only or n in args.only.split(",")]
    corpus = open_corpus(args.corpus)
    seeds = " | ".join(f"seed {s}" for s in args.seeds)
    print(f"| experiment | settings | {seeds} | mean | tokens/s | wall |")
    print("|" + " --- |" * (5 + len(args.seeds)))
    for name in chosen:
        settings = EXPERIMENTS[name]
        results = [run(corpus, settings, seed, args) for seed in args.seeds]
        ppls = " | ".join(f"{p:.2f}{' (' + s + ')' if s else ''}" for p, _, _, s in results)
        mean = statistics.mean(p for p, *_ in results)
        speed = statistics.median(r[1] for r in results)
        wall = statistics.mean(r[2] for r in results)
        shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "the book's"
        print(f"| {name} | {shown} | {ppls} | {mean:.2f} | {speed:,.0f} | {wall:.0f} s |",
              flush=True)


if __name__ == "__main__":
    main()
