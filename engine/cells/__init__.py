"""The cells, as plug-ins: one module each in the book's style, one registry entry each.

A cell module gives the book's `get_params`, `init_<cell>_state` and `<cell>` (the whole
forward pass of d2l's chapter), built from two pieces the deep model (9.3) stacks:
`get_layer_params` (one layer's parameters, in the book's order) and `<cell>_step` (one time
step of one layer). For the fast path (engine/fast.py) it adds `<cell>_recurrence`, the same
math on inputs projected in advance, and, where a PyTorch kernel computes the book's math,
`fused_weights` and the kernel's name.

Adding a cell: a module like gru.py, its tests, and one line in CELLS.

Naming rule the fast path relies on: a layer's input weights are called W_x*, its hidden
weights W_h*, its biases b_*, each group in the book's gate order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from . import gru, lstm, rnn
from .common import OUTPUT_NAMES, Params, State, Step, output_shapes

Shapes = dict[str, tuple[int, ...]]
# (XW (steps, batch, gates * hiddens), the layer's state, its params) -> (H of every step, state)
Recurrence = Callable[[torch.Tensor, State, Params], tuple[torch.Tensor, State]]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh, "relu": torch.relu}


@dataclass(frozen=True, eq=False)  # eq=False: compared and hashed by identity
class Cell:
    name: str
    title: str                       # as the app shows it, with the book's section
    layer_names: tuple[str, ...]     # one layer's parameters, in the book's order
    layer_shapes: Callable[[int, int], Shapes]          # (num_inputs, num_hiddens)
    num_states: int                  # tensors in a layer's state: (H,) or (H, C)
    get_layer_params: Callable[..., Params]    # (num_inputs, num_hiddens, device, generator)
    get_params: Callable[..., Params]          # the book's: (vocab_size, num_hiddens, device, generator)
    init_state: Callable[[int, int, object], State]     # (batch_size, num_hiddens, device)
    step: Step                       # one step of one layer: the book's equations
    forward: Callable[..., tuple[torch.Tensor, State]]  # the book's (inputs, state, params)
    recurrence: Recurrence           # the fast path's loop over projected inputs
    # The activations this cell can take (the first is the book's); the RNN cell's step,
    # forward and recurrence take the function as `activation=`.
    activations: tuple[str, ...] = ("tanh",)
    # torch._VF kernels that compute the book's math, by activation, and the layer's weights
    # as they take them (w_ih, w_hh, b_ih; b_hh is zero).
    fused: dict[str, str] = field(default_factory=dict)
    fused_weights: Callable[[Params], Params] | None = None
    # A layer's parameters laid out so that fused_weights needs no copy (same values).
    fused_layout: Callable[[Params], Params] | None = None
    # One step's gates by name, for the hidden-units view: GRU's Z, R; LSTM's I, F, O.
    gates: Callable[[torch.Tensor, State, Params], dict[str, torch.Tensor]] | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        """The book's parameter list: the layer's, then W_hq, b_q."""
        return self.layer_names + OUTPUT_NAMES

    def param_shapes(self, num_inputs: int, num_hiddens: int, num_outputs: int) -> Shapes:
        return {**self.layer_shapes(num_inputs, num_hiddens),
                **output_shapes(num_hiddens, num_outputs)}

    @property
    def num_gates(self) -> int:
        """Gates and candidates, one bias each: 1 (RNN), 3 (GRU), 4 (LSTM)."""
        return sum(name.startswith("b_") for name in self.layer_names)


CELLS: dict[str, Cell] = {
    "rnn": Cell("rnn", "RNN (8.5)", rnn.LAYER_NAMES, rnn.layer_shapes, 1, rnn.get_layer_params,
                rnn.get_params, rnn.init_rnn_state, rnn.rnn_step, rnn.rnn, rnn.rnn_recurrence,
                activations=("tanh", "relu"), fused={"tanh": "rnn_tanh", "relu": "rnn_relu"},
                fused_weights=rnn.fused_weights),
    # No fused kernel: PyTorch's GRU resets after the hidden product, the book's before it.
    "gru": Cell("gru", "GRU (9.1)", gru.LAYER_NAMES, gru.layer_shapes, 1, gru.get_layer_params,
                gru.get_params, gru.init_gru_state, gru.gru_step, gru.gru, gru.gru_recurrence,
                gates=gru.gru_gates),
    "lstm": Cell("lstm", "LSTM (9.2)", lstm.LAYER_NAMES, lstm.layer_shapes, 2,
                 lstm.get_layer_params, lstm.get_params, lstm.init_lstm_state, lstm.lstm_step,
                 lstm.lstm, lstm.lstm_recurrence, fused={"tanh": "lstm"},
                 fused_weights=lstm.fused_weights, fused_layout=lstm.fused_layout,
                 gates=lstm.lstm_gates),
}
