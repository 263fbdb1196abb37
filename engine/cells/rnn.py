"""The RNN of d2l 8.5: H_t = phi(X_t W_xh + H_{t-1} W_hh + b_h), Y_t = H_t W_hq + b_q.

phi is tanh in the book; ReLU is the chapter's exercise (`activation=torch.relu`).
"""

from __future__ import annotations

import torch

from .common import (Params, State, attach_gradients, get_output_params, three, three_shapes,
                     through_time)

LAYER_NAMES = ("W_xh", "W_hh", "b_h")


def layer_shapes(num_inputs: int, num_hiddens: int) -> dict[str, tuple[int, ...]]:
    return dict(zip(LAYER_NAMES, three_shapes(num_inputs, num_hiddens)))


def get_layer_params(num_inputs: int, num_hiddens: int, device,
                     generator: torch.Generator | None = None) -> Params:
    """The hidden layer: W_xh, W_hh normal(0, 0.01), b_h zero."""
    W_xh, W_hh, b_h = three(num_inputs, num_hiddens, device, generator)
    return attach_gradients([W_xh, W_hh, b_h])


def get_params(vocab_size: int, num_hiddens: int, device, generator: torch.Generator | None = None
               ) -> Params:
    """W_xh, W_hh, b_h, W_hq, b_q: normal(0, 0.01) weights, zero biases.

    Drawn on the CPU and then moved, so one seed gives the same model on every device.
    """
    num_inputs = num_outputs = vocab_size
    return (get_layer_params(num_inputs, num_hiddens, device, generator)
            + get_output_params(num_hiddens, num_outputs, device, generator))


def init_rnn_state(batch_size: int, num_hiddens: int, device) -> State:
    """The hidden state starts at zero; a tuple because other cells (LSTM) carry two tensors."""
    return (torch.zeros((batch_size, num_hiddens), device=device),)


def rnn_step(X: torch.Tensor, state: State, params: Params, activation=torch.tanh) -> State:
    """One time step of the hidden layer."""
    W_xh, W_hh, b_h = params
    H, = state
    H = activation(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
    return (H,)


def rnn(inputs: torch.Tensor, state: State, params: Params, activation=torch.tanh
        ) -> tuple[torch.Tensor, State]:
    """One step at a time: H = tanh(X W_xh + H W_hh + b_h), Y = H W_hq + b_q.

    inputs: (num_steps, batch_size, vocab_size) one-hot. Returns the outputs of all steps
    stacked as (num_steps * batch_size, vocab_size) and the final state.
    """
    def step(X, state, layer):
        return rnn_step(X, state, layer, activation)
    return through_time(step, inputs, state, params)


# ---- the fast path's loop (engine/fast.py): the same math on inputs projected in advance ------

def rnn_recurrence(XW: torch.Tensor, state: State, params: Params, activation=torch.tanh
                   ) -> tuple[torch.Tensor, State]:
    """H_t = phi(XW_t + H_{t-1} W_hh) for XW = X W_xh + b_h of all steps: (steps, batch, h).

    Returns the H of every step, stacked, and the last state. With gradients on, the loop
    runs in RNNRecurrence (a backward written by hand); without, as plain PyTorch: generation,
    a step a call, measured faster so than through the Function's buffers.
    """
    _, W_hh, _ = params
    H, = state
    if torch.is_grad_enabled() and activation in RNNRecurrence.ACTIVATIONS:
        Hs = RNNRecurrence.apply(XW, H, W_hh, RNNRecurrence.ACTIVATIONS[activation])
        return Hs, (Hs[-1],)
    outputs = []
    # unbind, not XW[t]: indexing would make autograd zero-fill a full-size buffer every step.
    for xw in XW.unbind(0):
        H = activation(torch.addmm(xw, H, W_hh))
        outputs.append(H)
    return torch.stack(outputs), (H,)


def _relu_backward(grad, output, grad_input):
    return torch.ops.aten.threshold_backward.grad_input(grad, output, 0.0, grad_input=grad_input)


class RNNRecurrence(torch.autograd.Function):
    """rnn_recurrence's loop with its backward written out: per step one product and the
    activation in place, forward and backward, and the gradient of W_hh as one product at
    the end (every step's H_{t-1} times every step's dA_t) instead of one per step.

    Backward, per step: dA_t = dH_t * phi'(A_t) (from H_t: 1 - H_t^2 for tanh, H_t > 0 for
    ReLU), dH_{t-1} = dA_t W_hh^T, added to what the output gives H_{t-1}.
    """
    # activation -> (its in-place form's name, its backward from the output)
    ACTIVATIONS = {torch.tanh: ("tanh_", torch.ops.aten.tanh_backward.grad_input),
                   torch.relu: ("relu_", _relu_backward)}

    @staticmethod
    def forward(ctx, XW, H0, W_hh, activation):
        in_place, ctx.backward_fn = activation
        num_steps, batch_size, num_hiddens = XW.shape
        Hs = XW.new_empty(num_steps + 1, batch_size, num_hiddens)  # Hs[t]: H before step t
        Hs[0] = H0
        for t in range(num_steps):
            getattr(torch.addmm(XW[t], Hs[t], W_hh, out=Hs[t + 1]), in_place)()
        ctx.save_for_backward(Hs, W_hh)
        return Hs[1:]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dHs):
        Hs, W_hh = ctx.saved_tensors
        dA = torch.empty_like(dHs)       # the pre-activation's gradient, every step
        dH = torch.zeros_like(Hs[0])     # what reaches H from the steps after
        for t in range(dHs.shape[0] - 1, -1, -1):
            dH += dHs[t]
            ctx.backward_fn(dH, Hs[t + 1], grad_input=dA[t])
            dH = torch.mm(dA[t], W_hh.T)
        dW_hh = torch.mm(Hs[:-1].flatten(0, 1).T, dA.flatten(0, 1))
        return dA, dH, dW_hh, None



def fused_weights(params: Params) -> Params:
    """The layer as torch._VF.rnn_tanh / rnn_relu take it: w_ih, w_hh (transposed), b_ih."""
    W_xh, W_hh, b_h = params
    return [W_xh.T, W_hh.T, b_h]
