"""The prompt's sampling field: type `top-p 0.9`, or switch strategy and nudge its number by key."""

from __future__ import annotations

from dataclasses import replace

from textual.binding import Binding

from engine.sampling import GREEDY, STRATEGIES, Sampling, SamplingError, parse_sampling

from .ordered_input import OrderedInput

# What up and down do to each strategy's number: (step, lowest, highest).
STEPS = {"temperature": (0.1, 0.0, 100.0), "top-k": (1, 1, 100_000), "top-p": (0.05, 0.05, 1.0),
         "power": (0.25, 0.25, 100.0)}
# A strategy switched to starts from a number that shows what it does.
STARTS = {"temperature": 0.8, "top-k": 5, "top-p": 0.9, "power": 2.0}


def next_strategy(sampling: Sampling) -> Sampling:
    """The next strategy in STRATEGIES' order (after the last, greedy again)."""
    name = STRATEGIES[(STRATEGIES.index(sampling.strategy) + 1) % len(STRATEGIES)]
    chosen = replace(sampling, strategy=name)
    return chosen.with_number(STARTS[name]) if name in STARTS else chosen


def nudged(sampling: Sampling, direction: int) -> Sampling:
    """The strategy's number one step up (direction 1) or down (-1), within its range."""
    if sampling.strategy not in STEPS:
        return sampling
    step, low, high = STEPS[sampling.strategy]
    value = min(high, max(low, sampling.number + direction * step))
    return sampling.with_number(value if isinstance(step, int) else round(value, 4))


class SamplingInput(OrderedInput):
    """Holds the text of a Sampling; ctrl+t switches strategy, up and down change its number."""

    BINDINGS = [
        Binding("ctrl+t", "next_strategy", "Sampling", id="next-sampling",
                tooltip="Switch sampling: greedy, temperature, top-k, top-p, power"),
        Binding("up", "nudge(1)", "More", show=False, id="sampling-up"),
        Binding("down", "nudge(-1)", "Less", show=False, id="sampling-down"),
    ]

    def sampling(self) -> Sampling:
        """The typed sampling; SamplingError says what is wrong with it."""
        return parse_sampling(self.value)

    def _current(self) -> Sampling:
        try:
            return self.sampling()
        except SamplingError:
            return GREEDY

    def action_next_strategy(self) -> None:
        self.value = str(next_strategy(self._current()))
        self.cursor_position = len(self.value)

    def action_nudge(self, direction: int) -> None:
        self.value = str(nudged(self._current(), direction))
        self.cursor_position = len(self.value)
