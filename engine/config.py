"""Hyperparameters: the one place where defaults live, and their validation.

The defaults are the book's (d2l 8.5): batch 32, 35 steps, 512 hidden units, lr 1,
clipping to norm 1, 500 epochs, the first 10,000 tokens of *The Time Machine*.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

ITERATORS = ("sequential", "random")
IMPLEMENTATIONS = ("fast", "book")
PREPROCESS_MODES = ("book", "raw")

# Settings the trainer can change between batches; the rest need a rebuilt model or data.
LIVE_FIELDS = ("lr", "clip", "epochs", "sample_every")


class ConfigError(ValueError):
    """A hyperparameter that cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class TrainConfig:
    corpus: str = "timemachine"
    preprocess: str = "book"
    max_tokens: int = 10_000  # 0 means the whole corpus
    batch_size: int = 32
    num_steps: int = 35
    num_hiddens: int = 512
    iterator: str = "sequential"
    lr: float = 1.0
    clip: float = 1.0
    epochs: int = 500
    seed: int = 0
    device: str = "auto"
    impl: str = "fast"
    threads: int = 0  # 0 means all cores
    sample_every: int = 10
    predict_len: int = 50
    prefixes: tuple[str, ...] = field(default=("time traveller", "traveller"))

    @property
    def use_random_iter(self) -> bool:
        return self.iterator == "random"

    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with some fields changed."""
        return validate(dataclasses.replace(self, **changes))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["prefixes"] = list(self.prefixes)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values = dict(data)
        if "prefixes" in values:
            values["prefixes"] = tuple(values["prefixes"])
        return validate(cls(**{k: coerce(k, v) for k, v in values.items()}))


FIELD_TYPES: dict[str, type] = {
    "corpus": str, "preprocess": str, "max_tokens": int, "batch_size": int, "num_steps": int,
    "num_hiddens": int, "iterator": str, "lr": float, "clip": float, "epochs": int, "seed": int,
    "device": str, "impl": str, "threads": int, "sample_every": int, "predict_len": int,
    "prefixes": tuple,
}

MAX_HIDDENS = 1_000_000  # beyond this a model is hopeless anywhere (4 TB for W_hh alone)
# Characters one generation may produce: each is a step of the model that nothing can
# interrupt, and a sample (or a continuation on the command line) longer than this is no use.
MAX_PREDICT_LEN = 10_000


def coerce(name: str, value: Any) -> Any:
    """Turn text (from a form field or a flag) into the field's type, or say what is wrong."""
    kind = FIELD_TYPES.get(name)
    if kind is None:
        raise ConfigError(f"unknown setting: {name}")
    if kind is tuple:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{name}: expected a list of strings, got {value!r}")
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if kind is int:
                return int(text.replace("_", ""))
            if kind is float:
                return float(text)
            return text
        except ValueError:
            pass
        article = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}: {value!r} is not {article}")
    raise ConfigError(f"{name}: expected {kind.__name__}, got {type(value).__name__} {value!r}")


def estimated_bytes(config: TrainConfig, vocab_size: int = 28) -> int:
    """Rough float32 footprint: parameters, their gradients, and the activations of a batch."""
    h, v = config.num_hiddens, vocab_size
    params = h * h + 2 * h * v + h + v
    activations = config.num_steps * config.batch_size * (2 * h + 2 * v)
    return 4 * (2 * params + 2 * activations)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def check_field(name: str, value: Any) -> Any:
    """Coerce and range-check one field; used by forms as the user types."""
    value = coerce(name, value)
    positive = ("batch_size", "num_steps", "num_hiddens", "epochs", "sample_every", "predict_len")
    if name in positive and value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value}")
    if name in ("lr", "clip"):
        if not value == value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        if value <= 0:
            raise ConfigError(f"{name} must be greater than 0, got {value}")
    if name in ("max_tokens", "threads", "seed") and value < 0:
        raise ConfigError(f"{name} must be 0 or more, got {value}")
    if name == "iterator" and value not in ITERATORS:
        raise ConfigError(f"iterator must be one of {', '.join(ITERATORS)}, got {value!r}")
    if name == "impl" and value not in IMPLEMENTATIONS:
        raise ConfigError(f"impl must be one of {', '.join(IMPLEMENTATIONS)}, got {value!r}")
    if name == "preprocess" and value not in PREPROCESS_MODES:
        raise ConfigError(f"preprocess must be one of {', '.join(PREPROCESS_MODES)}, got {value!r}")
    if name in ("corpus", "device") and not value:
        raise ConfigError(f"{name} must not be empty")
    if name == "num_hiddens" and value > MAX_HIDDENS:
        need = estimated_bytes(TrainConfig(num_hiddens=value))
        raise ConfigError(f"num_hiddens {value:,} would need about {human_bytes(need)} of memory; "
                          f"use at most {MAX_HIDDENS:,}")
    if name == "predict_len" and value > MAX_PREDICT_LEN:
        raise ConfigError(f"predict_len must be at most {MAX_PREDICT_LEN}, got {value}")
    if name == "prefixes" and not all(value):
        raise ConfigError("prefixes must not be empty strings")
    return value


def validate(config: TrainConfig) -> TrainConfig:
    """Check every field; raise ConfigError on the first problem. (Whether the model fits the
    device's memory is checked when it is built: see memory_problem.)"""
    for f in fields(config):
        check_field(f.name, getattr(config, f.name))
    return config


def memory_problem(config: TrainConfig, vocab_size: int, free_bytes: int | None,
                   device: str) -> str | None:
    """Why the model will not fit in free_bytes (None when it fits or nothing is known)."""
    need = estimated_bytes(config, vocab_size)
    if free_bytes is None or need <= 0.8 * free_bytes:
        return None
    return (f"a model with {config.num_hiddens:,} hidden units, batch {config.batch_size} and "
            f"{config.num_steps} steps needs about {human_bytes(need)}, but only "
            f"{human_bytes(free_bytes)} is free on {device}; lower the hidden size or batch size")
