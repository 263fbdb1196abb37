"""How the next character is chosen: one frozen value, passed whole to predict().

The book picks the likeliest character (greedy, `predict_ch8`). The chapter's exercises and
common practice add: sampling with a temperature, from the k likeliest (top-k), from the
smallest set holding probability mass p (top-p, nucleus), and from p^alpha renormalized (the
chapter's exercise; alpha > 1 sharpens, alpha < 1 flattens). The prompt, the periodic samples
and `rnn-tui generate` all build a `Sampling` and hand it over; none threads its numbers.

Written as text, a sampling is its strategy and its number: `greedy`, `temperature 0.8`,
`top-k 5`, `top-p 0.9`, `power 2` (the form, the settings file and the flags read this).
This module does not import torch until a token is drawn, so settings checks stay fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import RnnTuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

STRATEGIES = ("greedy", "temperature", "top-k", "top-p", "power")
# Above this temperature sampling is as good as uniform; 0 is the book's greedy argmax.
MAX_TEMPERATURE = 100.0
MIN_SAMPLING_TEMPERATURE = 1e-30  # smaller positive temperatures sample as this one does
MAX_K = 100_000
MAX_ALPHA = 100.0


class SamplingError(RnnTuiError):
    """A sampling that cannot be used; the message says which number and why."""


def _number(value: float) -> str:
    """A number as the user would write it: 2 not 2.0, but 100.5, inf and nan as they are."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Sampling:
    strategy: str = "greedy"
    temperature: float = 1.0   # for temperature, top-k and top-p
    k: int = 5                 # top-k
    p: float = 0.9             # top-p
    alpha: float = 1.0         # power
    seed: int | None = None    # None: the caller's generator goes on drawing

    def checked(self) -> "Sampling":
        """Itself, or SamplingError naming the number that is out of range."""
        if self.strategy not in STRATEGIES:
            raise SamplingError(f"sampling must be one of {', '.join(STRATEGIES)}, "
                                f"got {self.strategy!r}")
        check_temperature(self.temperature)
        if not (isinstance(self.k, int) and 1 <= self.k <= MAX_K):
            raise SamplingError(f"top-k's k must be a whole number from 1 to {MAX_K}, "
                                f"got {self.k!r}")
        if not (_finite(self.p) and 0 < self.p <= 1):
            raise SamplingError(f"top-p's p must be above 0 and at most 1, got {_number(self.p)}")
        if not (_finite(self.alpha) and 0 < self.alpha <= MAX_ALPHA):
            raise SamplingError(f"power's alpha must be above 0 and at most {MAX_ALPHA:g}, "
                                f"got {_number(self.alpha)}")
        if self.seed is not None and not (isinstance(self.seed, int) and 0 <= self.seed < 2**63):
            raise SamplingError(f"the sampling seed must be from 0 to 2**63 - 1, got {self.seed!r}")
        return self

    @property
    def greedy(self) -> bool:
        return self.strategy == "greedy" or (self.strategy == "temperature"
                                             and self.temperature == 0)

    @property
    def number(self) -> float | int | None:
        """The strategy's own number (the one its text form shows)."""
        return {"temperature": self.temperature, "top-k": self.k, "top-p": self.p,
                "power": self.alpha}.get(self.strategy)

    def with_number(self, value) -> "Sampling":
        """A copy with the strategy's own number set (checked)."""
        field = {"temperature": "temperature", "top-k": "k", "top-p": "p",
                 "power": "alpha"}.get(self.strategy)
        return replace(self, **{field: value}).checked() if field else self

    def __str__(self) -> str:
        n = self.number
        if n is None:
            return self.strategy
        return f"{self.strategy} {_number(n) if isinstance(n, float) else n}"

    def next_token(self, logits: "torch.Tensor", generator: "torch.Generator | None") -> int:
        """The index chosen from one vector of logits (already masked where not allowed)."""
        import torch

        if self.greedy:
            return int(logits.argmax())
        probs = self.distribution(logits)
        return int(torch.multinomial(probs.cpu(), 1, generator=generator))

    def distribution(self, logits: "torch.Tensor") -> "torch.Tensor":
        """The probabilities this sampling draws from (greedy: all mass on the argmax)."""
        import torch

        logits = logits.float()
        if self.greedy:
            out = torch.zeros_like(logits)
            out[int(logits.argmax())] = 1.0
            return out
        if self.strategy == "power":
            # p^alpha renormalized is softmax(alpha * logits): the same, without underflow.
            return torch.softmax(logits * self.alpha, dim=-1)
        # A temperature this small is greedy anyway; below it, float32 logits / temperature
        # overflow (or it rounds to 0) and the distribution would be nan.
        probs = torch.softmax(logits / max(self.temperature, MIN_SAMPLING_TEMPERATURE), dim=-1)
        if self.strategy == "top-k":
            k = min(self.k, int(torch.isfinite(logits).sum()))
            keep = probs.topk(k).indices
            probs = torch.zeros_like(probs).index_fill_(0, keep, 1.0) * probs
        elif self.strategy == "top-p":
            # The smallest set of the likeliest characters whose mass reaches p.
            sorted_probs, order = probs.sort(descending=True)
            before = sorted_probs.cumsum(0) - sorted_probs  # mass of the likelier ones
            keep = order[before < self.p]
            probs = torch.zeros_like(probs).index_fill_(0, keep, 1.0) * probs
        return probs / probs.sum()


GREEDY = Sampling()


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_temperature(value) -> float:
    """The temperature as a float, or SamplingError: between 0 (greedy) and MAX_TEMPERATURE."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise SamplingError(f"temperature: {value!r} is not a number") from None
    if not (math.isfinite(t) and 0 <= t <= MAX_TEMPERATURE):
        raise SamplingError(f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE:g}, "
                            f"got {_number(t)}")
    return t


def parse_temperature(text: str) -> float:
    """A temperature typed as text (a form field, a flag), checked by check_temperature."""
    return check_temperature(str(text).strip())


def parse_sampling(text: str, base: Sampling = GREEDY) -> Sampling:
    """`greedy`, `temperature 0.8`, `top-k 5`, `top-p 0.9` or `power 2` (also `top_k`,
    `t 0.8`, `topk:5`); a strategy without its number keeps base's. SamplingError if not."""
    words = str(text).replace(":", " ").replace("=", " ").split()
    if not words:
        raise SamplingError("sampling is empty: write greedy, temperature T, top-k K, top-p P "
                            "or power A")
    name = words[0].lower().replace("_", "-")
    name = {"t": "temperature", "temp": "temperature", "topk": "top-k", "topp": "top-p",
            "nucleus": "top-p", "alpha": "power"}.get(name, name)
    if name not in STRATEGIES or len(words) > 2:
        raise SamplingError(f"sampling: {str(text)[:40]!r} is not one of greedy, temperature T, "
                            "top-k K, top-p P, power A")
    sampling = replace(base, strategy=name)
    if len(words) == 2:
        if name == "greedy":
            raise SamplingError("greedy takes no number")
        number = words[1]
        try:
            value = int(number) if name == "top-k" else float(number)
        except ValueError:
            raise SamplingError(f"{name}: {number[:20]!r} is not a "
                                f"{'whole number' if name == 'top-k' else 'number'}") from None
        sampling = sampling.with_number(value)
    return sampling.checked()
