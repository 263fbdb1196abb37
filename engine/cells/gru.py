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
    so it stays apart.
    """
    _, W_hz, _, _, W_hr, _, _, W_hh, _ = params
    H, = state
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
