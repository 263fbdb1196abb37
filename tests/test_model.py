"""The scratch RNN: parameters, state, gradients (gradcheck), clipping, generation."""

import math

import pytest
import torch
from torch.nn import functional as F

from engine.data import Vocab, tokenize
from engine.generate import predict, predict_ch8
from engine.model import RNNModelScratch, get_params, init_rnn_state, rnn
from engine.sampling import Sampling
from engine.train import book_train_step, grad_clipping, perplexity


def test_params_shapes_init_and_seed():
    W_xh, W_hh, b_h, W_hq, b_q = get_params(28, 512, "cpu", torch.Generator().manual_seed(0))
    assert W_xh.shape == (28, 512) and W_hh.shape == (512, 512) and W_hq.shape == (512, 28)
    assert torch.count_nonzero(b_h) == 0 and torch.count_nonzero(b_q) == 0
    assert abs(W_hh.std().item() - 0.01) < 0.0005 and abs(W_hh.mean().item()) < 0.0005
    again = get_params(28, 512, "cpu", torch.Generator().manual_seed(0))
    assert torch.equal(again[1], W_hh)
    assert all(p.requires_grad for p in again)


def test_forward_shapes_match_the_book():
    net = RNNModelScratch(28, 16, "cpu")
    X = torch.arange(10).reshape((2, 5))
    state = net.begin_state(X.shape[0])
    Y, new_state = net(X, state)
    assert Y.shape == (10, 28) and new_state[0].shape == (2, 16)
    assert init_rnn_state(3, 7, "cpu")[0].shape == (3, 7)


def test_rnn_gradients_pass_gradcheck_in_float64():
    torch.manual_seed(0)
    V, H, T, B = 5, 4, 3, 2
    params = [(p.detach().double() * 30).requires_grad_() for p in get_params(V, H, "cpu")]
    params[2] = torch.randn(H, dtype=torch.float64, requires_grad=True)
    params[4] = torch.randn(V, dtype=torch.float64, requires_grad=True)
    X = F.one_hot(torch.randint(0, V, (T, B)), V).double()
    H0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)

    def f(H0, *ps):
        Y, (Hn,) = rnn(X, (H0,), list(ps))
        return Y, Hn

    assert torch.autograd.gradcheck(f, (H0, *params))


def _net_with_grads(scale):
    net = RNNModelScratch(6, 5, "cpu", generator=torch.Generator().manual_seed(0))
    for i, p in enumerate(net.parameters()):
        p.grad = torch.full_like(p, scale * (i + 1))
    return net


def test_grad_clipping_scales_total_norm_to_theta_above_it():
    net = _net_with_grads(1.0)
    before = torch.sqrt(sum((p.grad ** 2).sum() for p in net.parameters()))
    norm = grad_clipping(net, 1.0)
    after = torch.sqrt(sum((p.grad ** 2).sum() for p in net.parameters()))
    assert norm.item() == pytest.approx(before.item())
    assert after.item() == pytest.approx(1.0, rel=1e-6)


def test_grad_clipping_leaves_small_gradients_untouched():
    net = _net_with_grads(1e-4)
    grads = [p.grad.clone() for p in net.parameters()]
    grad_clipping(net, 1.0)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, net.parameters()))


def test_non_finite_step_is_not_applied():
    net = RNNModelScratch(6, 5, "cpu", generator=torch.Generator().manual_seed(0))
    X = torch.randint(0, 6, (2, 3))
    before = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        net.params[3][0, 0] = float("nan")
        before[3][0, 0] = float("nan")
    _, norm, _ = book_train_step(net, X, X, net.begin_state(2), lr=1.0, clip=1.0)
    assert not math.isfinite(norm.item())
    assert all(torch.equal(a, b, ) or torch.allclose(a, b, equal_nan=True)
               for a, b in zip(before, net.parameters()))


def test_perplexity_overflows_to_inf():
    assert perplexity(0.0) == 1.0 and perplexity(1e6) == math.inf


def test_predict_matches_the_books_predict_ch8():
    vocab = Vocab(tokenize(["time traveller"], "char"))
    net = RNNModelScratch(len(vocab), 16, "cpu", generator=torch.Generator().manual_seed(1))
    book = predict_ch8("time traveller", 20, net, vocab, "cpu")
    ours = predict("time traveller", 20, net, vocab, "cpu")
    assert ours.full == book and len(ours.text) == 20
    assert len(ours.top) == 5 and sum(p for _, p in ours.top) <= 1.0 + 1e-6
    assert ours.top == tuple(sorted(ours.top, key=lambda t: -t[1]))


def test_predict_reports_unknown_characters_and_bad_requests():
    vocab = Vocab(tokenize(["abc"], "char"))
    net = RNNModelScratch(len(vocab), 8, "cpu")
    p = predict("aXb!", 3, net, vocab, "cpu")
    assert p.unknown == ((1, "X"), (3, "!")) and p.prefix == "aXb!"
    with pytest.raises(ValueError, match="prefix is empty"):
        predict("", 3, net, vocab, "cpu")
    with pytest.raises(ValueError, match="temperature"):
        predict("a", 3, net, vocab, "cpu", sampling=Sampling("temperature", temperature=-1))
    long = predict("ab" * 50_000, 2, net, vocab, "cpu")
    assert long.truncated == 100_000 - 2_000 and len(long.text) == 2


def test_sampling_with_temperature_is_reproducible():
    vocab = Vocab(tokenize(["abcdef"], "char"))
    net = RNNModelScratch(len(vocab), 8, "cpu")
    a = predict("ab", 30, net, vocab, "cpu", sampling=Sampling("temperature", temperature=1.0), generator=torch.Generator().manual_seed(0))
    b = predict("ab", 30, net, vocab, "cpu", sampling=Sampling("temperature", temperature=1.0), generator=torch.Generator().manual_seed(0))
    assert a.text == b.text and len(set(a.text)) > 1
