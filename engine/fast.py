"""The fast path: the book's RNN (d2l 8.5), the same math on the same five tensors, faster.

The math is `engine.model.rnn`'s, reorganized:
- the input projection of all steps happens at once (a one-hot row times W_xh is a row of W_xh:
  a lookup, or on the oneDNN route a few extra columns of the step's fused product);
- the output layer of all steps is one matrix product;
- only the recurrence H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h) stays a loop over time, and it
  runs on the fastest route this device offers.

Routes, chosen once per device and named in the implementation's `detail`:
- "onednn" (CPU): oneDNN's matrix product with the tanh fused (`torch.ops.mkldnn`), inside a
  hand-written autograd Function. bench/throughput.py measured 1.4x the book's loop on a
  2-core AMD EPYC (Zen 4); docs/performance.md saw up to 2x on Zen 5. Without autograd
  and one step at a time (generation) it runs the fallback, which is faster there.
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
from .optim import SGD
from .train import loss

ROUTE_ENV = "RNN_TUI_FAST_ROUTE"

# The model's forward pass, as the book's `rnn` but on token indices and one state tensor:
# (X (batch, steps) indices, H (batch, hiddens), params) -> (Y (steps * batch, vocab), last H)
Forward = Callable[[torch.Tensor, torch.Tensor, Params], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Route:
    name: str
    detail: str
    forward: Forward


def output_layer(Hs: torch.Tensor, W_hq: torch.Tensor, b_q: torch.Tensor) -> torch.Tensor:
    """Y = H W_hq + b_q for all steps in one product: (steps, batch, hiddens) -> (steps*batch, q)."""
    return torch.addmm(b_q, Hs.flatten(0, 1), W_hq)


# ---- fallback: plain PyTorch ------------------------------------------------------------------

def rnn_fallback(X, H, params):
    """The book's `rnn` with the input projection of all steps done up front."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    # A row lookup is the one-hot product. (index_select: its backward never syncs on CUDA,
    # F.embedding's does for large batches.)
    XW = W_xh.index_select(0, X.T.reshape(-1)).view(*X.T.shape, -1) + b_h  # (steps, batch, h)
    outputs = []
    # unbind, not XW[t]: indexing would make autograd zero-fill a full-size buffer every step.
    for xw in XW.unbind(0):
        H = torch.tanh(torch.addmm(xw, H, W_hh))
        outputs.append(H)
    return output_layer(torch.stack(outputs), W_hq, b_q), H


# ---- onednn: oneDNN products with the tanh fused (CPU) ----------------------------------------

def _linear(x, weight, attr="none", bias=None):
    """x @ weight.T + bias (weight as nn.Linear holds it, plain or packed), then `attr` ('tanh')."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, [], "")


class RNNOneDNN(torch.autograd.Function):
    """The book's `rnn` in oneDNN products: one fused product per step, forward and backward.

    Forward: H_t = tanh(Z_t @ [W_hh; W_xh; b_h]) with Z_t = [H_{t-1}, X_t, 1], so that each step
    is a single oneDNN call (product, bias and tanh together) on the one-hot X_t of the book;
    then the output layer of all steps in one product.
    Backward, the same trick: the gradient reaching H_t is R_{t+1} @ [W_hh, W_hq]^T with
    R_{t+1} = [dA_{t+1}, dY_t] (dA: the gradient of a step's pre-activation). And every weight
    gradient comes from one product at the end, Z^T R, the stacked inputs times the stacked
    gradients: [dW_hh; dW_xh; db_h] beside [dW_hq; ...; db_q].
    """

    @staticmethod
    def forward(ctx, X, H, W_xh, W_hh, b_h, W_hq, b_q):
        batch_size, num_steps = X.shape
        vocab_size, num_hiddens = W_xh.shape
        # Z[t] = [H_{t-1}, X_t one-hot, 1]; the extra slot Z[num_steps] receives the last H.
        Z = W_hh.new_empty(num_steps + 1, batch_size, num_hiddens + vocab_size + 1)
        Z[:, :, num_hiddens:-1] = 0.0
        Z[:num_steps, :, num_hiddens:-1].scatter_(2, X.T.unsqueeze(2), 1.0)
        Z[:, :, -1] = 1.0
        Z[0, :, :num_hiddens] = H
        W = torch.cat([W_hh, W_xh, b_h.unsqueeze(0)])
        # Packed into oneDNN's blocked layout once per batch, reused by every step. (From the
        # transposed view directly: a contiguous copy first would cost twice the packing.)
        W_packed = torch.ops.mkldnn._reorder_linear_weight(W.T, batch_size)
        Zs = Z.unbind(0)
        Hs = [z[:, :num_hiddens] for z in Zs[1:]]  # H_t lands where step t + 1 reads it
        for z, H_t in zip(Zs, Hs):
            H_t.copy_(_linear(z, W_packed, "tanh"))
        Y = _linear(Z[1:, :, :num_hiddens].flatten(0, 1), W_hq.T, bias=b_q)
        ctx.save_for_backward(Z, W_hh, W_hq)
        return Y, Z[-1, :, :num_hiddens]  # the last H: a view, it was written once already

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dY, dH_last):
        Z, W_hh, W_hq = ctx.saved_tensors
        num_steps, batch_size = Z.shape[0] - 1, Z.shape[1]
        num_hiddens, vocab_size = W_hq.shape
        # R[t] = [dA_t, dY_{t-1}]; nothing follows the last step, nothing precedes the first.
        R = dY.new_empty(num_steps + 1, batch_size, num_hiddens + vocab_size)
        R[-1, :, :num_hiddens] = 0.0
        R[0, :, num_hiddens:] = 0.0
        R[1:, :, num_hiddens:] = dY.reshape(num_steps, batch_size, vocab_size)
        W_packed = torch.ops.mkldnn._reorder_linear_weight(torch.cat([W_hh, W_hq], 1), batch_size)
        Rs, Hs = R.unbind(0), Z[1:, :, :num_hiddens].unbind(0)
        dAs = [r[:, :num_hiddens] for r in Rs[:-1]]
        for t in range(num_steps - 1, -1, -1):
            dH = _linear(Rs[t + 1], W_packed)  # dA_{t+1} W_hh^T + dY_t W_hq^T
            if t == num_steps - 1:
                dH += dH_last
            torch.ops.aten.tanh_backward.grad_input(dH, Hs[t], grad_input=dAs[t])  # * (1 - H_t^2)
        dH0 = torch.mm(dAs[0], W_hh.T) if ctx.needs_input_grad[1] else None
        dW = torch.mm(Z.flatten(0, 1).T, R.flatten(0, 1))  # sum over steps of Z[t]^T R[t]
        dW_h, dW_q = dW.split([num_hiddens, vocab_size], dim=1)
        dW_hh, dW_xh, db_h = dW_h.split([num_hiddens, vocab_size, 1])
        return (None, dH0, dW_xh, dW_hh, db_h.squeeze(0), dW_q[:num_hiddens], dW_q[-1])


def rnn_onednn(X, H, params):
    if not torch.is_grad_enabled() and X.shape[1] <= 1:
        # Generation, one step a call: with no backward pass to speed up, oneDNN's set-up per
        # call (packing, primitives) costs more than its products gain; plain PyTorch measured
        # faster here. Over many steps (held-out perplexity: 28 rows x 35 steps) oneDNN took
        # 54 ms where plain PyTorch took 70.
        return rnn_fallback(X, H, params)
    return RNNOneDNN.apply(X, H, *params)


# ---- rnn_tanh: PyTorch's fused RNN op (cuDNN on CUDA) -----------------------------------------

def rnn_tanh(X, H, params):
    """The book's RNN as `torch._VF.rnn_tanh` sees it: weights transposed, one bias zero.

    The four weights are views of one buffer laid out in cuDNN's order (input weight, hidden
    weight, the two biases) so that cuDNN can take it as it is, rather than compacting the
    weights itself and warning on every call; gradients flow back through the copy.
    """
    W_xh, W_hh, b_h, W_hq, b_q = params
    vocab_size, num_hiddens = W_xh.shape
    flat = torch.cat([W_xh.T.flatten(), W_hh.T.flatten(), b_h, torch.zeros_like(b_h)])
    w_ih, w_hh, b_ih, b_hh = flat.split([W_xh.numel(), W_hh.numel(), num_hiddens, num_hiddens])
    weights = [w_ih.view(num_hiddens, vocab_size), w_hh.view(num_hiddens, num_hiddens), b_ih, b_hh]
    # cuDNN projects the one-hot inputs of all steps in one product before the recurrence.
    inputs = F.one_hot(X.T, vocab_size).to(W_xh.dtype)
    Hs, H = torch._VF.rnn_tanh(inputs, H.unsqueeze(0), weights, True, 1, 0.0,
                               torch.is_grad_enabled(), False, False)
    return output_layer(Hs, W_hq, b_q), H.squeeze(0)


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
            got, want = (_tiny_run(fn, device) for fn in (route.forward, rnn_fallback))
    except Exception as e:  # noqa: BLE001 - any failure of a private op means: do not use it
        message = str(e).strip().splitlines()
        return f"{type(e).__name__}: {message[0]}" if message else type(e).__name__
    for g, w in zip(got, want):
        if g.shape != w.shape or not torch.allclose(g, w, rtol=1e-4, atol=1e-5):
            return "its results differ from plain PyTorch's"
    return None


def _tiny_run(forward: Forward, device: torch.device) -> list[torch.Tensor]:
    """The outputs of `forward` on a fixed tiny problem, and the gradients of its inputs."""
    generator = torch.Generator().manual_seed(0)
    vocab_size, num_hiddens, batch_size, num_steps = 5, 8, 3, 4

    def rand(*shape):
        return torch.randn(shape, generator=generator).to(device).requires_grad_(True)

    X = torch.randint(vocab_size, (batch_size, num_steps), generator=generator).to(device)
    H = rand(batch_size, num_hiddens)
    params = [rand(vocab_size, num_hiddens), rand(num_hiddens, num_hiddens), rand(num_hiddens),
              rand(num_hiddens, vocab_size), rand(vocab_size)]
    Y, H_last = forward(X, H, params)
    total = (Y * rand(*Y.shape).detach()).sum() + H_last.sum()  # every output counts differently
    return [Y, H_last, *torch.autograd.grad(total, [H, *params])]


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
                 fallback.forward)


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
        Y, H = self.route.forward(X, state[0], self.params)
        return Y, (H,)


def grad_clipping(grads: list[torch.Tensor], theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The book's clipping as tensors: the total norm, and the scale theta/norm if norm > theta
    else 1. Nothing is read back to the host."""
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if theta <= 0:  # no clipping (the chapter's exercise)
        return norm, torch.ones_like(norm)
    scale = torch.where(norm > theta, theta / norm, 1.0)
    return norm, scale


def fast_train_step(net, X: torch.Tensor, Y: torch.Tensor, state: State, lr: float,
                    clip: float, optimizer=None, retain_graph: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, State]:
    """book_train_step's contract and numbers, without a host synchronization."""
    y = Y.T.reshape(-1)
    y_hat, state = net(X, state)
    l = loss(y_hat, y.long())
    params = net.parameters()
    grads = torch.autograd.grad(l, params, retain_graph=retain_graph)
    norm, scale = grad_clipping(grads, clip)
    # A non-finite step is skipped.
    (optimizer or SGD(params)).fast_step(params, grads, lr, scale, apply=torch.isfinite(norm))
    return l.detach() * y.numel(), norm.detach(), state


def fast_implementation(device):
    from .implementations import Implementation

    route = choose_route(device)
    return Implementation("fast", route.detail, functools.partial(RNNModelFast, route=route),
                          fast_train_step)
