"""The RNN from scratch (d2l 8.5): parameters, state, the per-step recurrence, the model."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.nn import functional as F

Params = list[torch.Tensor]
State = tuple[torch.Tensor, ...]


def get_params(vocab_size: int, num_hiddens: int, device, generator: torch.Generator | None = None
               ) -> Params:
    """W_xh, W_hh, b_h, W_hq, b_q: normal(0, 0.01) weights, zero biases.

    Drawn on the CPU and then moved, so one seed gives the same model on every device.
    """
    num_inputs = num_outputs = vocab_size

    def normal(shape):
        return (torch.randn(size=shape, generator=generator) * 0.01).to(device)

    # Hidden layer parameters
    W_xh = normal((num_inputs, num_hiddens))
    W_hh = normal((num_hiddens, num_hiddens))
    b_h = torch.zeros(num_hiddens, device=device)
    # Output layer parameters
    W_hq = normal((num_hiddens, num_outputs))
    b_q = torch.zeros(num_outputs, device=device)
    params = [W_xh, W_hh, b_h, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)
    return params


def init_rnn_state(batch_size: int, num_hiddens: int, device) -> State:
    """The hidden state starts at zero; a tuple because other cells (LSTM) carry two tensors."""
    return (torch.zeros((batch_size, num_hiddens), device=device),)


def rnn(inputs: torch.Tensor, state: State, params: Params) -> tuple[torch.Tensor, State]:
    """One step at a time: H = tanh(X W_xh + H W_hh + b_h), Y = H W_hq + b_q.

    inputs: (num_steps, batch_size, vocab_size) one-hot. Returns the outputs of all steps
    stacked as (num_steps * batch_size, vocab_size) and the final state.
    """
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
        Y = torch.mm(H, W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


ForwardFn = Callable[[torch.Tensor, State, Params], tuple[torch.Tensor, State]]


class RNNModelScratch:
    """An RNN model implemented from scratch: holds the parameters, one-hot encodes the input."""

    def __init__(self, vocab_size: int, num_hiddens: int, device, get_params=get_params,
                 init_state=init_rnn_state, forward_fn: ForwardFn = rnn,
                 params: Sequence[torch.Tensor] | None = None,
                 generator: torch.Generator | None = None):
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.device = torch.device(device)
        self.params = list(params) if params is not None else get_params(
            vocab_size, num_hiddens, device, generator)
        self.init_state, self.forward_fn = init_state, forward_fn

    def __call__(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """X: token indices of shape (batch_size, num_steps)."""
        X = F.one_hot(X.T, self.vocab_size).type(torch.float32)
        return self.forward_fn(X, state, self.params)

    def begin_state(self, batch_size: int, device=None) -> State:
        return self.init_state(batch_size, self.num_hiddens, device or self.device)

    def parameters(self) -> Params:
        return self.params
