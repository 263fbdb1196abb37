"""Training pieces of d2l 8.5: gradient clipping, SGD, one training step, perplexity.

`book_train_step` is the chapter's inner loop body as written. The fast implementation
(engine/fast.py) provides a step with the same signature and the same numbers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .model import State

loss = nn.CrossEntropyLoss()


def grad_clipping(net, theta: float) -> torch.Tensor:
    """Scale all gradients together so their total L2 norm is at most theta; returns the norm.
    theta 0 clips nothing (the chapter's exercise: what happens without clipping)."""
    params = [p for p in net.parameters() if p.requires_grad]
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
    if theta > 0 and norm > theta:
        for param in params:
            param.grad[:] *= theta / norm
    return norm


def sgd(params, lr: float, batch_size: int) -> None:
    """Minibatch stochastic gradient descent (the loss is already a mean, so batch_size is 1)."""
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def book_train_step(net, X: torch.Tensor, Y: torch.Tensor, state: State, lr: float,
                    clip: float, optimizer=None, retain_graph: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, State]:
    """Forward, loss, backward, clip, update: the body of d2l's `train_epoch_ch8`.
    The update is the book's sgd unless an optimizer (engine.optim) is given; retain_graph
    keeps this batch's graph for the next batch's backward (CarriedGraph).

    Returns the summed loss over the batch's tokens (a tensor, so the caller decides when to
    read it), the gradient norm before clipping, and the new state. A step whose gradient is
    not finite is not applied, so a diverging run keeps its last good parameters.
    """
    y = Y.T.reshape(-1)
    y_hat, state = net(X, state)
    l = loss(y_hat, y.long()).mean()
    for p in net.parameters():
        p.grad = None
    l.backward(retain_graph=retain_graph)
    norm = grad_clipping(net, clip)
    if torch.isfinite(norm):
        if optimizer is None:
            sgd(net.parameters(), lr, batch_size=1)
        else:
            optimizer.book_step(net.parameters(), lr)
    return l.detach() * y.numel(), norm.detach(), state


class CarriedGraph:
    """The model, for sequential batches whose state is not detached (the chapter's exercise):
    the gradient of each batch then flows back through the batches before it.

    Those earlier batches computed with the parameters of their time, which the update has
    since changed in place; so each batch computes with fresh copies (`clone`, whose backward
    needs no saved values), and the gradient still reaches the parameters themselves. The
    steps keep each batch's graph (retain_graph) for the batches after it; the trainer cuts
    the graph every MAX_CARRIED_BATCHES batches, or memory would grow without end.
    """
    MAX_CARRIED_BATCHES = 16

    def __init__(self, net) -> None:
        self.net = net

    def __call__(self, X: torch.Tensor, state: State):
        params = self.net.params
        originals = list(params)
        params[:] = [p.clone() for p in originals]
        try:
            return self.net(X, state)
        finally:
            params[:] = originals

    def parameters(self):
        return self.net.parameters()


def perplexity(mean_loss: float) -> float:
    """exp of the mean cross-entropy; inf rather than an OverflowError for a diverged run."""
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return math.inf


# An epoch whose mean loss is this many times a uniform guess's (log V nats) has blown up: its
# perplexity is above V ** 1.5 (148 for the book's 28 characters), worse than guessing at random.
DIVERGED_LOSS_FACTOR = 1.5


def diverged(mean_loss: float, vocab_size: int) -> bool:
    """Whether an epoch's mean loss says the run has blown up (not finite, or far worse than a
    uniform guess over the vocabulary)."""
    return not math.isfinite(mean_loss) or mean_loss > DIVERGED_LOSS_FACTOR * math.log(vocab_size)
