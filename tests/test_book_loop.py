"""The Trainer against the book itself: a plain transcription of d2l's `train_epoch_ch8`, and
the iterators' random offsets pinned to the book's ranges.

Comparing the Trainer only with itself would not notice a loop that resets the state before
every sequential batch, or keeps it across random-sampling batches; the book's loop does.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from engine.config import TrainConfig
from engine.data import SeqDataLoader, load_corpus, seq_data_iter_random, seq_data_iter_sequential
from engine.model import RNNModelScratch
from engine.trainer import Trainer

SMALL = dict(num_hiddens=24, max_tokens=3000, batch_size=8, num_steps=12, lr=1.0, clip=1.0,
             sample_every=1000, threads=1, device="cpu")


def book_grad_clipping(params, theta):
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


def book_sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def train_epoch_ch8(net, train_iter, loss, lr, clip, use_random_iter):
    """d2l 8.5's `train_epoch_ch8`, transcribed (its Accumulator as two floats)."""
    state = None
    loss_sum, tokens = 0.0, 0
    for X, Y in train_iter:
        if state is None or use_random_iter:
            # Initialize `state` when either it is the first iteration or
            # using random sampling
            state = net.begin_state(batch_size=X.shape[0], device="cpu")
        else:
            for s in state:
                s.detach_()
        y = Y.T.reshape(-1)
        y_hat, state = net(X, state)
        l = loss(y_hat, y.long()).mean()
        l.backward()
        book_grad_clipping(net.params, clip)
        book_sgd(net.params, lr, batch_size=1)
        loss_sum += float(l.detach()) * y.numel()
        tokens += y.numel()
    return math.exp(loss_sum / tokens)


def book_perplexities(corpus, config: TrainConfig, epochs: int) -> list[float]:
    tokens, vocab = load_corpus(corpus.text, config.max_tokens, config.preprocess)
    loader = SeqDataLoader(tokens, vocab, config.batch_size, config.num_steps,
                           config.use_random_iter, seed=config.seed)
    net = RNNModelScratch(len(vocab), config.num_hiddens, "cpu",
                          generator=torch.Generator().manual_seed(config.seed))
    for p in net.params:
        p.grad = torch.zeros_like(p)
    loss = nn.CrossEntropyLoss()
    return [train_epoch_ch8(net, loader, loss, config.lr, config.clip, config.use_random_iter)
            for _ in range(epochs)]


@pytest.mark.parametrize("iterator", ["sequential", "random"])
@pytest.mark.parametrize("impl", ["book", "fast"])
def test_trainer_follows_the_books_loop(timemachine_corpus, iterator, impl):
    config = TrainConfig(**SMALL, iterator=iterator, impl=impl, epochs=3)
    history = list(Trainer(config, corpus=timemachine_corpus).run().history)
    expected = book_perplexities(timemachine_corpus, config, 3)
    # The same batches and the same math; only the order of float additions differs.
    assert history == pytest.approx(expected, rel=2e-5)


def test_the_comparison_notices_a_wrong_state_rule(timemachine_corpus):
    """The check above has teeth: sequential batches with the state reset every batch (the
    random-sampling rule) end an epoch measurably elsewhere."""
    config = TrainConfig(**SMALL, iterator="sequential")
    right = book_perplexities(timemachine_corpus, config, 3)
    tokens, vocab = load_corpus(timemachine_corpus.text, config.max_tokens)
    loader = SeqDataLoader(tokens, vocab, config.batch_size, config.num_steps, False, seed=0)
    net = RNNModelScratch(len(vocab), config.num_hiddens, "cpu",
                          generator=torch.Generator().manual_seed(0))
    for p in net.params:
        p.grad = torch.zeros_like(p)
    wrong = [train_epoch_ch8(net, loader, nn.CrossEntropyLoss(), 1.0, 1.0, True)
             for _ in range(3)]
    assert wrong[-1] != pytest.approx(right[-1], rel=2e-5)


def _first_tokens(iter_fn, num_steps: int, seeds: int) -> list[int]:
    corpus = list(range(1000))  # token i is i: the first X value is the offset
    return [int(next(iter_fn(corpus, 2, num_steps, random.Random(seed)))[0].min())
            for seed in range(seeds)]


def test_sequential_offset_is_drawn_from_0_to_num_steps_inclusive():
    # The book: offset = random.randint(0, num_steps).
    offsets = _first_tokens(seq_data_iter_sequential, 5, 400)
    assert set(offsets) == set(range(6))
    # And the batches it implies: ((1000 - offset - 1) // 2) // 5 per epoch.
    for offset in (0, 5):
        rng = random.Random(next(s for s in range(400) if _first_tokens(
            seq_data_iter_sequential, 5, s + 1)[-1] == offset))
        batches = list(seq_data_iter_sequential(list(range(1000)), 2, 5, rng))
        assert len(batches) == ((1000 - offset - 1) // 2) // 5
        assert int(batches[0][0][0, 0]) == offset


def test_random_offset_is_drawn_from_0_to_num_steps_minus_1():
    # The book: corpus[random.randint(0, num_steps - 1):], then subsequences num_steps apart.
    offsets = [t % 5 for t in _first_tokens(seq_data_iter_random, 5, 400)]
    assert set(offsets) == set(range(5))
