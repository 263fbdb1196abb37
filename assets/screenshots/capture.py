"""Capture the README's screenshots from the running app (real training, headless driver).

    python assets/screenshots/capture.py [--epochs 150]

Writes main.svg (120x36 after some epochs), prompt.svg (140x44: a typed prefix, its
continuation, the next-character odds and the full curve), help.svg and small.svg (80x24)
next to this file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

import textual.app  # noqa: E402
import textual.pilot  # noqa: E402

from engine.config import TrainConfig  # noqa: E402
from engine.corpus import load_text  # noqa: E402
from tui.app import RnnTuiApp  # noqa: E402


async def _no_idle_wait(*args, **kwargs) -> None:
    # The pilot waits for an idle process after each key; a training one never is.
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.005)


textual.app.wait_for_idle = _no_idle_wait
textual.pilot.wait_for_idle = _no_idle_wait


def corpus():
    return load_text("timemachine")


async def shoot(size, epochs: int, name: str, keys=(), config: TrainConfig | None = None) -> None:
    config = config or TrainConfig(num_hiddens=256, epochs=500, threads=1)
    app = RnnTuiApp(config, corpus())
    async with app.run_test(size=size) as pilot:
        while app.last_snapshot is None or app.last_snapshot.epoch < epochs:
            await pilot.pause(0.2)
        for key in keys:
            if key.startswith("wait:"):
                await pilot.pause(float(key[5:]))
            else:
                await pilot.press(key)
        await pilot.pause(1.2)
        path = HERE / f"{name}.svg"
        app.save_screenshot(str(path))
        print(f"{path.relative_to(REPO)} at epoch {app.last_snapshot.epoch}")
        await pilot.press("escape", "escape", "q")


async def main(epochs: int) -> None:
    await shoot((120, 36), epochs, "main")
    await shoot((140, 44), epochs, "prompt", keys=("g", *"the Time Traveller, 1895", "wait:1.0"))
    await shoot((120, 36), 5, "help", keys=("escape", "question_mark"))
    await shoot((80, 24), epochs, "small")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    asyncio.run(main(parser.parse_args().epochs))
