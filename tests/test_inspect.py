"""engine.inspect against direct calculations on tiny random models (no corpus needed)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from engine.data import Vocab
from engine.fast import RNNModelFast, choose_route
from engine.model import ModelSpec
from engine.generate import predict
from engine.inspect import (CHAR_CLASSES, char_class_values, confidence, find_unit,
                            gradients_through_time, hidden_states, memorization, read_text,
                            surprise, text_windows)
from engine.model import RNNModelScratch
from engine.sampling import Sampling

TOKENS = ["<unk>", " ", "e", "t", "a", "h", ".", '"', "\n", "q"]
VOCAB = Vocab.from_tokens_list(TOKENS)
TEXT = 'the "tea" at\nhat. ha eat "the"\nta. e'


def tiny_rnn(hidden: int = 7, seed: int = 0, scale: float = 60.0) -> RNNModelScratch:
    """Weights large enough that the states move (the book's 0.01 would leave them near 0)."""
    net = RNNModelScratch(len(VOCAB), hidden, "cpu", generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for p in net.params:
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + 1)) * 0.01)
            p.mul_(scale)
    return net


# A two-part state, as an LSTM has (d2l 9.2), written here so the tests do not depend on cells.
def lstm_params(vocab_size, num_hiddens, device, generator=None):
    def normal(shape):
        return torch.randn(size=shape, generator=generator) * 0.5
    three = lambda: (normal((vocab_size, num_hiddens)), normal((num_hiddens, num_hiddens)),  # noqa
                     torch.zeros(num_hiddens))
    params = [*three(), *three(), *three(), *three(), normal((num_hiddens, vocab_size)),
              torch.zeros(vocab_size)]
    return [p.requires_grad_(True) for p in params]


def init_lstm_state(batch_size, num_hiddens, device):
    return (torch.zeros((batch_size, num_hiddens)), torch.zeros((batch_size, num_hiddens)))


def lstm(inputs, state, params):
    (W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q) = params
    H, C = state
    outputs = []
    for X in inputs:
        I = torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i)
        Fg = torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f)
        O = torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)
        C_tilda = torch.tanh((X @ W_xc) + (H @ W_hc) + b_c)
        C = Fg * C + I * C_tilda
        H = O * torch.tanh(C)
        outputs.append((H @ W_hq) + b_q)
    return torch.cat(outputs, dim=0), (H, C)


def tiny_lstm(hidden: int = 6) -> RNNModelScratch:
    return RNNModelScratch(len(VOCAB), hidden, "cpu", get_params=lstm_params,
                           init_state=init_lstm_state, forward_fn=lstm,
                           generator=torch.Generator().manual_seed(3))


# ---- surprise ------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [tiny_rnn, tiny_lstm], ids=["rnn", "lstm"])
def test_surprise_is_the_cross_entropy_of_each_next_character(make):
    net = make()
    result = surprise(net, VOCAB, TEXT, top=4)
    # Directly: one character at a time, the softmax of the output, -log p(next).
    state = net.begin_state(1)
    expected = []
    with torch.no_grad():
        for a, b in zip(TEXT, TEXT[1:]):
            y, state = net(torch.tensor([[VOCAB[a]]]), state)
            expected.append(-math.log(float(torch.softmax(y[0].double(), 0)[VOCAB[b]])))
    assert result.text == TEXT
    assert len(result.losses) == len(TEXT) - 1
    np.testing.assert_allclose(result.losses, expected, rtol=1e-5)
    assert result.perplexity == pytest.approx(math.exp(sum(expected) / len(expected)), rel=1e-5)
    worst = sorted(range(len(expected)), key=lambda i: -expected[i])[:4]
    assert [h.position for h in result.hardest] == [i + 1 for i in worst]
    for h in result.hardest:
        assert h.char == TEXT[h.position] and TEXT[:h.position].endswith(h.before)
        assert h.loss == pytest.approx(expected[h.position - 1], rel=1e-5)


def test_surprise_reads_text_as_the_corpus_was_and_counts_unknowns():
    read = read_text("The Hat!\nEat", VOCAB, "book")
    assert read.text == "the hateat"  # letters only, lower case, lines joined as the book does
    assert read.unknown == 0
    read = read_text("that zz", VOCAB, "raw")
    assert read.unknown == 2 and read.indices[-1] == VOCAB.unk
    assert read_text("a" * 50, VOCAB, limit=20).truncated == 30
    with pytest.raises(ValueError, match="too short"):
        surprise(tiny_rnn(), VOCAB, "!!", preprocess="book")


def test_surprise_of_the_fast_model_is_the_books():
    book = tiny_rnn()
    fast = RNNModelFast(ModelSpec(len(VOCAB), 7), "cpu", route=choose_route(torch.device("cpu")),
                        params=[p.detach().clone() for p in book.params])
    a, b = surprise(book, VOCAB, TEXT), surprise(fast, VOCAB, TEXT)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-4)


# ---- confidence ----------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_confidence_is_the_probability_of_each_chosen_character(temperature):
    net = tiny_rnn(scale=20.0)
    sampling = Sampling("temperature", temperature)
    result = confidence("the ", 25, net, VOCAB, "cpu", sampling,
                        generator=torch.Generator().manual_seed(5))
    plain = predict("the ", 25, net, VOCAB, "cpu", sampling,
                    generator=torch.Generator().manual_seed(5))
    assert result.prediction == plain  # predict() itself, unchanged
    assert len(result.probs) == 25
    # Directly, step by step as generation runs, <unk> masked.
    state = net.begin_state(1)
    with torch.no_grad():
        for ch in "the "[:-1]:
            _, state = net(torch.tensor([[VOCAB[ch]]]), state)
        last, expected, greatest = VOCAB[" "], [], []
        for ch in plain.text:
            y, state = net(torch.tensor([[last]]), state)
            logits = y[0].double()
            logits[VOCAB.unk] = -math.inf
            p = torch.softmax(logits, 0)
            expected.append(float(p[VOCAB[ch]]))
            greatest.append(float(p.max()))
            last = VOCAB[ch]
    np.testing.assert_allclose(result.probs, expected, rtol=1e-5)
    # predict() carries the same probabilities itself, for the prompt's shading.
    np.testing.assert_allclose(plain.probs, expected, rtol=1e-5)
    if temperature == 0:
        np.testing.assert_allclose(result.probs, greatest, rtol=1e-5)  # greedy: the most likely


# ---- hidden units --------------------------------------------------------------------------

def test_hidden_states_are_the_state_after_each_character():
    net = tiny_rnn()
    hs = hidden_states(net, VOCAB, TEXT)
    assert hs.H.shape == (len(TEXT), 7)
    W_xh, W_hh, b_h, _, _ = [p.detach() for p in net.params]
    H = torch.zeros(7)
    for t, ch in enumerate(TEXT):
        x = F.one_hot(torch.tensor(VOCAB[ch]), len(VOCAB)).float()
        H = torch.tanh(x @ W_xh + H @ W_hh + b_h)
        torch.testing.assert_close(hs.H[t], H)


def test_hidden_states_of_an_lstm_have_h_and_c():
    net = tiny_lstm()
    hs = hidden_states(net, VOCAB, TEXT)
    assert set(hs.states) == {"H", "C"}
    _, (H, C) = net(torch.tensor([VOCAB[list(TEXT[:9])]]), net.begin_state(1))
    torch.testing.assert_close(hs.states["H"][8], H[0].detach())
    torch.testing.assert_close(hs.states["C"][8], C[0].detach())


def test_hidden_states_record_gates_when_the_net_exposes_them():
    net = tiny_rnn()

    class WithGates:
        params = net.params

        def __call__(self, X, state):
            return net(X, state)

        def begin_state(self, batch_size, device=None):
            return net.begin_state(batch_size, device)

        def gates(self, X, state):
            return {"G": state[0] * 2 + X.float()}

    hs = hidden_states(WithGates(), VOCAB, TEXT)
    torch.testing.assert_close(hs.states["G"][1], hs.H[0] * 2 + VOCAB[TEXT[1]])


def test_char_classes_follow_their_definitions():
    text = 'a "be".\n c. "d'
    assert char_class_values(text, "space") == [float(c == " ") for c in text]
    assert char_class_values(text, "vowel") == [float(c in "aeiou") for c in text]
    assert char_class_values(text, "quote") == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert char_class_values(text, "line") == [1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6]
    assert char_class_values(text, "sentence") == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="unknown character class"):
        char_class_values(text, "bogus")


@pytest.mark.parametrize("char_class", list(CHAR_CLASSES))
def test_find_unit_ranks_units_by_their_correlation(char_class):
    net = tiny_rnn(hidden=9)
    hs = hidden_states(net, VOCAB, TEXT)
    ranked = find_unit(hs.H, hs.text, char_class, top=9)
    values = np.array(char_class_values(hs.text, char_class))
    direct = [np.corrcoef(hs.H[:, u].double().numpy(), values)[0, 1] for u in range(9)]
    assert sorted(u for u, _ in ranked) == list(range(9))
    for u, r in ranked:
        assert r == pytest.approx(direct[u], abs=1e-9)
    assert [abs(r) for _, r in ranked] == sorted((abs(r) for _, r in ranked), reverse=True)


def test_find_unit_plants_a_unit_and_finds_it():
    states = torch.randn(len(TEXT), 12, generator=torch.Generator().manual_seed(0))
    states[:, 7] = torch.tensor([1.0 if c == " " else -1.0 for c in TEXT])
    (unit, r), *_ = find_unit(states, TEXT, "space")
    assert unit == 7 and r == pytest.approx(1.0)
    states[:, 3] = 0.0  # a unit that never changes correlates with nothing
    assert dict(find_unit(states, TEXT, "space", top=12))[3] == 0.0


def test_find_unit_says_when_the_class_never_changes():
    with pytest.raises(ValueError, match="never changes"):
        find_unit(torch.randn(5, 3), "abcde", "quote")


# ---- gradients through time ----------------------------------------------------------------

def batch(batch_size=3, num_steps=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(1, len(VOCAB), (batch_size, num_steps), generator=g)
    Y = torch.randint(1, len(VOCAB), (batch_size, num_steps), generator=g)
    return X, Y


@pytest.mark.parametrize("clip", [1e-3, 1e6])
def test_gradients_through_time_equal_autograd_on_the_unrolled_graph(clip):
    net = tiny_rnn(scale=30.0)
    X, Y = batch()
    H0 = torch.randn(3, 7, generator=torch.Generator().manual_seed(9)) * 0.5
    result = gradients_through_time(net, X, Y, (H0,), clip)
    # Directly: the book's recurrence unrolled, each H_t kept, one backward pass.
    W_xh, W_hh, b_h, W_hq, b_q = [p.detach().clone().requires_grad_(True) for p in net.params]
    H, Hs, outs = H0, [], []
    for t in range(X.shape[1]):
        x = F.one_hot(X[:, t], len(VOCAB)).float()
        H = torch.tanh(x @ W_xh + H @ W_hh + b_h)
        H.retain_grad()
        Hs.append(H)
        outs.append(H @ W_hq + b_q)
    loss = F.cross_entropy(torch.cat(outs), Y.T.reshape(-1))
    loss.backward(retain_graph=True)
    expected = [float(H.grad.norm()) for H in Hs]
    grads = [H.grad.clone() for H in Hs]
    # The last step's part of the loss alone (the classic vanishing-gradient view).
    last = F.cross_entropy(outs[-1], Y[:, -1]) / X.shape[1]
    last_expected = [float(g.norm()) for g in torch.autograd.grad(last, Hs)]
    np.testing.assert_allclose(result.last_norms["H"], last_expected, rtol=1e-5)
    np.testing.assert_allclose(result.H, expected, rtol=1e-5)
    total = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in (W_xh, W_hh, b_h, W_hq, b_q)))
    assert result.grad_norm == pytest.approx(total, rel=1e-5)
    assert result.loss == pytest.approx(float(loss.detach()), rel=1e-6)
    scale = min(1.0, clip / total)
    np.testing.assert_allclose(result.clipped(), [n * scale for n in expected], rtol=1e-5)
    # What W_hh receives through step t: H_{t-1}^T (dL/dH_t * (1 - H_t^2)); W_hq: H_t^T dY_t.
    previous = [H0] + [H.detach() for H in Hs[:-1]]
    W_hh_steps = [float((prev.T @ (g * (1 - H.detach() ** 2))).norm())
                  for prev, H, g in zip(previous, Hs, grads)]
    np.testing.assert_allclose(result.param_norms["W_hh"], W_hh_steps, rtol=1e-4)
    dY = torch.softmax(torch.cat(outs).detach(), 1) - F.one_hot(Y.T.reshape(-1), len(VOCAB))
    dY = dY / dY.shape[0]
    W_hq_steps = [float((H.detach().T @ dY[3 * t:3 * t + 3]).norm()) for t, H in enumerate(Hs)]
    np.testing.assert_allclose(result.param_norms["W_hq"], W_hq_steps, rtol=1e-4)
    assert set(result.param_norms) == {"W_xh", "W_hh", "b_h", "W_hq", "b_q"}
    assert all(p.grad is None for p in net.params)  # the model's own gradients untouched


def test_gradients_through_time_of_the_fast_model_are_the_books():
    book = tiny_rnn(scale=30.0)
    fast = RNNModelFast(ModelSpec(len(VOCAB), 7), "cpu", route=choose_route(torch.device("cpu")),
                        params=[p.detach().clone().requires_grad_(True) for p in book.params])
    X, Y = batch()
    a = gradients_through_time(book, X, Y, book.begin_state(3), 1.0)
    b = gradients_through_time(fast, X, Y, fast.begin_state(3), 1.0)
    np.testing.assert_allclose(a.H, b.H, rtol=1e-4)
    for name in a.param_norms:
        np.testing.assert_allclose(a.param_norms[name], b.param_norms[name], rtol=1e-4, atol=1e-9)


def test_gradients_through_time_of_an_lstm_have_h_and_c_and_add_up():
    net = tiny_lstm()
    X, Y = batch(num_steps=6)
    result = gradients_through_time(net, X, Y, net.begin_state(3), 1.0)
    assert set(result.state_norms) == {"H", "C"} and len(result.state_norms["C"]) == 6
    assert len(result.param_norms) == 14
    # The per-step pieces add up to the usual gradient.
    params = [p.detach().clone().requires_grad_(True) for p in net.params]
    y, _ = lstm(F.one_hot(X.T, len(VOCAB)).float(), net.begin_state(3), params)
    F.cross_entropy(y, Y.T.reshape(-1)).backward()
    total = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params))
    assert result.grad_norm == pytest.approx(total, rel=1e-5)
    # The last step's C feeds no later step, so its gradient only comes through H_T.
    assert result.state_norms["C"][-1] > 0


# ---- memorization --------------------------------------------------------------------------

def brute_force(sample: str, training: str, window: int) -> tuple[int, int]:
    windows = [sample[i:i + window] for i in range(len(sample) - window + 1)]
    found = sum(1 for w in windows
                if any(training[j:j + window] == w for j in range(len(training) - window + 1)))
    return len(windows), found


@pytest.mark.parametrize("seed", range(5))
def test_memorization_equals_a_brute_force_window_search(seed):
    rng = random.Random(seed)
    training = "".join(rng.choice("ab ") for _ in range(400))
    copied = training[rng.randrange(300):][:60]
    sample = "".join(rng.choice("ab ") for _ in range(15)) + copied + "".join(
        rng.choice("ab ") for _ in range(15))
    for window in (1, 5, 20):
        windows, found = brute_force(sample, training, window)
        for index in (training, text_windows(training, window)):
            result = memorization(sample, index, window)
            assert (result.windows, result.found) == (windows, found)
        assert result.share == found / windows
    assert memorization(copied, training).share == 1.0


def test_memorization_of_a_sample_shorter_than_the_window_is_none():
    result = memorization("short", "a long training text")
    assert result.windows == 0 and result.share is None
    with pytest.raises(ValueError):
        memorization("abc", "abc", window=0)


# ---- the views the app asks for ------------------------------------------------------------

def test_units_view_is_find_unit_in_plain_numbers():
    from engine.inspect import units_view
    net = tiny_rnn(hidden=9)
    view = units_view(net, VOCAB, TEXT, char_class="vowel", top=4)
    hs = hidden_states(net, VOCAB, TEXT)
    assert view.ranked == find_unit(hs.H, TEXT, "vowel", top=4)
    assert view.rows[0] == tuple(hs.H[:, view.ranked[0][0]].tolist())
    assert view.values == tuple(char_class_values(TEXT, "vowel")) and view.num_units == 9
    assert all(type(x) is float for row in view.rows for x in row)
    quiet = units_view(net, VOCAB, "the tea", char_class="quote", top=3)
    assert "never changes" in quiet.problem and [u for u, _ in quiet.ranked] == [0, 1, 2]


def test_gradients_view_takes_a_batch_of_the_text_and_wraps():
    from engine.inspect import gradients_view, sequential_batch
    net = tiny_rnn(scale=30.0)
    tokens = VOCAB[list(TEXT * 3)]
    view = gradients_view(net, tokens, 2, 5, 1.0, index=7)
    assert view.batches == (len(tokens) - 1) // 2 // 5 and view.index == 7 % view.batches
    X, Y, _ = sequential_batch(tokens, 2, 5, view.index)
    assert view.gradients.H == gradients_through_time(net, X, Y, net.begin_state(2), 1.0).H
    assert X[0].tolist() == tokens[view.index * 5:view.index * 5 + 5]


def test_decay_per_step_is_the_geometric_mean_of_the_last_steps_falloff():
    net = tiny_rnn(scale=30.0)
    X, Y = batch(num_steps=8)
    g = gradients_through_time(net, X, Y, net.begin_state(3), 1.0)
    last = g.last_norms["H"]
    # Each step back multiplies the norm by its own factor; their geometric mean over 7 steps.
    factors = [last[t] / last[t + 1] for t in range(7)]
    assert g.decay_per_step() == pytest.approx(math.prod(factors) ** (1 / 7), rel=1e-9)
    X1, Y1 = batch(num_steps=1)
    assert gradients_through_time(net, X1, Y1, net.begin_state(3), 1.0).decay_per_step() is None


def test_compare_gradients_reads_the_same_batch_through_each_models_vocabulary():
    from engine.inspect import compare_gradients, gradients_view
    text = (TEXT * 3).replace("q", "")
    rnn, other = tiny_rnn(scale=30.0), tiny_lstm()
    # B's vocabulary lacks '"' and orders the rest differently: it reads '"' as <unk>.
    tokens_b = ["<unk>", "e", " ", "a", "t", "h", ".", "\n"]
    vocab_b = Vocab.from_tokens_list(tokens_b)
    net_b = RNNModelScratch(len(vocab_b), 6, "cpu", get_params=lstm_params,
                            init_state=init_lstm_state, forward_fn=lstm,
                            generator=torch.Generator().manual_seed(3))
    result = compare_gradients(rnn, VOCAB, net_b, vocab_b, text, 2, 5, 1.0, index=3)
    a = gradients_view(rnn, VOCAB[list(text)], 2, 5, 1.0, 3)
    b = gradients_view(net_b, [vocab_b[c] if c in tokens_b else 0 for c in text], 2, 5, 1.0, 3)
    assert result.a == a and result.b == b and result.b.index == 3
    assert set(result.b.gradients.state_norms) == {"H", "C"}
    assert result.missing_b == '"'
    # The same model on both sides gives the same figures.
    same = compare_gradients(other, VOCAB, other, VOCAB, text, 2, 5, 1.0)
    assert same.a.gradients.last_norms == same.b.gradients.last_norms and same.missing_b == ""
