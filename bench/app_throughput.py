"""Training throughput inside the app vs the headless trainer, on the same settings.

The same Trainer runs (a) alone in a thread, as `rnn-tui train --headless` would, and (b)
inside the app (headless Textual driver, 120x36, panels updating ~10 times a second).
Rounds alternate a/b so that the machine's noise hits both; the figure to read is the
median of the per-round ratios app / headless, which the issue wants >= 0.9.

Throughput is measured from the trainer's own EpochDone events (timestamps on the training
thread), over the epochs after the first ones (warm-up excluded): tokens / wall seconds.

    python bench/app_throughput.py [--epochs 12] [--rounds 3] [--hidden 512] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import asyncio
import statistics
import threading
import time

LOAD_AT_START = os.getloadavg()[0]

from common import open_corpus  # noqa: E402  (first: puts the checkout on the path)
from engine.config import TrainConfig  # noqa: E402
from engine.trainer import EpochDone, RunState, Trainer  # noqa: E402

SKIP = 2  # warm-up epochs left out of the measurement



class Recorder:
    """Wall-clock time of each EpochDone, recorded on the training thread."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.rates: list[float] = []

    def __call__(self, event) -> None:
        if isinstance(event, EpochDone):
            self.times.append(time.perf_counter())
            self.rates.append(event.tokens_per_sec)

    def tokens_per_sec(self, tokens_per_epoch: int) -> float:
        t = self.times[SKIP:]
        return tokens_per_epoch * (len(t) - 1) / (t[-1] - t[0])


def run_headless(config: TrainConfig, text) -> tuple[Recorder, int]:
    rec = Recorder()
    trainer = Trainer(config, text)
    trainer.add_listener(rec)
    thread = threading.Thread(target=trainer.run, name="train")
    thread.start()
    thread.join()
    snap = trainer.snapshot()
    return rec, snap.batches_per_epoch * config.batch_size * config.num_steps


def run_in_app(config: TrainConfig, text) -> tuple[Recorder, int]:
    from tui.app import RnnTuiApp

    rec = Recorder()

    def factory(cfg, corpus_):
        trainer = Trainer(cfg, corpus_)
        trainer.add_listener(rec)
        return trainer

    app = RnnTuiApp(config, text, trainer_factory=factory)

    async def drive() -> int:
        async with app.run_test(size=(120, 36)) as pilot:
            while app.last_snapshot is None or app.last_snapshot.state is not RunState.FINISHED:
                await pilot.pause(0.1)
            bpe = app.last_snapshot.batches_per_epoch
            await pilot.press("q")
        return bpe

    bpe = asyncio.run(drive())
    return rec, bpe * config.batch_size * config.num_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--max-tokens", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: with 2, a busy 2-core machine collapses)")
    args = parser.parse_args()
    # The book's settings, with samples only at the end (both runs do the same work).
    config = TrainConfig(num_hiddens=args.hidden, epochs=args.epochs, max_tokens=args.max_tokens,
                         sample_every=10_000, threads=args.threads)
    text = open_corpus()
    print(f"machine: {os.cpu_count()} cores, load average {LOAD_AT_START:.1f} when this started "
          "(other processes' load skews every figure; compare within one run)")
    print(f"settings: hidden {config.num_hiddens}, batch {config.batch_size}, steps "
          f"{config.num_steps}, {config.max_tokens} tokens, {config.epochs} epochs "
          f"(first {SKIP} left out), impl {config.impl}, torch threads {config.threads or 'all'}")
    ratios = []
    for r in range(args.rounds):
        head, tpe = run_headless(config, text)
        inapp, tpe2 = run_in_app(config, text)
        assert tpe == tpe2
        a, b = head.tokens_per_sec(tpe), inapp.tokens_per_sec(tpe)
        own = statistics.median(inapp.rates[SKIP:]) / statistics.median(head.rates[SKIP:])
        ratios.append(b / a)
        print(f"round {r + 1}: headless {a:9,.0f} tok/s   in app {b:9,.0f} tok/s   "
              f"ratio {b / a:.3f} (trainer's own tok/s ratio {own:.3f})")
    print(f"app / headless throughput, median of {args.rounds} rounds: "
          f"{statistics.median(ratios):.3f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
