"""Training speed on a busy machine: the default (adaptive threads) against fixed 1 and 2.

The book's setting (hidden 512, batch 32 x 35, the first 10,000 tokens, sequential) trains for
--epochs epochs, each run in a fresh process, with --threads 0 (the default: adaptive), 1 and
2, once on a quiet machine and once beside a busy loop (a separate process spinning on one
core). Rounds interleave every run, so that the machine's own noise hits all of them; the
figures to read are the medians of the per-round ratios:

    busy:  default / the better of 1 and 2 fixed threads   (goal >= 0.95)
    quiet: default / 2 fixed threads                       (goal >= 0.97)

Speed is the run's tokens over its training seconds (the trainer's own clock, samples
excluded), so the default pays for its probes and its first epochs at all cores.

    python bench/busy.py [--epochs 60] [--rounds 2] [--hidden 512]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from common import REPO, add_machine_args, open_corpus  # noqa: F401  (puts the checkout first)

THREADS = (0, 1, 2)   # 0: the default, adaptive
SPIN = "while True: pass"


def child(args: argparse.Namespace) -> None:
    """One run in this process; prints one JSON line."""
    from engine.config import TrainConfig
    from engine.events import EpochDone, Notice
    from engine.trainer import Trainer
    epochs, notices = [], []

    def on_event(event) -> None:
        if isinstance(event, EpochDone):
            epochs.append(event)
        elif isinstance(event, Notice):
            notices.append(event.message)

    config = TrainConfig(epochs=args.epochs, num_hiddens=args.hidden, threads=args.threads,
                         device=args.device, sample_every=args.epochs + 1,
                         corpus=args.corpus)
    trainer = Trainer(config, corpus=open_corpus(args.corpus), on_event=on_event)
    trainer.run()
    snap = trainer.snapshot()
    tokens = snap.batches_per_epoch * config.batch_size * config.num_steps * len(epochs)
    print(json.dumps({"tokens_per_sec": tokens / epochs[-1].elapsed,
                      "threads": [e.threads for e in epochs], "notices": notices}))


def run(args: argparse.Namespace, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--threads", str(threads), "--epochs",
         str(args.epochs), "--hidden", str(args.hidden), "--device", args.device,
         "--corpus", args.corpus], capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def label(threads: int) -> str:
    return "default" if threads == 0 else f"{threads} fixed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    add_machine_args(parser, threads=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # the busy loop goes too
    if args.child:
        child(args)
        return
    print(f"book setting, hidden {args.hidden}, {args.epochs} epochs, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start")
    ratios: dict[str, list[float]] = {"quiet": [], "busy": []}
    for r in range(args.rounds):
        for condition in ("quiet", "busy") if r % 2 == 0 else ("busy", "quiet"):
            spinner = (subprocess.Popen([sys.executable, "-c", SPIN])
                       if condition == "busy" else None)
            try:
                time.sleep(0.5 if spinner else 0)
                # Rotate the order each round: no configuration always runs first.
                order = THREADS[r % 3:] + THREADS[:r % 3]
                speed = {}
                for threads in order:
                    result = run(args, threads)
                    speed[threads] = result["tokens_per_sec"]
                    used = result["threads"]
                    extra = (f"  threads per epoch: {summary(used)}" if threads == 0 else "")
                    print(f"round {r + 1} {condition:5} {label(threads):8} "
                          f"{speed[threads]:9,.0f} tokens/s{extra}", flush=True)
            finally:
                if spinner:
                    spinner.kill()
                    spinner.wait()
            best = max(speed[1], speed[2]) if condition == "busy" else speed[2]
            ratios[condition].append(speed[0] / best)
            print(f"round {r + 1} {condition:5} ratio default / "
                  f"{'best fixed' if condition == 'busy' else '2 fixed'}: "
                  f"{ratios[condition][-1]:.3f}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end (a quiet 2-core machine: below 1)")
    for condition, goal in (("busy", 0.95), ("quiet", 0.97)):
        values = ratios[condition]
        print(f"{condition:5}: median ratio {statistics.median(values):.3f} "
              f"(rounds: {', '.join(f'{v:.3f}' for v in values)}; goal >= {goal})")


def summary(threads: list[int]) -> str:
    """e.g. '2x3 1x1 2x56': runs of equal counts."""
    runs: list[list[int]] = []
    for n in threads:
        if runs and runs[-1][0] == n:
            runs[-1][1] += 1
        else:
            runs.append([n, 1])
    return " ".join(f"{n}x{k}" for n, k in runs)


if __name__ == "__main__":
    main()
