"""The fast path: every model of engine.model, the same math on the same parameters, faster.

The math is the book's path's (engine.model.RNNModel, the cells' own equations), reorganized:
- the input projections of all steps happen at once, for all gates together (a one-hot row
  times W_x is a row of W_x: a lookup; an embedded one is a row of W_emb W_x);
- the output layer of all steps is one matrix product;
- only the recurrence stays a loop over time (the cell's `<cell>_recurrence`, whose gates share
  one product of H; the RNN's and the GRU's with a backward written by hand, which makes each
  hidden weight's gradient one product over all steps), and it runs on the fastest route
  this device offers.

Routes, chosen once per device and kind of model, and named in the implementation's `detail`:
- "onednn" (CPU, the chapter's model: one layer; tanh or ReLU; one-hot or embedded inputs):
  oneDNN's matrix product with the activation fused (`torch.ops.mkldnn`), inside a hand-written autograd Function.
  bench/throughput.py measured 1.4x the book's loop on a 2-core AMD EPYC (Zen 4);
  docs/performance.md saw up to 2x on Zen 5. Without autograd and one step at a
  time (generation) it runs the fallback, which is faster there.
- "rnn_tanh", "rnn_relu", "lstm": PyTorch's fused recurrent ops (`torch._VF`), cuDNN on NVIDIA
  GPUs and oneDNN's LSTM on a CPU, for the cells whose math they compute (the RNN with either
  activation, the LSTM; any number of layers). None for the GRU: PyTorch's and cuDNN's GRU
  reset after the hidden product, the book's before it, so they compute another model.
- "fallback": plain PyTorch (the projections hoisted, a loop over time, autograd); every model,
  everywhere.
The private ones are tried once on a tiny problem of the same kind, checked against the
fallback, and skipped if they fail. `RNN_TUI_FAST_ROUTE=<route>` forces one (an unusable
forced route, or one that does not compute this model, still falls back, and `detail` says
why); tests use it.

The training step clips and updates without reading a number back to the host, so on a GPU the
batches queue up without waiting for each other.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

from .cells import CELLS, Cell
from .model import (ModelSpec, Params, RNNModel, State, cell_options, split_params,
                    split_state)
from .optim import SGD
from .train import loss

ROUTE_ENV = "RNN_TUI_FAST_ROUTE"
ROUTES = ("onednn", "rnn_tanh", "rnn_relu", "lstm", "fallback")

# A model's forward pass on token indices:
# (X (batch, steps) indices, state, params) -> (Y (steps * batch, vocab), last state)
Forward = Callable[[torch.Tensor, State, Params], tuple[torch.Tensor, State]]


@dataclass(frozen=True)
class Route:
    name: str
    detail: str
    forward: Forward


def output_layer(Hs: torch.Tensor, W_hq: torch.Tensor, b_q: torch.Tensor) -> torch.Tensor:
    """Y = H W_hq + b_q for all steps in one product: (steps, batch, hiddens) -> (steps*batch, q)."""
    return torch.addmm(b_q, Hs.flatten(0, 1), W_hq)


def token_rows(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Row X[b, t] of W for every step and batch row: (steps, batch, W's columns). A one-hot
    row times W is this row. (index_select: its backward never syncs on CUDA, F.embedding's
    does for large batches.)"""
    return W.index_select(0, X.T.reshape(-1)).view(X.shape[1], X.shape[0], W.shape[1])


# ---- fallback: plain PyTorch, every model -----------------------------------------------------

def input_weights(cell: Cell, layer: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's input weights of all gates side by side, and their biases: [W_x*], [b_*]."""
    W_x = [p for name, p in zip(cell.layer_names, layer) if name.startswith("W_x")]
    b = [p for name, p in zip(cell.layer_names, layer) if name.startswith("b_")]
    if len(W_x) == 1:
        return W_x[0], b[0]
    return torch.cat(W_x, dim=1), torch.cat(b)


def fallback(spec: ModelSpec, X: torch.Tensor, state: State, params: Params
             ) -> tuple[torch.Tensor, State]:
    """`spec`'s model with the input projection of all steps done up front, layer by layer."""
    cell = CELLS[spec.cell]
    W_emb, layers, (W_hq, b_q) = split_params(spec, params)
    options = cell_options(spec)
    new_state: list[torch.Tensor] = []
    Hs = None
    for layer, layer_state in zip(layers, split_state(spec, state)):
        W_x, b = input_weights(cell, layer)
        if Hs is None:  # layer 0 reads tokens: a row per token
            if W_emb is not None:
                W_x = torch.mm(W_emb, W_x)  # an embedding times W_x is a row of W_emb W_x
            XW = token_rows(W_x, X) + b
        else:
            XW = torch.addmm(b, Hs.flatten(0, 1), W_x).view(*Hs.shape[:2], -1)
        Hs, layer_state = cell.recurrence(XW, layer_state, layer, **options)
        new_state.extend(layer_state)
    return output_layer(Hs, W_hq, b_q), tuple(new_state)


# ---- onednn: oneDNN products with the activation fused (CPU) ----------------------------------

def _linear(x, weight, attr="none", bias=None):
    """x @ weight.T + bias (weight as nn.Linear holds it, plain or packed), then `attr` ('tanh',
    'relu')."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, [], "")


class RNNOneDNN(torch.autograd.Function):
    """The book's `rnn` in oneDNN products: one fused product per step, forward and backward.

    Forward: H_t = phi(Z_t @ [W_hh; W_xh; b_h]) with Z_t = [H_{t-1}, X_t, 1], so that each step
    is a single oneDNN call (product, bias and activation phi, tanh or relu, together) on the one-hot X_t of the book;
    then the output layer of all steps in one product.
    Backward, the same trick: the gradient reaching H_t is R_{t+1} @ [W_hh, W_hq]^T with
    R_{t+1} = [dA_{t+1}, dY_t] (dA: the gradient of a step's pre-activation). And every weight
    gradient comes from one product at the end, Z^T R, the stacked inputs times the stacked
    gradients: [dW_hh; dW_xh; db_h] beside [dW_hq; ...; db_q].
    """

    @staticmethod
    def forward(ctx, X, H, W_xh, W_hh, b_h, W_hq, b_q, activation="tanh"):
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
            H_t.copy_(_linear(z, W_packed, activation))
        Y = _linear(Z[1:, :, :num_hiddens].flatten(0, 1), W_hq.T, bias=b_q)
        ctx.save_for_backward(Z, W_hh, W_hq)
        ctx.activation = activation
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
            if ctx.activation == "tanh":  # * (1 - H_t^2)
                torch.ops.aten.tanh_backward.grad_input(dH, Hs[t], grad_input=dAs[t])
            else:  # relu: * (H_t > 0)
                torch.ops.aten.threshold_backward.grad_input(dH, Hs[t], 0.0, grad_input=dAs[t])
        dH0 = torch.mm(dAs[0], W_hh.T) if ctx.needs_input_grad[1] else None
        dW = torch.mm(Z.flatten(0, 1).T, R.flatten(0, 1))  # sum over steps of Z[t]^T R[t]
        dW_h, dW_q = dW.split([num_hiddens, vocab_size], dim=1)
        dW_hh, dW_xh, db_h = dW_h.split([num_hiddens, vocab_size, 1])
        return (None, dH0, dW_xh, dW_hh, db_h.squeeze(0), dW_q[:num_hiddens], dW_q[-1], None)


def rnn_onednn(X, H, params, activation: str = "tanh"):
    if not torch.is_grad_enabled() and X.shape[1] <= 1:
        # Generation, one step a call: with no backward pass to speed up, oneDNN's set-up per
        # call (packing, primitives) costs more than its products gain; plain PyTorch measured
        # faster here. Over many steps (held-out perplexity: 28 rows x 35 steps) oneDNN took
        # 54 ms where plain PyTorch took 70.
        Y, (H,) = fallback(ModelSpec(activation=activation), X, (H,), params)
        return Y, H
    return RNNOneDNN.apply(X, H, *params, activation)


def onednn(spec: ModelSpec, X: torch.Tensor, state: State, params: Params
           ) -> tuple[torch.Tensor, State]:
    if spec.input == "embedding":  # an embedded token times W_xh is a row of W_emb W_xh
        W_emb, W_xh, *rest = params
        params = [torch.mm(W_emb, W_xh), *rest]
    Y, H = rnn_onednn(X, state[0], params, spec.activation)
    return Y, (H,)


# ---- rnn_tanh, rnn_relu, lstm: PyTorch's fused recurrent ops (cuDNN on CUDA) -----------------

def fused(spec: ModelSpec, X: torch.Tensor, state: State, params: Params
          ) -> tuple[torch.Tensor, State]:
    """`spec`'s model as `torch._VF.rnn_tanh`, `rnn_relu` or `lstm` sees it, all layers in one
    call: each layer's weights transposed (the LSTM's gates reordered), its second bias zero.

    On CUDA the weights are views of one buffer laid out in cuDNN's order (per layer: input
    weight, hidden weight, the two biases) so that cuDNN can take it as it is, rather than
    compacting the weights itself and warning on every call; gradients flow back through the
    copy. On CPU each is only made contiguous (transposed views slow the op down).
    """
    cell = CELLS[spec.cell]
    W_emb, layers, (W_hq, b_q) = split_params(spec, params)
    weights = []
    for layer in layers:
        w_ih, w_hh, b_ih = cell.fused_weights(layer)
        weights += [w_ih, w_hh, b_ih, torch.zeros_like(b_ih)]
    if X.is_cuda:  # only cuDNN wants the one buffer; on CPU the copy is pure cost
        flat = torch.cat([w.reshape(-1) for w in weights])
        weights = [part.view(w.shape)
                   for part, w in zip(flat.split([w.numel() for w in weights]), weights)]
    else:  # CPU: contiguous weights (the op is ~1.5x slower on transposed views), no cat
        weights = [w.contiguous() for w in weights]
    if W_emb is None:  # the op projects the one-hot inputs of all steps in one product
        inputs = F.one_hot(X.T, W_hq.shape[1]).to(W_hq.dtype)
    else:
        inputs = token_rows(W_emb, X)
    layer_states = split_state(spec, state)
    args = (weights, True, spec.num_layers, 0.0, torch.is_grad_enabled(), False, False)
    if cell.num_states == 1:
        H0 = torch.stack([s[0] for s in layer_states])
        Hs, H = getattr(torch._VF, cell.fused[spec.activation])(inputs, H0, *args)
        new_state = tuple(H.unbind(0))
    else:
        H0, C0 = (torch.stack([s[i] for s in layer_states]) for i in (0, 1))
        Hs, H, C = getattr(torch._VF, cell.fused[spec.activation])(inputs, [H0, C0], *args)
        new_state = tuple(t for pair in zip(H.unbind(0), C.unbind(0)) for t in pair)
    return output_layer(Hs, W_hq, b_q), new_state


# ---- choosing the route -----------------------------------------------------------------------

def is_book_rnn(spec: ModelSpec) -> bool:
    """The chapter's model, one RNN layer, with its exercises' switches (ReLU, an embedding):
    the oneDNN route's."""
    return (spec.cell, spec.num_layers) == ("rnn", 1)


def _routes(device: torch.device, spec: ModelSpec) -> dict[str, Route]:
    """The routes that compute `spec`'s model, in ROUTES' order."""
    cell = CELLS[spec.cell]
    routes = {}
    if is_book_rnn(spec):
        routes["onednn"] = Route("onednn", "oneDNN fused kernels", functools.partial(onednn, spec))
    op = cell.fused.get(spec.activation)
    if op is not None:
        kind = cell.name.upper()
        cudnn = device.type == "cuda" and torch.backends.cudnn.is_available()
        routes[op] = Route(op, f"cuDNN fused {kind} (torch._VF.{op})" if cudnn
                           else f"PyTorch's fused {kind} op (torch._VF.{op})",
                           functools.partial(fused, spec))
    routes["fallback"] = Route("fallback", "plain PyTorch fallback",
                               functools.partial(fallback, spec))
    return routes


# The first of these a model has, by device type. On the CPU, oneDNN's LSTM beats the loop;
# PyTorch's own RNN loop does not beat the fallback (bench/throughput.py).
PREFERENCE = {"cpu": ("onednn", "lstm"), "cuda": ("rnn_tanh", "rnn_relu", "lstm")}


def _preferred(device: torch.device, routes: dict[str, Route]) -> str:
    return next((name for name in PREFERENCE.get(device.type, ()) if name in routes), "fallback")


def _route_problem(route: Route, spec: ModelSpec, device: torch.device) -> str | None:
    """Run `route` once on a tiny problem, forward and backward, against the fallback.

    None if they agree; else why not (a private op may be missing, or may have changed).
    """
    try:
        with torch.enable_grad():
            got, want = (_tiny_run(fn, spec, device)
                         for fn in (route.forward, functools.partial(fallback, spec)))
    except Exception as e:  # noqa: BLE001 - any failure of a private op means: do not use it
        message = str(e).strip().splitlines()
        return f"{type(e).__name__}: {message[0]}" if message else type(e).__name__
    for g, w in zip(got, want):
        if g.shape != w.shape or not torch.allclose(g, w, rtol=1e-4, atol=1e-5):
            return "its results differ from plain PyTorch's"
    return None


def _tiny_run(forward: Forward, spec: ModelSpec, device: torch.device) -> list[torch.Tensor]:
    """The outputs of `forward` on a fixed tiny problem of `spec`'s kind, and the gradients of
    its inputs. Every parameter and state is random (biases too), so a misplaced one shows."""
    from .model import param_shapes

    generator = torch.Generator().manual_seed(0)
    batch_size, num_steps = 3, 4

    def rand(*shape):
        return torch.randn(shape, generator=generator).to(device).requires_grad_(True)

    X = torch.randint(spec.vocab_size, (batch_size, num_steps), generator=generator).to(device)
    state = tuple(rand(batch_size, spec.num_hiddens)
                  for _ in range(CELLS[spec.cell].num_states * spec.num_layers))
    params = [rand(*shape) for shape in param_shapes(spec).values()]
    Y, last = forward(X, state, params)
    # every output counts differently
    total = (Y * rand(*Y.shape).detach()).sum() + sum((s * (i + 1)).sum() for i, s in enumerate(last))
    return [Y, *last, *torch.autograd.grad(total, [*state, *params])]


def route_kind(spec: ModelSpec) -> ModelSpec:
    """What a route depends on (cell, layers, input, activation) at tiny sizes: the key of the
    route cache and the problem each route is checked on."""
    return dataclasses.replace(spec, vocab_size=5, num_hiddens=8, embed_size=3)


def _device_key(device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def choose_route(device, spec: ModelSpec | None = None) -> Route:
    """The route for `spec`'s model (the book's by default) on `device`: $RNN_TUI_FAST_ROUTE if
    set, else the best one that works here."""
    requested = os.environ.get(ROUTE_ENV, "").strip().lower() or None
    return _choose_route(_device_key(device), route_kind(spec or ModelSpec()), requested)


@functools.cache
def _choose_route(device: torch.device, spec: ModelSpec, requested: str | None) -> Route:
    routes = _routes(device, spec)
    if requested is not None and requested not in ROUTES:
        raise ValueError(f"{ROUTE_ENV}={requested!r} is not a route; this model's are "
                         f"{', '.join(routes)} (all: {', '.join(ROUTES)})")
    fallback_route = routes["fallback"]
    if requested is not None and requested not in routes:
        return dataclasses.replace(
            fallback_route, detail=f"{fallback_route.detail}; {requested} does not compute a "
                                   f"{describe_kind(spec)}")
    route = routes[requested or _preferred(device, routes)]
    if route.name == "fallback":
        return route
    if route.name in ("rnn_tanh", "rnn_relu", "lstm") and device.type == "cuda":
        # cuDNN runs float32 RNNs in TF32 by default (about 1e-3 off); the book's numbers are
        # float32. This app runs no other cuDNN work that TF32 would speed up.
        torch.backends.cudnn.allow_tf32 = False
    problem = _route_problem(route, spec, device)
    if problem is None:
        return route
    return dataclasses.replace(
        fallback_route, detail=f"{fallback_route.detail}; {route.name} unusable: {problem}")


def describe_kind(spec: ModelSpec) -> str:
    """e.g. 'gru model', '2-layer lstm model on embeddings', 'rnn model with relu'."""
    text = f"{spec.num_layers}-layer {spec.cell}" if spec.num_layers > 1 else spec.cell
    if spec.input == "embedding":
        text += " on embeddings"
    if spec.activation != CELLS[spec.cell].activations[0]:
        text += f" with {spec.activation}"
    return f"{text} model"


clear_route_cache = _choose_route.cache_clear


def kernel_layout_params(spec: ModelSpec, params: Params) -> Params:
    """`params` with each layer's in its cell's fused_layout: the same values, new leaves."""
    W_emb, layers, output = split_params(spec, params)
    laid_out = [] if W_emb is None else [W_emb]
    for layer in layers:
        laid_out += CELLS[spec.cell].fused_layout(layer)
    return laid_out + list(output)


# ---- the model and its training step ----------------------------------------------------------

class RNNModelFast(RNNModel):
    """RNNModel's interface and parameters; the forward pass of a faster route."""

    def __init__(self, spec: ModelSpec, device, route: Route | None = None, params=None,
                 generator: torch.Generator | None = None):
        super().__init__(spec, device, params=params, generator=generator)
        self.route = route or choose_route(device, spec)
        cell = CELLS[spec.cell]
        if self.route.name in cell.fused.values() and cell.fused_layout is not None:
            # The kernel reads the layers' weights where they are, with no copy a batch.
            self.params = kernel_layout_params(spec, self.params)

    def __call__(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """X: token indices (batch_size, num_steps); outputs (num_steps * batch_size, vocab)."""
        return self.route.forward(X, tuple(state), self.params)


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

