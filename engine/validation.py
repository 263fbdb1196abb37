"""Held-out perplexity: the end of the corpus kept out of training and scored every epoch.

The book trains and reports on the same text, so its perplexity of 1.0 says the model has
learned *that* text. Holding out the end of the token sequence (`--val-fraction F`) and
scoring it after each epoch shows when the model stops learning English and starts learning
the book by heart: validation perplexity turns up while training perplexity keeps falling.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.nn import functional as F

from .data import DataError
from .train import perplexity

# Time steps per forward pass: the held-out part goes through in a few passes of this length
# (the state carried from one to the next), so memory stays bounded for a whole corpus.
EVAL_CHUNK_STEPS = 512


def holdout(tokens: Sequence[int], fraction: float, num_steps: int
            ) -> tuple[list[int], list[int]]:
    """(training tokens, validation tokens): the last `fraction` of `tokens` held out.

    fraction 0 holds out nothing (the book's run). Raises DataError when the held-out part is
    too short for one validation sequence of num_steps + 1 tokens."""
    # load_corpus's tensor stays one (a list of 0-d tensors would cost ~100 bytes a token).
    tokens = tokens if isinstance(tokens, torch.Tensor) else list(tokens)
    if fraction <= 0:
        return tokens, []
    n_val = int(len(tokens) * fraction)
    if n_val < num_steps + 1:
        raise DataError(
            f"a validation fraction of {fraction:g} holds out {n_val} of the corpus's "
            f"{len(tokens):,} tokens, too few for one validation sequence of {num_steps + 1}; "
            "raise the fraction or max tokens, or lower the steps")
    held = tokens[-n_val:]
    return tokens[:-n_val], held.tolist() if isinstance(held, torch.Tensor) else held


def eval_layout(num_tokens: int, batch_size: int, num_steps: int) -> tuple[int, int]:
    """(rows, steps per row): the held-out tokens cut into at most batch_size contiguous rows
    of at least num_steps steps, read side by side as sequential partitioning reads them."""
    rows = max(1, min(batch_size, (num_tokens - 1) // max(1, num_steps)))
    return rows, (num_tokens - 1) // rows


@torch.no_grad()
def evaluate_perplexity(net, tokens: Sequence[int], batch_size: int, num_steps: int, device,
                        chunk_steps: int = EVAL_CHUNK_STEPS) -> float:
    """The model's perplexity on `tokens`, predicting each token from the ones before it in
    its row (rows as eval_layout cuts them; each row starts from a zero state, which is
    carried through the row). No gradients, no change to the model; a few forward passes."""
    rows, steps = eval_layout(len(tokens), batch_size, num_steps)
    if steps < 1:
        raise ValueError(f"{len(tokens)} tokens are too few to evaluate")
    data = torch.tensor(list(tokens[: rows * steps + 1]), dtype=torch.long)
    Xs = data[:-1].reshape(rows, steps).to(device)
    Ys = data[1:].reshape(rows, steps).to(device)
    state = net.begin_state(batch_size=rows, device=device)
    total = torch.zeros((), device=device, dtype=torch.float64)
    for start in range(0, steps, chunk_steps):
        X, Y = Xs[:, start: start + chunk_steps], Ys[:, start: start + chunk_steps]
        y_hat, state = net(X, state)  # outputs are time-major: (steps * rows, vocab)
        total += F.cross_entropy(y_hat, Y.T.reshape(-1), reduction="sum").double()
    return perplexity(float(total) / (rows * steps))
