"""The fast path: the book's RNN (d2l 8.5), the same math on the same five tensors, faster.

The math is `engine.model.rnn`'s, reorganized:
- a one-hot row times W_xh is a row of W_xh, so the input projection of all steps is one lookup;
- the output layer of all steps is one matrix product;
- only the recurrence H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h) stays a loop over time, and it
  runs on the fastest route this device offers.

Routes, chosen once per device and named in the implementation's `detail`:
- "onednn" (CPU): oneDNN's matrix product with the tanh fused (`torch.ops.mkldnn`), inside a
  hand-written autograd Function: 1.4x the book's loop on a 2-core AMD Zen 4, up to 2x on
  Zen 5 (shared/docs/performance.md; measure with bench/throughput.py). Without autograd
  (generation) it runs the fallback, which is faster there.
- "rnn_tanh" (CUDA): PyTorch's fused RNN op, `torch._VF.rnn_tanh`, which is cuDNN on NVIDIA GPUs.
- "fallback": plain PyTorch (the projections hoisted, a loop over time, autograd); everywhere.
The first two are private APIs: each is tried once on a tiny problem, checked against the
fallback, and skipped if it fails. `RNN_TUI_FAST_ROUTE=onednn|rnn_tanh|fallback` forces one
(an unusable forced route still falls back, and `detail` says why); tests use it.

The training step clips and updates without reading a number back to the host, so on a GPU the
batches queue up without waiting for each other.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

from .model import Params, RNNModelScratch, State
from .train import loss

ROUTE_ENV = "RNN_TUI_FAST_ROUTE"

# (X (batch, steps) token indices, H (batch, hiddens), W_xh, W_hh, b_h)
#   -> (H of every step (steps, batch, hiddens), last H (batch, hiddens))
Recurrence = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Route:
    name: str
    detail: str
    recurrence: Recurrence


# ---- fallback: plain PyTorch ------------------------------------------------------------------

def rnn_fallback(X, H, W_xh, W_hh, b_h):
    """The book's recurrence with the input projection of all steps done up front."""
    # A row lookup is the one-hot product. (index_select: its backward never syncs on CUDA,
    # F.embedding's does for large batches.)
    XW = W_xh.index_select(0, X.T.reshape(-1)).view(*X.T.shape, -1) + b_h  # (steps, batch, h)
    outputs = []
    # unbind, not XW[t]: indexing would make autograd zero-fill a full-size buffer every step.
    for xw in XW.unbind(0):
        H = torch.tanh(torch.addmm(xw, H, W_hh))
        outputs.append(H)
    return torch.stack(outputs), H


# ---- onednn: oneDNN products with the tanh fused (CPU) ----------------------------------------

def _linear(x, weight, attr="none"):
    """x @ weight.T (weight as nn.Linear holds it, plain or packed), then `attr` ('tanh')."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, attr, [], "")


def _linear_add(x, other, weight):
    """x @ weight.T + other, in one kernel."""
    return torch.ops.mkldnn._linear_pointwise.binary(x, other, weight, None, "add")


class RNNOneDNN(torch.autograd.Function):
    """H_t = tanh([H_{t-1}, X_t, 1] @ [W_hh; W_xh; b_h]): one fused product per step.

    Stacking the inputs makes each step a single oneDNN call (product, bias and tanh together)
    and leaves the one-hot X_t as the book has it. Backward runs one product per step (the
    add of the output layer's gradient fused in); the gradients of W_hh, W_xh and b_h come
    from one large product over all steps at the end.
    """

    @staticmethod
    def forward(ctx, X, H, W_xh, W_hh, b_h):
        batch_size, num_steps = X.shape
        vocab_size, num_hiddens = W_xh.shape
        # Z[t] = [H_{t-1}, X_t one-hot, 1]; the extra slot Z[num_steps] receives the last H.
        Z = W_hh.new_empty(num_steps + 1, batch_size, num_hiddens + vocab_size + 1)
        Z[:, :, num_hiddens:] = 0.0
        Z[:num_steps, :, num_hiddens:-1].scatter_(2, X.T.unsqueeze(2), 1.0)
        Z[:num_steps, :, -1] = 1.0
        Z[0, :, :num_hiddens] = H
        W = torch.cat([W_hh, W_xh, b_h.unsqueeze(0)])
        # Packed into oneDNN's blocked layout once per batch, reused by every step. (From the
        # transposed view directly: a contiguous copy first would cost twice the packing.)
        W_packed = torch.ops.mkldnn._reorder_linear_weight(W.T, batch_size)
        Zs = Z.unbind(0)
        Hs = [z[:, :num_hiddens] for z in Zs[1:]]  # H_t lands where step t + 1 reads it
        for z, H in zip(Zs, Hs):
            H.copy_(_linear(z, W_packed, "tanh"))
        ctx.save_for_backward(Z, W_hh)
        # Views of Z, where each H was written once as the next step's input: no copies.
        return Z[1:, :, :num_hiddens], Z[-1, :, :num_hiddens]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dHs, dH_last):
        Z, W_hh = ctx.saved_tensors
        num_steps, batch_size, num_hiddens = dHs.shape
        vocab_size = Z.shape[2] - num_hiddens - 1
        W_hh_packed = torch.ops.mkldnn._reorder_linear_weight(W_hh, batch_size)
        Hs = Z[1:, :, :num_hiddens].unbind(0)
        # dA[t]: the gradient of step t's pre-activation (tanh' = 1 - H_t^2).
        dA = dHs.new_empty(dHs.shape)
        dAs, dHs = dA.unbind(0), dHs.contiguous().unbind(0)
        dH = dHs[-1] + dH_last  # all the gradient that reaches H_t, from the top down
        for t in range(num_steps - 1, -1, -1):
            torch.ops.aten.tanh_backward.grad_input(dH, Hs[t], grad_input=dAs[t])
            if t:
                dH = _linear_add(dAs[t], dHs[t - 1], W_hh_packed)  # dA_t W_hh^T + dH_{t-1}
        dH0 = _linear(dAs[0], W_hh_packed) if ctx.needs_input_grad[1] else None
        # [dW_hh; dW_xh; db_h] = sum over steps of Z[t]^T dA[t]: one product for all.
        dW = torch.mm(Z[:num_steps].flatten(0, 1).T, dA.flatten(0, 1))
        dW_hh, dW_xh, db_h = dW.split([num_hiddens, vocab_size, 1])
        return None, dH0, dW_xh, dW_hh, db_h.squeeze(0)


def rnn_onednn(X, H, W_xh, W_hh, b_h):
    if not torch.is_grad_enabled():
        # Generation: with no backward pass to speed up, oneDNN's set-up per call (packing,
        # primitives) costs more than its products gain; plain PyTorch measured faster here.
        return rnn_fallback(X, H, W_xh, W_hh, b_h)
    return RNNOneDNN.apply(X, H, W_xh, W_hh, b_h)


# ---- rnn_tanh: PyTorch's fused RNN op (cuDNN on CUDA) -----------------------------------------

def rnn_tanh(X, H, W_xh, W_hh, b_h):
    """The book's RNN as `torch._VF.rnn_tanh` sees it: weights transposed, one bias zero.

    The four weights are views of one buffer laid out in cuDNN's order (input weight, hidden
    weight, the two biases) so that cuDNN can take it as it is, rather than compacting the
    weights itself and warning on every call; gradients flow back through the copy.
    """
    vocab_size, num_hiddens = W_xh.shape
    flat = torch.cat([W_xh.T.flatten(), W_hh.T.flatten(), b_h, torch.zeros_like(b_h)])
    w_ih, w_hh, b_ih, b_hh = flat.split([W_xh.numel(), W_hh.numel(), num_hiddens, num_hiddens])
    weights = [w_ih.view(num_hiddens, vocab_size), w_hh.view(num_hiddens, num_hiddens), b_ih, b_hh]
    # cuDNN projects the one-hot inputs of all steps in one product before the recurrence.
    inputs = F.one_hot(X.T, vocab_size).to(W_xh.dtype)
    outputs, H = torch._VF.rnn_tanh(inputs, H.unsqueeze(0), weights, True, 1, 0.0,
                                    torch.is_grad_enabled(), False, False)
    return outputs, H.squeeze(0)


# ---- choosing the route -----------------------------------------------------------------------

def _routes(device: torch.device) -> dict[str, Route]:
    cudnn = device.type == "cuda" and torch.backends.cudnn.is_available()
    return {
        "onednn": Route("onednn", "oneDNN fused kernels", rnn_onednn),
        "rnn_tanh": Route("rnn_tanh", "cuDNN fused RNN (torch._VF.rnn_tanh)" if cudnn
                          else "PyTorch's fused RNN op (torch._VF.rnn_tanh)", rnn_tanh),
        "fallback": Route("fallback", "plain PyTorch fallback", rnn_fallback),
    }


def _preferred(device: torch.device) -> str:
    return {"cpu": "onednn", "cuda": "rnn_tanh"}.get(device.type, "fallback")


def _route_problem(route: Route, device: torch.device) -> str | None:
    """Run `route` once on a tiny problem, forward and backward, against the fallback.

    None if they agree; else why not (a private op may be missing, or may have changed).
    """
    try:
        with torch.enable_grad():
            got, want = (_tiny_run(fn, device) for fn in (route.recurrence, rnn_fallback))
    except Exception as e:  # noqa: BLE001 - any failure of a private op means: do not use it
        message = str(e).strip().splitlines()
        return f"{type(e).__name__}: {message[0]}" if message else type(e).__name__
    for g, w in zip(got, want):
        if g.shape != w.shape or not torch.allclose(g, w, rtol=1e-4, atol=1e-5):
            return "its results differ from plain PyTorch's"
    return None


def _tiny_run(recurrence: Recurrence, device: torch.device) -> list[torch.Tensor]:
    """The outputs of `recurrence` on a fixed tiny problem, and the gradients of its inputs."""
    generator = torch.Generator().manual_seed(0)
    vocab_size, num_hiddens, batch_size, num_steps = 5, 8, 3, 4

    def rand(*shape):
        return torch.randn(shape, generator=generator).to(device).requires_grad_(True)

    X = torch.randint(vocab_size, (batch_size, num_steps), generator=generator).to(device)
    H, W_xh, W_hh, b_h = (rand(*shape) for shape in [(batch_size, num_hiddens),
                                                       (vocab_size, num_hiddens),
                                                       (num_hiddens, num_hiddens), (num_hiddens,)])
    Hs, H_last = recurrence(X, H, W_xh, W_hh, b_h)
    weights = torch.arange(1.0, num_steps + 1, device=device)[:, None, None]  # steps differ
    total = (Hs * weights).sum() + H_last.sum()
    return [Hs, H_last, *torch.autograd.grad(total, (H, W_xh, W_hh, b_h))]


def _device_key(device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def choose_route(device) -> Route:
    """The route for `device`: $RNN_TUI_FAST_ROUTE if set, else the best one that works here."""
    requested = os.environ.get(ROUTE_ENV, "").strip().lower() or None
    return _choose_route(_device_key(device), requested)


@functools.cache
def _choose_route(device: torch.device, requested: str | None) -> Route:
    routes = _routes(device)
    if requested is not None and requested not in routes:
        raise ValueError(f"{ROUTE_ENV}={requested!r} is not a route; choose one of "
                         f"{', '.join(routes)}")
    route = routes[requested or _preferred(device)]
    if route.name == "fallback":
        return route
    if route.name == "rnn_tanh" and device.type == "cuda":
        # cuDNN runs float32 RNNs in TF32 by default (about 1e-3 off); the book's numbers are
        # float32. This app runs no other cuDNN work that TF32 would speed up.
        torch.backends.cudnn.allow_tf32 = False
    problem = _route_problem(route, device)
    if problem is None:
        return route
    fallback = routes["fallback"]
    return Route(fallback.name, f"{fallback.detail}; {route.name} unusable: {problem}",
                 fallback.recurrence)


clear_route_cache = _choose_route.cache_clear


# ---- the model and its training step ----------------------------------------------------------

class RNNModelFast(RNNModelScratch):
    """RNNModelScratch's interface and parameters; the forward pass of a faster route."""

    def __init__(self, vocab_size: int, num_hiddens: int, device, route: Route,
                 params=None, generator: torch.Generator | None = None):
        super().__init__(vocab_size, num_hiddens, device, params=params, generator=generator)
        self.route = route

    def __call__(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """X: token indices (batch_size, num_steps); outputs (num_steps * batch_size, vocab)."""
        W_xh, W_hh, b_h, W_hq, b_q = self.params
        H, = state
        Hs, H = self.route.recurrence(X, H, W_xh, W_hh, b_h)
        Y = torch.addmm(b_q, Hs.flatten(0, 1), W_hq)  # the output layer of all steps at once
        return Y, (H,)


def grad_clipping(grads: list[torch.Tensor], theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's clipping as tensors: the total norm, and the scale theta/norm if norm > theta
    else 1. Nothing is read back to the host."""
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    scale = torch.where(norm > theta, theta / norm, 1.0)
    return norm, scale


def sgd(params: Params, grads: list[torch.Tensor], lr: float, scale: torch.Tensor,
        apply: torch.Tensor) -> None:
    """param -= lr * scale * grad, for all parameters at once; where `apply` is False, nothing."""
    with torch.no_grad():
        steps = torch._foreach_mul(grads, lr * scale)
        # where, not a multiply by 0: a non-finite gradient times 0 is still NaN.
        torch._foreach_sub_(params, [torch.where(apply, step, 0.0) for step in steps])


def fast_train_step(net, X: torch.Tensor, Y: torch.Tensor, state: State, lr: float,
                    clip: float) -> tuple[torch.Tensor, torch.Tensor, State]:
    """book_train_step's contract and numbers, without a host synchronization."""
    y = Y.T.reshape(-1)
    y_hat, state = net(X, state)
    l = loss(y_hat, y.long())
    params = net.parameters()
    grads = torch.autograd.grad(l, params)
    norm, scale = grad_clipping(grads, clip)
    sgd(params, grads, lr, scale, apply=torch.isfinite(norm))  # a non-finite step is skipped
    return l.detach() * y.numel(), norm.detach(), state


def fast_implementation(device):
    from .implementations import Implementation

    route = choose_route(device)
    return Implementation("fast", route.detail, functools.partial(RNNModelFast, route=route),
                          fast_train_step)
