"""Long short-term memory, d2l 9.2.

    I = sigmoid(X W_xi + H W_hi + b_i)           input gate
    F = sigmoid(X W_xf + H W_hf + b_f)           forget gate
    O = sigmoid(X W_xo + H W_ho + b_o)           output gate
    C~ = tanh(X W_xc + H W_hc + b_c)             candidate memory cell
    C = F * C + I * C~,  H = O * tanh(C)

This is the LSTM PyTorch's kernels compute (gates in the order i, f, g = C~, o, and a second
bias that is zero here), so the fast path may run them: see fused_weights.
"""

from __future__ import annotations

import torch

from .common import (Params, State, attach_gradients, gate_rows, get_output_params,
                     kernel_layout, three, three_shapes, through_time)

LAYER_NAMES = ("W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f", "W_xo", "W_ho", "b_o",
               "W_xc", "W_hc", "b_c")


def layer_shapes(num_inputs: int, num_hiddens: int) -> dict[str, tuple[int, ...]]:
    return dict(zip(LAYER_NAMES, three_shapes(num_inputs, num_hiddens) * 4))


def get_layer_params(num_inputs: int, num_hiddens: int, device,
                     generator: torch.Generator | None = None) -> Params:
    sizes = (num_inputs, num_hiddens, device, generator)
    W_xi, W_hi, b_i = three(*sizes)  # Input gate parameters
    W_xf, W_hf, b_f = three(*sizes)  # Forget gate parameters
    W_xo, W_ho, b_o = three(*sizes)  # Output gate parameters
    W_xc, W_hc, b_c = three(*sizes)  # Candidate memory cell parameters
    return attach_gradients([W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o,
                             W_xc, W_hc, b_c])


def get_params(vocab_size: int, num_hiddens: int, device, generator: torch.Generator | None = None
               ) -> Params:
    """The book's fourteen: the four gates' (W_x*, W_h*, b_*), then W_hq, b_q."""
    num_inputs = num_outputs = vocab_size
    return (get_layer_params(num_inputs, num_hiddens, device, generator)
            + get_output_params(num_hiddens, num_outputs, device, generator))


def init_lstm_state(batch_size: int, num_hiddens: int, device) -> State:
    """(H, C): the hidden state and the memory cell, both zero."""
    return (torch.zeros((batch_size, num_hiddens), device=device),
            torch.zeros((batch_size, num_hiddens), device=device))


def lstm_step(X: torch.Tensor, state: State, params: Params) -> State:
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c = params
    H, C = state
    I = torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i)
    F = torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f)
    O = torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)
    C_tilde = torch.tanh((X @ W_xc) + (H @ W_hc) + b_c)
    C = F * C + I * C_tilde
    H = O * torch.tanh(C)
    return (H, C)


def lstm_gates(X: torch.Tensor, state: State, params: Params) -> dict[str, torch.Tensor]:
    """The input, forget and output gates of one step (for looking inside the model)."""
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o = params[:9]
    H, _ = state
    return {"I": torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i),
            "F": torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f),
            "O": torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)}


def lstm(inputs: torch.Tensor, state: State, params: Params) -> tuple[torch.Tensor, State]:
    """The book's lstm: inputs (num_steps, batch_size, vocab_size) one-hot; state (H, C)."""
    return through_time(lstm_step, inputs, state, params)


# ---- the fast path (engine/fast.py): the same math on inputs projected in advance -------------

def lstm_recurrence(XW: torch.Tensor, state: State, params: Params) -> tuple[torch.Tensor, State]:
    """The LSTM on XW = X [W_xi|W_xf|W_xo|W_xc] + [b_i|b_f|b_o|b_c] of all steps: the four
    gates from one product of H with [W_hi|W_hf|W_ho|W_hc] per step."""
    _, W_hi, _, _, W_hf, _, _, W_ho, _, _, W_hc, _ = params
    H, C = state
    num_hiddens = H.shape[1]
    W_h = torch.cat([W_hi, W_hf, W_ho, W_hc], dim=1)
    outputs = []
    for xw in XW.unbind(0):
        gates = torch.addmm(xw, H, W_h)
        # split, not slices: a slice's backward zero-fills a full-size buffer every step.
        ifo, c = gates.split([3 * num_hiddens, num_hiddens], dim=1)
        I, F, O = torch.sigmoid(ifo).chunk(3, dim=1)
        C_tilde = torch.tanh(c)
        C = F * C + I * C_tilde
        H = O * torch.tanh(C)
        outputs.append(H)
    return torch.stack(outputs), (H, C)


def fused_weights(params: Params) -> Params:
    """The layer as torch._VF.lstm takes it: w_ih, w_hh, b_ih with the gates in PyTorch's order
    i, f, g (= C~), o; the op's second bias, b_hh, is zero here."""
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c = params
    return [gate_rows(W_xi, W_xf, W_xc, W_xo), gate_rows(W_hi, W_hf, W_hc, W_ho),
            torch.cat([b_i, b_f, b_c, b_o])]


def fused_layout(params: Params) -> Params:
    """The layer's parameters, the same values, laid out as fused_weights reads them without
    copying (engine.cells.common.kernel_layout), for a model that runs the kernel."""
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c = params
    W_xi, W_xf, W_xc, W_xo = kernel_layout(W_xi, W_xf, W_xc, W_xo)
    W_hi, W_hf, W_hc, W_ho = kernel_layout(W_hi, W_hf, W_hc, W_ho)
    return [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c]
