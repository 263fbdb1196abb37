"""What the UI reads from a run: its state, snapshots and events, as plain values.

No torch here: widgets import this module, and the app draws its first frame before torch
is loaded. The Trainer (engine/trainer.py) publishes these, and answers the prompt with a
Prediction (engine/generate.py makes it); nothing else makes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RunState(str, enum.Enum):
    READY = "ready"
    TRAINING = "training"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    ERROR = "error"


@dataclass(frozen=True)
class Sample:
    epoch: int
    prefix: str
    text: str  # the continuation only
    memorized: float | None = None  # share of its 20-character windows found in the training text


@dataclass(frozen=True)
class Snapshot:
    """What the UI shows, as plain values; a new object each time, never mutated."""
    state: RunState = RunState.READY
    epoch: int = 0                 # completed epochs
    epochs: int = 0
    batch: int = 0                 # batches done in the current epoch
    batches_per_epoch: int = 0
    perplexity: float | None = None          # of the last completed epoch
    history: tuple[float, ...] = ()          # perplexity per epoch, downsampled by history_stride
    history_stride: int = 1
    tokens_per_sec: float = 0.0
    loss: float | None = None                # mean loss of the latest batch read
    grad_norm: float | None = None           # before clipping, latest batch read
    lr: float = 0.0
    clip: float = 0.0
    sample_every: int = 0
    predict_len: int = 0
    prefixes: tuple[str, ...] = ()
    sampling: str = "greedy"                 # engine.sampling's text form
    lr_schedule: str = "none"
    samples: tuple[Sample, ...] = ()         # newest first
    elapsed: float = 0.0                     # training seconds, pauses excluded
    message: str = ""
    threads: int = 0                         # torch threads training uses (0: not known)
    val_perplexity: float | None = None      # on the held-out tokens, after the last epoch
    val_history: tuple[float, ...] = ()      # per epoch as history (empty: nothing held out)

    @property
    def eta(self) -> float | None:
        done = self.epoch + (self.batch / self.batches_per_epoch if self.batches_per_epoch else 0)
        if done <= 0 or self.state not in (RunState.TRAINING, RunState.PAUSED):
            return None
        return self.elapsed / done * max(0.0, self.epochs - done)


@dataclass(frozen=True)
class RunInfo:
    """Facts that do not change during a run."""
    corpus: str
    num_chars: int
    num_tokens: int
    vocab_size: int
    device: str
    impl: str
    num_params: int
    notice: str | None = None
    threads: str = ""   # how torch's thread count is chosen, e.g. "1 thread (--threads 1)"
    val_tokens: int = 0   # of num_tokens, held out at the end for validation
    # Letters the preprocessing dropped (engine.data.dropped_notice), or None.
    dropped: str | None = None


# What a run keeps of its past (the trainer and a watcher alike): per-epoch points, beyond
# which the history is halved, and sample rounds, newest first.
MAX_HISTORY = 4096
MAX_SAMPLES = 50


# Events, in the order they happen; drained by the UI or passed to on_event.
@dataclass(frozen=True)
class Started:
    info: RunInfo
    epoch: int          # completed epochs so far: 0, or where a resumed run picks up


@dataclass(frozen=True)
class EpochDone:
    epoch: int
    perplexity: float
    tokens_per_sec: float
    lr: float = 0.0
    clip: float = 0.0
    grad_norm: float | None = None   # of the epoch's last batch, before clipping
    elapsed: float = 0.0             # training seconds so far
    threads: int = 0                 # torch threads the epoch ran with
    val_perplexity: float | None = None   # on the held-out tokens (None: none held out)


@dataclass(frozen=True)
class SampleReady:
    epoch: int
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class SettingChanged:
    epoch: int
    name: str
    old: object
    new: object


@dataclass(frozen=True)
class Finished:
    epoch: int
    perplexity: float | None
    tokens_per_sec: float


@dataclass(frozen=True)
class Stopped:
    epoch: int          # completed epochs when stop() took effect


@dataclass(frozen=True)
class Diverged:
    epoch: int
    batch: int
    message: str


@dataclass(frozen=True)
class Failed:
    message: str


@dataclass(frozen=True)
class Notice:
    message: str
    topic: str = "corpus"   # or "threads"


Event = Started | EpochDone | SampleReady | SettingChanged | Finished | Stopped | Diverged | Failed | Notice


@dataclass(frozen=True)
class Prediction:
    prefix: str                     # the prefix as the model saw it
    text: str                       # the generated continuation only
    unknown: tuple[tuple[int, str], ...] = ()   # (position, character) not in the vocabulary
    top: tuple[tuple[str, float], ...] = ()     # most likely next characters after the prefix
    truncated: int = 0              # characters dropped from the front of a long prefix
    note: str = ""                  # how the prefix was read, e.g. lower-cased for the model
    probs: tuple[float, ...] = ()   # the model's probability of each character of `text`

    @property
    def full(self) -> str:
        return self.prefix + self.text
