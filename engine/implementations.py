"""The two implementations of every model, behind one interface.

`book` is the chapters as written (one-hot products, the cell's per-step equations, the
book's clipping and SGD): the reference and the thing to read. `fast` computes the same math
on the same parameter tensors, faster (engine/fast.py). Tests prove they agree.

    make_model(spec, device, impl)          a model of ModelSpec `spec` ("book" or "fast")
    get_implementation(name, device, spec)  its train step, its label, a model maker
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from . import fast
from .model import ModelSpec, RNNModel, State
from .train import book_train_step

TrainStep = Callable[..., tuple[torch.Tensor, torch.Tensor, State]]
IMPLEMENTATIONS = ("fast", "book")


@dataclass(frozen=True)
class Implementation:
    name: str
    detail: str  # which route runs, e.g. "oneDNN fused kernels" or "plain PyTorch fallback"
    # (vocab_size, num_hiddens, device, params=, generator=): `spec`'s model at those sizes
    make_model: Callable[..., RNNModel]
    train_step: TrainStep  # (net, X, Y, state, lr, clip) -> (loss_sum, grad_norm, state)
    spec: ModelSpec = ModelSpec()  # the kind of model it makes (its route was chosen for)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.detail})"


def book_implementation(spec: ModelSpec | None = None) -> Implementation:
    spec = spec or ModelSpec()

    def make_model(vocab_size, num_hiddens, device, params=None, generator=None):
        return RNNModel(dataclasses.replace(spec, vocab_size=vocab_size, num_hiddens=num_hiddens),
                        device, params=params, generator=generator)

    return Implementation("book", "the chapter's loop", make_model, book_train_step, spec)


BOOK = book_implementation()


def fast_implementation(device, spec: ModelSpec | None = None) -> Implementation:
    """engine.fast's models for `spec`'s kind (the book's by default), on the route chosen once
    for this device."""
    spec = spec or ModelSpec()
    route = fast.choose_route(device, spec)

    def make_model(vocab_size, num_hiddens, device, params=None, generator=None):
        return fast.RNNModelFast(dataclasses.replace(spec, vocab_size=vocab_size,
                                                     num_hiddens=num_hiddens),
                                 device, route, params=params, generator=generator)

    return Implementation("fast", route.detail, make_model, fast.fast_train_step, spec)


def get_implementation(name: str, device: torch.device, spec: ModelSpec | None = None
                       ) -> Implementation:
    """The implementation called `name` for `spec`'s kind of model (the book's by default),
    with its route chosen once for this device."""
    if name == "book":
        return BOOK if spec is None else book_implementation(spec)
    if name == "fast":
        return fast_implementation(device, spec)
    raise ValueError(f"unknown implementation {name!r}; choose 'fast' or 'book'")


def make_model(spec: ModelSpec, device, impl: str = "fast",
               params: Sequence[torch.Tensor] | None = None,
               generator: torch.Generator | None = None) -> RNNModel:
    """The model `spec` names, on implementation `impl`: with `params` (in param_shapes(spec)'s
    order; checked) or fresh ones drawn from `generator`."""
    return get_implementation(impl, torch.device(device), spec).make_model(
        spec.vocab_size, spec.num_hiddens, device, params=params, generator=generator)
