"""Hyperparameters: each setting declared once, and everything else derived from it.

A setting is a field of `TrainConfig` whose metadata is a `Setting`: its label, help text,
command-line flag, choices, constraint and kind. The command line's flags and their help
(tui/cli.py), the settings file's keys and checks (engine/settings.py), the app's form fields
(tui/widgets/hyperparam_form.py), which settings may change during a run or on resume, and the
checkpoint's live keys all read these declarations; nothing else lists the settings.

The defaults are the book's (d2l 8.5): batch 32, 35 steps, 512 hidden units, lr 1,
clipping to norm 1, 500 epochs, the first 10,000 tokens of *The Time Machine*.
This module never imports torch, so `--help` and settings checks start fast.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from .errors import RnnTuiError

ITERATORS = ("sequential", "random")
IMPLEMENTATIONS = ("fast", "book")
PREPROCESS_MODES = ("book", "raw")
# The cells of engine/cells (CELLS there registers each; a test checks the two agree).
CELLS = ("rnn", "gru", "lstm")
INPUTS = ("onehot", "embedding")
ACTIVATIONS = ("tanh", "relu")
MAX_LAYERS = 16
OPTIMIZERS = ("sgd", "adam")            # engine.optim
SCHEDULES = ("none", "cosine", "step")   # engine.optim.scheduled_lr

MAX_HIDDENS = 1_000_000  # beyond this a model is hopeless anywhere (4 TB for W_hh alone)
# Characters one generation may produce: each is a step of the model that nothing can
# interrupt, and a sample (or a continuation on the command line) longer than this is no use.
MAX_PREDICT_LEN = 10_000
MAX_SEED = 2**63 - 1     # torch's and Python's generators take any seed up to here
# More threads than this many per core only slow training down (and a huge number fails).
MAX_THREADS_PER_CORE = 4


class ConfigError(RnnTuiError):
    """A hyperparameter that cannot be used; the message names it and says why."""


class Kind(str, enum.Enum):
    """When a setting may change."""
    LIVE = "live"        # between two batches of a running run
    RESTART = "restart"  # by restarting the run (or on resume)
    MODEL = "model"      # never within a run: it shapes the model or its data


# A constraint returns what is wrong with a value of the right type (a phrase after the
# setting's name, e.g. "must be a positive integer, got 0"), or None.
Constraint = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Setting:
    label: str                      # what the app's form calls it
    help: str                       # one line, for --help, the form's tooltip and the docs
    kind: Kind
    flag: str | None = None         # the command line's name without "--"; None: no flag
    choices: tuple[str, ...] = ()   # the only values allowed (a Select in the form)
    constraint: Constraint | None = None
    in_form: bool = True            # shown in the app's form


def setting(default: Any, label: str, help: str, kind: Kind, *, flag: str | None = None,
            choices: tuple[str, ...] = (), constraint: Constraint | None = None,
            in_form: bool = True):
    """A dataclass field with its declaration; mutable defaults (tuples are fine) need none."""
    meta = Setting(label, help, kind, flag, choices, constraint or _one_of(choices), in_form)
    return field(default=default, metadata={"setting": meta})


# ---- constraints --------------------------------------------------------------------------------

def positive(value) -> str | None:
    return None if value > 0 else f"must be a positive integer, got {value}"


def at_least_zero(value) -> str | None:
    return None if value >= 0 else f"must be 0 or more, got {value}"


def positive_number(value) -> str | None:
    if not math.isfinite(value):
        return f"must be a finite number, got {value}"
    return None if value > 0 else f"must be greater than 0, got {value}"


def at_least_zero_number(value) -> str | None:
    if not math.isfinite(value):
        return f"must be a finite number, got {value}"
    return None if value >= 0 else f"must be 0 or more, got {value}"


def both(*checks: Constraint) -> Constraint:
    def check(value):
        return next((p for p in (c(value) for c in checks) if p), None)
    return check


def at_most(limit: int, why: str = "") -> Constraint:
    def check(value):
        return None if value <= limit else f"must be at most {limit}{why}, got {value}"
    return check


def _one_of(choices: tuple[str, ...]) -> Constraint | None:
    if not choices:
        return None
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"


def not_empty(value) -> str | None:
    return "must not be empty" if not value else None


def no_empty_strings(value) -> str | None:
    return "must not be empty strings" if not all(value) else None


def sampling_text(value) -> str | None:
    from .sampling import SamplingError, parse_sampling  # torch-free
    try:
        parse_sampling(value)
    except SamplingError as e:
        return f"is not usable: {e}"
    return None


def hidden_size(value) -> str | None:
    if value <= 0:
        return positive(value)
    if value > MAX_HIDDENS:
        need = estimated_bytes(TrainConfig(num_hiddens=value))
        return (f"{value:,} would need about {human_bytes(need)} of memory; "
                f"use at most {MAX_HIDDENS:,}")
    return None


# Holding out half the tokens or more would leave validation as the main part.
MAX_VAL_FRACTION = 0.5


def held_out_fraction(value) -> str | None:
    if not 0 <= value < MAX_VAL_FRACTION:  # NaN fails too
        return f"must be at least 0 and below {MAX_VAL_FRACTION}, got {value}"
    return None


def thread_count(value) -> str | None:
    if value < 0:
        return at_least_zero(value)
    cores = os.cpu_count() or 1
    limit = MAX_THREADS_PER_CORE * cores
    if value > limit:
        return f"must be at most {limit} ({cores} cores here; 0 uses them all), got {value}"
    return None


# ---- the settings ----------------------------------------------------------------------------------
# In the order the form shows them: live ones first, then those that need a restart.

@dataclass(frozen=True)
class TrainConfig:
    lr: float = setting(1.0, "learning rate", "learning rate of plain SGD", Kind.LIVE,
                        flag="lr", constraint=positive_number)
    clip: float = setting(1.0, "clip norm", "clip the gradient's total norm to this value "
                          "(0: no clipping)", Kind.LIVE, flag="clip", constraint=at_least_zero_number)
    sample_every: int = setting(10, "sample every", "print samples every N epochs", Kind.LIVE,
                                flag="sample-every", constraint=positive)
    epochs: int = setting(500, "epochs", "number of epochs", Kind.LIVE, flag="epochs",
                          constraint=positive)
    lr_schedule: str = setting("none", "lr schedule", "learning rate over the run: none (the "
                               "book's constant), cosine (down to 0 at the last epoch) or step "
                               "(halved at each quarter)", Kind.LIVE, flag="lr-schedule",
                               choices=SCHEDULES)
    num_hiddens: int = setting(512, "hidden size", "number of hidden units", Kind.MODEL,
                               flag="hidden", constraint=hidden_size)
    cell: str = setting("rnn", "cell", "rnn (the book's, 8.5), gru (9.1) or lstm (9.2), each "
                        "from scratch", Kind.MODEL, flag="cell", choices=CELLS)
    num_layers: int = setting(1, "layers", "stacked recurrent layers (a deep RNN, 9.3)",
                              Kind.MODEL, flag="layers",
                              constraint=both(positive, at_most(MAX_LAYERS)))
    input: str = setting("onehot", "input", "onehot (the book's) or embedding: a learned "
                         "vector per character (8.5's exercise)", Kind.MODEL, flag="input",
                         choices=INPUTS)
    embed_size: int = setting(32, "embedding size", "the embedding's size (with --input "
                              "embedding)", Kind.MODEL, flag="embed-size",
                              constraint=both(positive, at_most(MAX_HIDDENS)))
    activation: str = setting("tanh", "activation", "the RNN cell's: tanh (the book's) or relu "
                              "(8.5's exercise)", Kind.MODEL, flag="activation",
                              choices=ACTIVATIONS)
    batch_size: int = setting(32, "batch size", "sequences per mini-batch", Kind.MODEL,
                              flag="batch-size", constraint=positive)
    num_steps: int = setting(35, "steps", "time steps per sequence (truncated backpropagation)",
                             Kind.MODEL, flag="num-steps", constraint=positive)
    iterator: str = setting("sequential", "iterator",
                            "mini-batch iterator: sequential (the state carries across batches) "
                            "or random sampling", Kind.MODEL, flag="iter", choices=ITERATORS)
    max_tokens: int = setting(10_000, "max tokens", "use the first N tokens of the corpus "
                              "(0: all)", Kind.MODEL, flag="max-tokens", constraint=at_least_zero)
    seed: int = setting(0, "seed", "random seed for parameters and batches", Kind.MODEL,
                        flag="seed", constraint=both(at_least_zero, at_most(MAX_SEED)))
    detach: str = setting("yes", "detach", "yes: cut the graph between sequential batches (the "
                          "book); no: backpropagate through up to 16 batches before (memory and "
                          "time grow)", Kind.RESTART, flag="detach", choices=("yes", "no"))
    optimizer: str = setting("sgd", "optimizer", "sgd (the book's) or adam (d2l 12.10; try "
                             "--lr 0.01)", Kind.RESTART, flag="optimizer", choices=OPTIMIZERS)
    device: str = setting("auto", "device", "auto, cpu, cuda, cuda:N or mps", Kind.RESTART,
                          flag="device", constraint=not_empty)
    corpus: str = setting("timemachine", "corpus",
                          "'timemachine', 'pydoc', or the path of a UTF-8 text file", Kind.MODEL,
                          flag="corpus", constraint=not_empty)
    impl: str = setting("fast", "implementation",
                        "fast (the same math, faster) or book (the chapter's loop)", Kind.RESTART,
                        flag="impl", choices=IMPLEMENTATIONS)
    preprocess: str = setting("book", "preprocess", "'book': letters only, lower case; 'raw': "
                              "every character", Kind.MODEL, flag="preprocess",
                              choices=PREPROCESS_MODES, in_form=False)
    threads: int = setting(0, "threads", "torch threads for training (0: adaptive, the count that measures fastest)",
                           Kind.RESTART, flag="threads", constraint=thread_count, in_form=False)
    prefixes: tuple[str, ...] = setting(("time traveller", "traveller"), "prefixes",
                                        "text the periodic samples continue (the flag once per "
                                        "prefix; the form separates them with |)", Kind.LIVE,
                                        flag="prefix", constraint=no_empty_strings)
    predict_len: int = setting(50, "sample length", "characters generated for each sample",
                               Kind.LIVE, flag="predict-len",
                               constraint=both(positive, at_most(MAX_PREDICT_LEN)))
    sampling: str = setting("greedy", "sampling", "how samples choose each character: greedy "
                            "(the book), temperature T, top-k K, top-p P or power A",
                            Kind.LIVE, flag="sampling", constraint=sampling_text)
    val_fraction: float = setting(0.0, "validation fraction",
                                  "hold out this fraction of the tokens, at the end, for "
                                  "validation perplexity each epoch (0: none, the book's run)",
                                  Kind.MODEL, flag="val-fraction", constraint=held_out_fraction,
                                  in_form=False)

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
        unknown = sorted(set(data) - set(SETTINGS))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return validate(cls(**{k: coerce(k, v) for k, v in data.items()}))


# ---- derived from the declarations -------------------------------------------------------------

SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in fields(TrainConfig)}
FIELD_TYPES: dict[str, type] = {f.name: type(f.default) for f in fields(TrainConfig)}
LIVE_FIELDS = tuple(n for n, s in SETTINGS.items() if s.kind is Kind.LIVE)
# Settings that shape the model or its data: a resumed run keeps them.
MODEL_FIELDS = tuple(n for n, s in SETTINGS.items() if s.kind is Kind.MODEL)
FLAGS: dict[str, str] = {s.flag: n for n, s in SETTINGS.items() if s.flag}


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
        raise ConfigError(f"{name}: expected a list of strings, got {_quoted(value)}")
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
        raise ConfigError(f"{name}: {_quoted(value)} is not {article}")
    raise ConfigError(f"{name}: expected {kind.__name__}, got {type(value).__name__} "
                      f"{_quoted(value)}")


def _quoted(value: Any, limit: int = 40) -> str:
    """repr of a value for a message, cut short: a pasted page must not fill the screen."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


quoted = _quoted  # the form and the checkpoint list quote what was typed the same way


def check_field(name: str, value: Any) -> Any:
    """Coerce and range-check one setting (forms check as the user types); the message names
    the setting, e.g. 'num_hiddens must be a positive integer, got 0'."""
    value = coerce(name, value)
    constraint = SETTINGS[name].constraint
    problem = constraint(value) if constraint else None
    if problem:
        raise ConfigError(f"{name} {problem}")
    return value


def validate(config: TrainConfig) -> TrainConfig:
    """Check every field; raise ConfigError on the first problem. (Whether the model fits the
    device's memory is checked when it is built: see memory_problem.)"""
    for name in SETTINGS:
        check_field(name, getattr(config, name))
    if config.activation != "tanh" and config.cell != "rnn":
        raise ConfigError(f"activation {config.activation} is for the rnn cell; the "
                          f"{config.cell} cell uses tanh")
    held_out = int(config.max_tokens * config.val_fraction)
    if config.val_fraction and config.max_tokens and held_out < config.num_steps + 1:
        raise ConfigError(f"val_fraction {config.val_fraction:g} of {config.max_tokens} tokens "
                          f"holds out {held_out}, too few for one validation sequence of "
                          f"{config.num_steps + 1} tokens")
    return config


# ---- memory ------------------------------------------------------------------------------------

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


def memory_problem(config: TrainConfig, vocab_size: int, free_bytes: int | None,
                   device: str, need: int | None = None) -> str | None:
    """Why the model will not fit in free_bytes (None when it fits or nothing is known); need
    is the model's own estimate (engine.model.estimated_bytes), else the book RNN's."""
    need = estimated_bytes(config, vocab_size) if need is None else need
    if free_bytes is None or need <= 0.8 * free_bytes:
        return None
    return (f"a model with {config.num_hiddens:,} hidden units, batch {config.batch_size} and "
            f"{config.num_steps} steps needs about {human_bytes(need)}, but only "
            f"{human_bytes(free_bytes)} is free on {device}; lower the hidden size or batch size")
