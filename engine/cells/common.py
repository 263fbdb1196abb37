"""What the cells share: the book's initialization, the output layer, the loop through time."""

from __future__ import annotations

from typing import Callable

import torch

Params = list[torch.Tensor]
State = tuple[torch.Tensor, ...]
# One step of one layer: (X (batch, inputs), the layer's state, the layer's params) -> new state.
# The new hidden state H is always the state's first tensor.
Step = Callable[[torch.Tensor, State, Params], State]

OUTPUT_NAMES = ("W_hq", "b_q")


def normal(shape, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """normal(0, 0.01), drawn on the CPU and then moved: one seed, the same model everywhere."""
    return (torch.randn(size=shape, generator=generator) * 0.01).to(device)


def attach_gradients(params: Params) -> Params:
    for param in params:
        param.requires_grad_(True)
    return params


def three_shapes(num_inputs: int, num_hiddens: int) -> tuple[tuple[int, ...], ...]:
    """The shapes of one gate's (W_x*, W_h*, b_*)."""
    return (num_inputs, num_hiddens), (num_hiddens, num_hiddens), (num_hiddens,)


def three(num_inputs: int, num_hiddens: int, device, generator: torch.Generator | None = None
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One gate's (W_x*, W_h*, b_*): normal(0, 0.01) weights, a zero bias (the book's `three()`
    of 9.1 and 9.2, which every cell's layer is made of)."""
    return (normal((num_inputs, num_hiddens), device, generator),
            normal((num_hiddens, num_hiddens), device, generator),
            torch.zeros(num_hiddens, device=device))


def output_shapes(num_hiddens: int, num_outputs: int) -> dict[str, tuple[int, ...]]:
    return {"W_hq": (num_hiddens, num_outputs), "b_q": (num_outputs,)}


def get_output_params(num_hiddens: int, num_outputs: int, device,
                      generator: torch.Generator | None = None) -> Params:
    """The output layer's W_hq, b_q, drawn after the hidden layer's as in the book."""
    W_hq = normal((num_hiddens, num_outputs), device, generator)
    b_q = torch.zeros(num_outputs, device=device)
    return attach_gradients([W_hq, b_q])


def through_time(step: Step, inputs: torch.Tensor, state: State, params: Params
                 ) -> tuple[torch.Tensor, State]:
    """The book's loop: the cell's step on each input, the output layer on each new H.

    inputs: (num_steps, batch_size, num_inputs); params: the layer's, then W_hq, b_q. Returns
    the outputs of all steps stacked as (num_steps * batch_size, num_outputs) and the last state.
    """
    *layer, W_hq, b_q = params
    outputs = []
    for X in inputs:
        state = step(X, state, layer)
        H = state[0]
        Y = torch.mm(H, W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), state


# ---- weights as PyTorch's fused kernels read them (the fast path) -----------------------------

def kernel_layout(*Ws: torch.Tensor) -> Params:
    """The same values as Ws (each (inputs, h)), moved into the rows of one buffer
    [W_1^T; W_2^T; ...], as a fused kernel reads a layer's gates: each W becomes a transposed
    view of its rows, a leaf as before. gate_rows then hands the buffer over without a copy,
    and each gradient comes back in its W's own layout."""
    buffer = torch.cat([W.detach().T for W in Ws])
    h = Ws[0].shape[1]
    return [buffer[k * h:(k + 1) * h].T.detach().requires_grad_(W.requires_grad)
            for k, W in enumerate(Ws)]


def _in_kernel_layout(Ws) -> bool:
    """Whether Ws are, in order, the rows of one buffer (as kernel_layout leaves them)."""
    first = Ws[0]
    n, h = first.shape
    ptr, offset = first.untyped_storage().data_ptr(), first.storage_offset()
    return all(W.shape == (n, h) and W.stride() == (1, n) and W.dtype == first.dtype
               and W.untyped_storage().data_ptr() == ptr and W.storage_offset() == offset + k * h * n
               for k, W in enumerate(Ws))


class _GateRows(torch.autograd.Function):
    """The buffer under Ws (in kernel layout) as one (gates * h, inputs) tensor, no copy."""

    @staticmethod
    def forward(ctx, *Ws):
        n, h = Ws[0].shape
        ctx.h = h
        return Ws[0].as_strided((len(Ws) * h, n), (n, 1), Ws[0].storage_offset())

    @staticmethod
    def backward(ctx, G):
        h = ctx.h
        return tuple(G[k * h:(k + 1) * h].T for k in range(G.shape[0] // h))


def gate_rows(*Ws: torch.Tensor) -> torch.Tensor:
    """[W_1^T; W_2^T; ...]: (gates * h, inputs), contiguous, as a fused kernel takes a layer's
    weights. Without a copy where Ws are in kernel_layout; else one copy (cat of transposes)."""
    if _in_kernel_layout(Ws):
        return _GateRows.apply(*Ws)
    return torch.cat([W.T for W in Ws])
