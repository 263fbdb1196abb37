"""The gated recurrent unit of d2l 9.1.

    Z = sigmoid(X W_xz + H W_hz + b_z)           update gate
    R = sigmoid(X W_xr + H W_hr + b_r)           reset gate
    H~ = tanh(X W_xh + (R * H) W_hh + b_h)       candidate: the reset comes BEFORE the product
    H = Z * H + (1 - Z) * H~

PyTorch's and cuDNN's GRU reset after the product (r * (h W_hn + b_hn)): another model, so no
fused kernel computes this one; the fast path is a loop of its own (gru_recurrence).
"""

from __future__ import annotations

import torch

from .common import (Params, State, attach_gradients, get_output_params, three, three_shapes,
                     through_time)

LAYER_NAMES = ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h")


def layer_shapes(num_inputs: int, num_hiddens: int) -> dict[str, tuple[int, ...]]:
    return dict(zip(LAYER_NAMES, three_shapes(num_inputs, num_hiddens) * 3))


def get_layer_params(num_inputs: int, num_hiddens: int, device,
                     generator: torch.Generator | None = None) -> Params:
    sizes = (num_inputs, num_hiddens, device, generator)
    W_xz, W_hz, b_z = three(*sizes)  # Update gate parameters
    W_xr, W_hr, b_r = three(*sizes)  # Reset gate parameters
    W_xh, W_hh, b_h = three(*sizes)  # Candidate hidden state parameters
    return attach_gradients([W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h])


def get_params(vocab_size: int, num_hiddens: int, device, generator: torch.Generator | None = None
               ) -> Params:
    """The book's eleven: the three gates' (W_x*, W_h*, b_*), then W_hq, b_q."""
    num_inputs = num_outputs = vocab_size
    return (get_layer_params(num_inputs, num_hiddens, device, generator)
            + get_output_params(num_hiddens, num_outputs, device, generator))


def init_gru_state(batch_size: int, num_hiddens: int, device) -> State:
    return (torch.zeros((batch_size, num_hiddens), device=device),)


def gru_step(X: torch.Tensor, state: State, params: Params) -> State:
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h = params
    H, = state
    Z = torch.sigmoid((X @ W_xz) + (H @ W_hz) + b_z)
    R = torch.sigmoid((X @ W_xr) + (H @ W_hr) + b_r)
    H_tilde = torch.tanh((X @ W_xh) + ((R * H) @ W_hh) + b_h)
    H = Z * H + (1 - Z) * H_tilde
    return (H,)


def gru_gates(X: torch.Tensor, state: State, params: Params) -> dict[str, torch.Tensor]:
    """The update gate Z and the reset gate R of one step (for looking inside the model)."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r = params[:6]
    H, = state
    return {"Z": torch.sigmoid((X @ W_xz) + (H @ W_hz) + b_z),
            "R": torch.sigmoid((X @ W_xr) + (H @ W_hr) + b_r)}


def gru(inputs: torch.Tensor, state: State, params: Params) -> tuple[torch.Tensor, State]:
    """The book's gru: inputs (num_steps, batch_size, vocab_size) one-hot."""
    return through_time(gru_step, inputs, state, params)


# ---- the fast path's loop (engine/fast.py): the same math on inputs projected in advance ------

def gru_recurrence(XW: torch.Tensor, state: State, params: Params) -> tuple[torch.Tensor, State]:
    """The GRU on XW = X [W_xz|W_xr|W_xh] + [b_z|b_r|b_h] of all steps, (steps, batch, 3h).

    Z and R share one product of H with [W_hz|W_hr]; the candidate's product needs R * H first,
    so it stays apart. With gradients on, the loop runs in GRURecurrence (a backward written
    by hand); without, as plain PyTorch: generation, a step a call, measured faster so than
    through the Function's buffers.
    """
    _, W_hz, _, _, W_hr, _, _, W_hh, _ = params
    H, = state
    if torch.is_grad_enabled():
        Hs = GRURecurrence.apply(XW, H, W_hz, W_hr, W_hh)
        return Hs, (Hs[-1],)
    num_hiddens = H.shape[1]
    W_hzr = torch.cat([W_hz, W_hr], dim=1)
    outputs = []
    for xw in XW.unbind(0):
        xzr, xh = xw.split([2 * num_hiddens, num_hiddens], dim=1)
        Z, R = torch.sigmoid(torch.addmm(xzr, H, W_hzr)).chunk(2, dim=1)
        H_tilde = torch.tanh(torch.addmm(xh, R * H, W_hh))
        H = torch.lerp(H_tilde, H, Z)  # Z * H + (1 - Z) * H~
        outputs.append(H)
    return torch.stack(outputs), (H,)


_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
_tanh_backward = torch.ops.aten.tanh_backward.grad_input


class GRURecurrence(torch.autograd.Function):
    """gru_recurrence's loop with its backward written out: fewer, in-place operations per
    step than autograd records, and the hidden weights' gradients as one product each at the
    end (every step's inputs times every step's gradients) instead of one small product per
    step. The same math: the tests compare it with autograd on the book's gru.

    Forward, per step: ZR = sigmoid(XW_zr + H [W_hz|W_hr]), RH = R * H,
    H~ = tanh(XW_h + RH W_hh), H' = Z * H + (1 - Z) * H~.
    Backward, per step, from dH' (the output's gradient plus the next step's):
    dA_h = dH' (1 - Z) (1 - H~^2), dRH = dA_h W_hh^T,
    dA_z = dH' (H - H~) Z (1 - Z), dA_r = dRH H R (1 - R),
    dH = dH' Z + dRH R + [dA_z|dA_r] [W_hz|W_hr]^T.
    """

    @staticmethod
    def forward(ctx, XW, H0, W_hz, W_hr, W_hh):
        num_steps, batch_size = XW.shape[:2]
        num_hiddens = H0.shape[1]
        W_hzr = torch.cat([W_hz, W_hr], dim=1)
        Hs = XW.new_empty(num_steps + 1, batch_size, num_hiddens)  # Hs[t]: H before step t
        ZR = XW.new_empty(num_steps, batch_size, 2 * num_hiddens)
        RH = XW.new_empty(num_steps, batch_size, num_hiddens)
        H_tilde = XW.new_empty(num_steps, batch_size, num_hiddens)
        Hs[0] = H0
        XW_zr, XW_h = XW.split([2 * num_hiddens, num_hiddens], dim=2)
        for t in range(num_steps):
            H = Hs[t]
            torch.addmm(XW_zr[t], H, W_hzr, out=ZR[t]).sigmoid_()
            Z, R = ZR[t].chunk(2, dim=1)
            torch.mul(R, H, out=RH[t])
            torch.addmm(XW_h[t], RH[t], W_hh, out=H_tilde[t]).tanh_()
            torch.lerp(H_tilde[t], H, Z, out=Hs[t + 1])  # Z * H + (1 - Z) * H~
        ctx.save_for_backward(Hs, ZR, RH, H_tilde, W_hzr, W_hh)
        return Hs[1:]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dHs):
        Hs, ZR, RH, H_tilde, W_hzr, W_hh = ctx.saved_tensors
        num_steps, batch_size, num_hiddens = H_tilde.shape
        dA_zr = torch.empty_like(ZR)     # the gates' pre-activation gradients, every step
        dA_h = torch.empty_like(H_tilde)
        dH = torch.zeros_like(Hs[0])     # what reaches H from the steps after
        for t in range(num_steps - 1, -1, -1):
            dH += dHs[t]
            H, Z, R = Hs[t], *ZR[t].chunk(2, dim=1)
            dA_z, dA_r = dA_zr[t].chunk(2, dim=1)
            # the candidate: dH (1 - Z), through tanh
            _tanh_backward(torch.addcmul(dH, dH, Z, value=-1), H_tilde[t], grad_input=dA_h[t])
            dRH = torch.mm(dA_h[t], W_hh.T)
            _sigmoid_backward(dH * (H - H_tilde[t]), Z, grad_input=dA_z)
            _sigmoid_backward(dRH * H, R, grad_input=dA_r)
            dH = torch.addcmul(dH * Z, dRH, R).addmm_(dA_zr[t], W_hzr.T)
        dW_hzr = torch.mm(Hs[:-1].flatten(0, 1).T, dA_zr.flatten(0, 1))
        dW_hh = torch.mm(RH.flatten(0, 1).T, dA_h.flatten(0, 1))
        dW_hz, dW_hr = dW_hzr.split(num_hiddens, dim=1)
        return torch.cat([dA_zr, dA_h], dim=2), dH, dW_hz, dW_hr, dW_hh
