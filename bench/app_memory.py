"""Does the app's memory stay flat over a long run? RSS after 2,000 epochs vs after 200.

A small model trains for 2,000 epochs inside the app (headless Textual driver, 120x36) with
everything that keeps state in use: the full perplexity plot shown, samples every 10 epochs,
and a prompt whose answer is refreshed while training. The histories the UI holds are
bounded (samples: 20 rounds shown; the trainer halves its perplexity history when full),
so the resident set size at epoch 2,000 should be within 10% of the one at epoch 200.

    python bench/app_memory.py [--epochs 2000] [--hidden 32]
"""

from __future__ import annotations

import argparse
import os
import asyncio
import gc
import time

LOAD_AT_START = os.getloadavg()[0]

from common import open_corpus  # noqa: E402  (first: puts the checkout on the path)
from engine.config import TrainConfig  # noqa: E402
from engine.trainer import RunState  # noqa: E402
from tui.app import RnnTuiApp  # noqa: E402



def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def measure(args) -> None:
    config = TrainConfig(num_hiddens=args.hidden, max_tokens=2000, batch_size=8, num_steps=10,
                         epochs=args.epochs, sample_every=10, threads=1)
    app = RnnTuiApp(config, open_corpus())
    marks = sorted({args.epochs // 10, args.epochs // 2, args.epochs})
    rss: dict[int, float] = {}
    start = time.perf_counter()
    async with app.run_test(size=(120, 36)) as pilot:
        # Set, not typed: the pilot waits for an idle process after each key, and training
        # never is idle.
        app.show_plot = True
        app.query_one("#prompt-input").value = "time traveller"
        while len(rss) < len(marks):
            snap = app.last_snapshot
            epoch = snap.epoch if snap is not None else 0
            for mark in marks:
                if mark not in rss and epoch >= mark:
                    gc.collect()
                    rss[mark] = rss_mib()
                    print(f"epoch {epoch:>5}: RSS {rss[mark]:7.1f} MiB "
                          f"({time.perf_counter() - start:5.1f} s)", flush=True)
            if snap is not None and snap.state in (RunState.ERROR, RunState.DIVERGED):
                raise SystemExit(f"the run ended in {snap.state.value}: {snap.message}")
            await asyncio.sleep(0.05)
        samples = len(app.query_one("#samples").samples)
        history = len(app.last_snapshot.history)
        answers = app._prediction_answered
        await pilot.press("q")
    first, last = rss[marks[0]], rss[marks[-1]]
    print(f"machine: {os.cpu_count()} cores, load average {LOAD_AT_START:.1f} when this started "
          "(other processes' load skews every figure; compare within one run)")
    print(f"settings: hidden {config.num_hiddens}, batch {config.batch_size}x{config.num_steps}, "
          f"{config.max_tokens} tokens, plot shown, prompt answered {answers} times; at the end "
          f"the trainer held {history} history points and {samples} samples")
    print(f"RSS after {marks[-1]} epochs / after {marks[0]} epochs: {last:.1f} / {first:.1f} MiB "
          f"= {last / first:.3f} (goal within 10%: <= 1.10)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=32)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
