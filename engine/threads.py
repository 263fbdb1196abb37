"""ThreadTuner: how many threads torch trains with, chosen by measuring, while training.

With all cores (the default, `--threads 0`), one other busy process on the machine makes
training three times slower: every parallel op waits at its barrier for the thread that shares
a core with the other process (measured on 2 cores: 56k tokens/s quiet, 19k beside one busy
core, 33k with one thread). So the default keeps the count that measures fastest: now and then
it trains one epoch at one thread fewer (or one more, up to all cores) and keeps whichever ran
more tokens a second. A probe that confirms the count makes the next one wait four times as
long, and probes are spaced so that the slower count costs at most 2% of the time (a quiet
machine, or a very busy one, pays little for them). A lasting change of speed (another
process starting or ending) probes at once, the way it points: slower, one thread fewer;
faster, one more.

It only decides; the trainer calls `epoch_done` at each epoch's end, on its own thread (torch's
thread count is per thread), and `set_threads` is torch.set_num_threads there.
"""

from __future__ import annotations

import math
import statistics
from typing import Callable

import torch

# torch's own default (all physical cores, or OMP_NUM_THREADS), read when the engine is first
# imported: later, a run may have set the count on this thread.
ALL_CORES = torch.get_num_threads()

FIRST_PROBE = 1        # epochs measured at the starting count before the first probe (the
                       # first epoch is as fast as the next ones at one thread; at all cores
                       # beside busy processes it is the slow one we want to leave at once)
AFTER_CHANGE = 4       # epochs at least before re-checking a count just chosen
GROWTH = 4             # each confirming probe makes the next wait this many times longer,
BUDGET = 0.02          # and at least long enough that probes this slow cost 2% of the time
MAX_INTERVAL = 256     # at most this many epochs between probes
MARGIN = 0.05          # a probe must be this much faster to win: noise does not move the count
CHANGE = 0.75          # two epochs this much slower (or 1/CHANGE faster) than the count's
                       # median mean the machine changed: probe at once
BASELINE = 5           # epochs at the current count that its median speed is taken from


def threads_label(n: int) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


class ThreadTuner:
    """Starts with all cores; `threads` is the count chosen, `reason` why."""

    def __init__(self, max_threads: int, set_threads: Callable[[int], None]):
        self.max_threads = max(1, max_threads)
        self.threads = self.max_threads
        self._set_threads = set_threads
        self.reason = "all cores, until measured"
        self._interval = FIRST_PROBE
        self._countdown = FIRST_PROBE
        self._rates: list[float] = []      # tokens/s of recent epochs at self.threads
        self._probe: int | None = None     # the count being tried this epoch
        self._last_probe_down = False

    @property
    def active(self) -> bool:
        """Whether there is anything to choose (more than one core)."""
        return self.max_threads > 1

    @property
    def current(self) -> int:
        """The count the next epoch runs with (the probe's while probing)."""
        return self._probe if self._probe is not None else self.threads

    def describe(self) -> str:
        return f"{threads_label(self.threads)} ({self.reason})"

    def epoch_done(self, tokens_per_sec: float) -> str | None:
        """Record the epoch that just ended, at `current` threads; maybe start or end a probe.
        Returns a sentence saying why, when the chosen count changed; None otherwise."""
        if not self.active or tokens_per_sec <= 0:
            return None
        if self._probe is not None:
            return self._decide(tokens_per_sec)
        self._rates = (self._rates + [tokens_per_sec])[-BASELINE:]
        self._countdown -= 1
        n, change = self.threads, self._changed()
        if self._countdown <= 0:
            # Alternate directions; where one is impossible (1 thread, all cores), the other.
            self._start_probe(down=n > 1 and (n == self.max_threads or not self._last_probe_down))
        elif change < 0 and n > 1:                  # busier: would fewer threads do better?
            self._start_probe(down=True)
        elif change > 0 and n < self.max_threads:   # quieter: would more?
            self._start_probe(down=False)
        return None

    def _start_probe(self, down: bool) -> None:
        self._last_probe_down = down
        self._probe = self.threads - 1 if down else self.threads + 1
        self._set_threads(self._probe)

    def _changed(self) -> int:
        """-1 (slower) or 1 (faster) when the last two epochs' speeds are both far, the same
        way, from the ones before them at this count; else 0 (one odd epoch is not the
        machine changing)."""
        if len(self._rates) < 4:
            return 0
        before = statistics.median(self._rates[:-2])
        ratios = [rate / before for rate in self._rates[-2:]]
        if all(r < CHANGE for r in ratios):
            return -1
        return 1 if all(r > 1 / CHANGE for r in ratios) else 0

    def _baseline(self) -> float:
        """The current count's speed. Odd epochs are mostly slow ones (something else woke
        up), so: the best of too few to take a median of; the median of enough; the better
        of the last two when they changed (the machine did)."""
        if self._changed():
            return max(self._rates[-2:])
        if len(self._rates) < 3:
            return max(self._rates)
        return statistics.median(self._rates)

    @staticmethod
    def _spacing(cost: float, at_least: int) -> int:
        """Epochs until the next probe, when one costs `cost` epochs' time (the loser's
        slowness): enough that probes take at most BUDGET of the time."""
        return min(MAX_INTERVAL, max(at_least, math.ceil(cost / BUDGET)))

    def _decide(self, probe_rate: float) -> str | None:
        n, probe = self.threads, self._probe
        self._probe = None
        base = self._baseline()
        figures = (f"{probe_rate:,.0f} tokens/s against {base:,.0f} with "
                   f"{threads_label(n)}")
        if probe_rate > base * (1 + MARGIN):
            self.threads = probe
            self._rates = [probe_rate]
            # Re-check soon when the win was narrow; later when trying the old count again
            # would cost much.
            self._interval = self._countdown = self._spacing(probe_rate / base - 1, AFTER_CHANGE)
            why = ("fewer threads run faster: other processes are using cores" if probe < n
                   else "more threads run faster: cores are free")
            self.reason = f"{why}; measured {figures}"
            return f"training with {threads_label(probe)} instead of {n}: {why} " \
                   f"({figures})"
        self._set_threads(n)
        self._interval = self._spacing(base / probe_rate - 1, self._interval * GROWTH)
        self._countdown = self._interval
        self._rates = []
        self.reason = f"the fastest, measured: {threads_label(probe)} gave {figures}"
        return None
