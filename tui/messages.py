"""Messages that cross widget boundaries or threads, written as values.

Widgets post requests upward (the app owns the trainer); the trainer's thread answers
through `App.post_message`, which is thread-safe and never blocks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from engine.events import Prediction
from engine.sampling import Sampling


@dataclass
class PredictionRequested(Message):
    """The prompt wants a continuation of `prefix`."""
    prefix: str
    num_preds: int
    sampling: Sampling


@dataclass
class PredictionReady(Message):
    """The trainer answered request `token` (posted from the trainer's thread)."""
    token: int
    prediction: Prediction | None
    error: str | None
    epoch: int


@dataclass
class LiveSettingChanged(Message):
    """A live hyperparameter (config.LIVE_FIELDS) was committed with a valid value."""
    name: str
    value: Any


@dataclass
class RestartRequested(Message):
    """The user asked to restart with the hyperparameter panel's settings."""


@dataclass
class CheckpointSaved(Message):
    """A save asked with `s` finished (posted from the trainer's thread)."""
    path: Any
    error: str | None
    epoch: int | None = None  # the epoch the file holds
