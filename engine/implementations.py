"""The two implementations of one model, behind one interface.

`book` is the chapter as written (one-hot products, the per-step `rnn`, the book's clipping
and SGD): the reference and the thing to read. `fast` computes the same math on the same five
parameter tensors, faster (engine/fast.py). Tests prove they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .model import RNNModelScratch, State
from .train import book_train_step

TrainStep = Callable[..., tuple[torch.Tensor, torch.Tensor, State]]


@dataclass(frozen=True)
class Implementation:
    name: str
    detail: str  # which route runs, e.g. "oneDNN fused kernels" or "plain PyTorch fallback"
    make_model: Callable[..., RNNModelScratch]  # (vocab_size, num_hiddens, device, params=, generator=)
    train_step: TrainStep  # (net, X, Y, state, lr, clip) -> (loss_sum, grad_norm, state)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.detail})"


BOOK = Implementation("book", "the chapter's loop", RNNModelScratch, book_train_step)


def get_implementation(name: str, device: torch.device) -> Implementation:
    """The implementation called `name`, with its route chosen once for this device."""
    if name == "book":
        return BOOK
    if name == "fast":
        from .fast import fast_implementation
        return fast_implementation(device)
    raise ValueError(f"unknown implementation {name!r}; choose 'fast' or 'book'")
