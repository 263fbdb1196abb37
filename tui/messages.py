"""Messages that cross widget boundaries or threads.

Widgets post requests upward (the app owns the trainer); the trainer's thread answers
through `App.post_message`, which is thread-safe and never blocks it.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from engine.generate import Prediction


class PredictionRequested(Message):
    """The prompt wants a continuation of `prefix`."""

    def __init__(self, prefix: str, num_preds: int, temperature: float) -> None:
        super().__init__()
        self.prefix = prefix
        self.num_preds = num_preds
        self.temperature = temperature


class PredictionReady(Message):
    """The trainer answered request `token` (posted from the trainer's thread)."""

    def __init__(self, token: int, prediction: Prediction | None, error: str | None,
                 epoch: int) -> None:
        super().__init__()
        self.token = token
        self.prediction = prediction
        self.error = error
        self.epoch = epoch


class LiveSettingChanged(Message):
    """A live hyperparameter (config.LIVE_FIELDS) was committed with a valid value."""

    def __init__(self, name: str, value: Any) -> None:
        super().__init__()
        self.name = name
        self.value = value


class RestartRequested(Message):
    """The user asked to restart with the hyperparameter panel's settings."""


class CheckpointSaved(Message):
    """A save asked with `s` finished (posted from the trainer's thread)."""

    def __init__(self, path: Any, error: str | None) -> None:
        super().__init__()
        self.path = path
        self.error = error
