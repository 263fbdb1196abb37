"""The model: the RNN from scratch of d2l 8.5, and any cell of 9.1-9.3 built from a ModelSpec.

`RNNModelScratch` is the book's class: give it a cell's `get_params`, `init_state` and forward
function (the chapter's `rnn` by default). `ModelSpec` names a model with the switches of the
chapter's exercises and the next chapters (cell, layers, embedding input, ReLU);
`param_shapes(spec)` is the one place its parameters' names and shapes are decided, and
`RNNModel(spec)` runs it the book's way. The fast path (engine/fast.py) runs the same spec on
the same parameters, faster.

Parameter names: the cell's, in the book's order (engine/cells). Layer 0 keeps the book's
names; layer l > 0 adds `_l<l>` (W_xh_l1, W_hh_l1, b_h_l1 ...); the output layer W_hq, b_q
sits on the top layer, and an embedded input adds W_emb (vocab_size, embed_size) in front:
    [W_emb,] layer 0's, layer 1's, ..., W_hq, b_q
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.nn import functional as F

from .cells import ACTIVATIONS, CELLS, Cell
from .cells.common import Params, State, get_output_params, output_shapes
from .cells.rnn import get_params, init_rnn_state, rnn  # the chapter's, where they always were

__all__ = ["Params", "State", "get_params", "init_rnn_state", "rnn", "RNNModelScratch",
           "ModelSpec", "param_shapes", "param_names", "get_model_params", "check_params",
           "RNNModel", "INPUTS", "DEFAULT_EMBED_SIZE"]

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


# ---- a model by its switches ------------------------------------------------------------------

INPUTS = ("onehot", "embedding")
DEFAULT_EMBED_SIZE = 32


@dataclass(frozen=True)
class ModelSpec:
    """What shapes a model; the defaults are the book's (8.5). Raises ValueError if invalid."""
    vocab_size: int = 28
    num_hiddens: int = 512
    cell: str = "rnn"              # a key of engine.cells.CELLS
    num_layers: int = 1            # deep RNN (9.3) above 1
    input: str = "onehot"          # or "embedding" (8.5's exercise)
    embed_size: int = DEFAULT_EMBED_SIZE  # used with input="embedding" only
    activation: str = "tanh"       # the RNN cell's; "relu" is 8.5's exercise

    def __post_init__(self):
        problem = spec_problem(self)
        if problem:
            raise ValueError(problem)

    @property
    def input_size(self) -> int:
        """The inputs of layer 0: one-hot vectors or embeddings."""
        return self.embed_size if self.input == "embedding" else self.vocab_size


def model_spec(config, vocab_size: int) -> ModelSpec:
    """The model a TrainConfig names, for a corpus of vocab_size tokens."""
    return ModelSpec(vocab_size, config.num_hiddens, config.cell, config.num_layers,
                     config.input, config.embed_size, config.activation)


def spec_problem(spec: ModelSpec) -> str | None:
    """Why `spec` names no model (one line), or None."""
    for name in ("vocab_size", "num_hiddens", "num_layers", "embed_size"):
        value = getattr(spec, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return f"{name} must be a positive integer, got {value!r}"
    for name, choices in (("cell", CELLS), ("input", INPUTS), ("activation", ACTIVATIONS)):
        if getattr(spec, name) not in choices:
            return f"{name} must be one of {', '.join(choices)}, got {getattr(spec, name)!r}"
    cell = CELLS[spec.cell]
    if spec.activation not in cell.activations:
        return (f"activation {spec.activation!r} is for the rnn cell; the {spec.cell} cell "
                f"uses {', '.join(cell.activations)}")
    return None


def layer_param_name(name: str, layer: int) -> str:
    """Layer 0 keeps the book's names; deeper layers' get `_l1`, `_l2`, ..."""
    return name if layer == 0 else f"{name}_l{layer}"


def param_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the model's order (see the module's docstring)."""
    cell, h = CELLS[spec.cell], spec.num_hiddens
    shapes: dict[str, tuple[int, ...]] = {}
    if spec.input == "embedding":
        shapes["W_emb"] = (spec.vocab_size, spec.embed_size)
    for layer in range(spec.num_layers):
        num_inputs = spec.input_size if layer == 0 else h
        for name, shape in cell.layer_shapes(num_inputs, h).items():
            shapes[layer_param_name(name, layer)] = shape
    shapes.update(output_shapes(h, spec.vocab_size))
    return shapes


def param_names(spec: ModelSpec) -> tuple[str, ...]:
    return tuple(param_shapes(spec))


def num_params(spec: ModelSpec) -> int:
    return sum(math.prod(shape) for shape in param_shapes(spec).values())


def get_embedding(vocab_size: int, embed_size: int, device,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """W_emb: a row per token, normal(0, 1) as torch.nn.Embedding draws it; drawn on the CPU."""
    return torch.randn((vocab_size, embed_size), generator=generator).to(device).requires_grad_(True)


def get_model_params(spec: ModelSpec, device, generator: torch.Generator | None = None) -> Params:
    """The parameters of `spec`, in param_shapes' order, drawn in that order.

    The book's spec draws exactly what the chapter's get_params draws, so a seed gives the same
    model as before; every layer is its cell's get_layer_params (normal(0, 0.01), zero biases).
    """
    cell, h = CELLS[spec.cell], spec.num_hiddens
    params: Params = []
    if spec.input == "embedding":
        params.append(get_embedding(spec.vocab_size, spec.embed_size, device, generator))
    for layer in range(spec.num_layers):
        num_inputs = spec.input_size if layer == 0 else h
        params += cell.get_layer_params(num_inputs, h, device, generator)
    return params + get_output_params(h, spec.vocab_size, device, generator)


def check_params(spec: ModelSpec, params: Sequence[torch.Tensor]) -> None:
    """ValueError unless `params` are `spec`'s, in order, with the right shapes."""
    shapes = param_shapes(spec)
    if len(params) != len(shapes):
        raise ValueError(f"a {spec.cell} model of this shape has {len(shapes)} parameters "
                         f"({', '.join(shapes)}), got {len(params)}")
    for (name, shape), p in zip(shapes.items(), params):
        if tuple(p.shape) != shape:
            raise ValueError(f"parameter {name} has shape {tuple(p.shape)}; the model needs "
                             f"{shape}")


def split_params(spec: ModelSpec, params: Sequence[torch.Tensor]
                 ) -> tuple[torch.Tensor | None, list[Params], Params]:
    """(W_emb or None, each layer's parameters, [W_hq, b_q])."""
    first = 1 if spec.input == "embedding" else 0
    n = len(CELLS[spec.cell].layer_names)
    layers = [list(params[first + i * n:first + (i + 1) * n]) for i in range(spec.num_layers)]
    return (params[0] if first else None), layers, list(params[-2:])


def split_state(spec: ModelSpec, state: State) -> list[State]:
    """The flat state as each layer's: (H,) or (H, C) per layer."""
    n = CELLS[spec.cell].num_states
    if len(state) != n * spec.num_layers:
        raise ValueError(f"a state of {len(state)} tensors; this model's has "
                         f"{n * spec.num_layers}")
    return [tuple(state[i * n:(i + 1) * n]) for i in range(spec.num_layers)]


def cell_options(spec: ModelSpec) -> dict:
    """What the cell's functions take beyond the book's arguments: a non-default activation."""
    cell = CELLS[spec.cell]
    return {} if spec.activation == cell.activations[0] else {
        "activation": ACTIVATIONS[spec.activation]}


class RNNModel:
    """The model `spec` names, on the book's path: the cell's own equations, step by step.

    One layer runs the chapter's function itself (`rnn`, `gru`, `lstm`); deeper models stack
    layers as d2l 9.3 does, each layer's hidden states the next one's inputs, and W_hq, b_q on
    the top one. The state is the layers' states one after another, flat ((H,) or (H, C) per
    layer), so `tuple(s.detach() for s in state)` works for every model.
    """

    def __init__(self, spec: ModelSpec, device, params: Sequence[torch.Tensor] | None = None,
                 generator: torch.Generator | None = None):
        self.spec, self.cell = spec, CELLS[spec.cell]
        self.vocab_size, self.num_hiddens = spec.vocab_size, spec.num_hiddens
        self.device = torch.device(device)
        if params is None:
            params = get_model_params(spec, device, generator)
        check_params(spec, params)
        self.params = list(params)
        self.options = cell_options(spec)

    def embed(self, X: torch.Tensor) -> torch.Tensor:
        """Token indices (batch, steps) -> inputs (steps, batch, one-hot or embedding)."""
        W_emb, _, (_, b_q) = split_params(self.spec, self.params)
        if W_emb is None:
            return F.one_hot(X.T, self.vocab_size).to(b_q.dtype)
        return F.embedding(X.T, W_emb)

    def __call__(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """X: token indices (batch_size, num_steps) -> Y (num_steps * batch_size, vocab_size)."""
        inputs = self.embed(X)
        _, layers, output = split_params(self.spec, self.params)
        if self.spec.num_layers == 1:  # the chapter's own function
            return self.cell.forward(inputs, tuple(state), layers[0] + output, **self.options)
        new_state: list[torch.Tensor] = []
        for layer, layer_state in zip(layers, split_state(self.spec, state)):
            Hs = []
            for X_t in inputs:
                layer_state = self.cell.step(X_t, layer_state, layer, **self.options)
                Hs.append(layer_state[0])
            inputs = Hs
            new_state.extend(layer_state)
        W_hq, b_q = output
        return torch.cat([torch.mm(H, W_hq) + b_q for H in inputs], dim=0), tuple(new_state)

    @property
    def state_names(self) -> tuple[str, ...]:
        """The flat state's parts: H (and C for an LSTM) per layer, deeper ones suffixed."""
        parts = ("H", "C")[: self.cell.num_states]
        return tuple(layer_param_name(p, layer) for layer in range(self.spec.num_layers)
                     for p in parts)

    def gates(self, X: torch.Tensor, state: State) -> dict[str, torch.Tensor]:
        """The first layer's gates at the first step of X, from `state` (none for the RNN)."""
        if self.cell.gates is None:
            return {}
        _, layers, _ = split_params(self.spec, self.params)
        return self.cell.gates(self.embed(X)[0], split_state(self.spec, state)[0], layers[0])

    def begin_state(self, batch_size: int, device=None) -> State:
        return tuple(s for _ in range(self.spec.num_layers)
                     for s in self.cell.init_state(batch_size, self.num_hiddens,
                                                   device or self.device))

    def parameters(self) -> Params:
        return self.params


def estimated_bytes(spec: ModelSpec, batch_size: int, num_steps: int) -> int:
    """Rough float32 footprint of training: parameters, their gradients, and a batch's
    activations (per token and layer, each gate's and each state tensor's values; then the
    outputs). For the book's spec, what engine.config.estimated_bytes has always said."""
    cell, h, v = CELLS[spec.cell], spec.num_hiddens, spec.vocab_size
    per_token = spec.num_layers * (cell.num_gates + cell.num_states) * h + 2 * v
    if spec.input == "embedding":
        per_token += spec.embed_size
    return 4 * (2 * num_params(spec) + 2 * num_steps * batch_size * per_token)
