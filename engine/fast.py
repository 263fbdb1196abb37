"""The fast path (placeholder until the speed work lands: it runs the book's code)."""

from __future__ import annotations

import torch

from .model import RNNModelScratch
from .train import book_train_step


def fast_implementation(device: torch.device):
    from .implementations import Implementation
    return Implementation("fast", "not yet optimized: the book's loop", RNNModelScratch, book_train_step)
