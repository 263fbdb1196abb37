"""compare_surprise against a direct calculation: two tiny models (an RNN and an LSTM, with
different vocabularies) on the same text, one character at a time, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.data import Vocab
from engine.inspect import compare_surprise, surprise
from engine.model import RNNModelScratch
from tests.test_inspect import TEXT, VOCAB, tiny_lstm, tiny_rnn


def by_hand(net, vocab: Vocab, text: str) -> list[float]:
    """-log p(next character) one step at a time, each model with its own vocabulary."""
    state = net.begin_state(1)
    out = []
    with torch.no_grad():
        for a, b in zip(text, text[1:]):
            y, state = net(torch.tensor([[vocab[a]]]), state)
            out.append(-math.log(float(torch.softmax(y[0].double(), 0)[vocab[b]])))
    return out


def test_the_difference_is_the_per_character_cross_entropy_difference():
    a, b = tiny_rnn(), tiny_lstm()  # different cells, one vocabulary
    result = compare_surprise(a, VOCAB, b, VOCAB, TEXT, top=5)
    la, lb = by_hand(a, VOCAB, TEXT), by_hand(b, VOCAB, TEXT)
    assert result.text == TEXT and all(result.known)
    np.testing.assert_allclose(result.losses_a, la, rtol=1e-5)
    np.testing.assert_allclose(result.losses_b, lb, rtol=1e-5)
    np.testing.assert_allclose(result.differences, np.subtract(lb, la), rtol=1e-4, atol=1e-5)
    assert result.perplexity_a == pytest.approx(math.exp(np.mean(la)), rel=1e-5)
    assert result.perplexity_b == pytest.approx(math.exp(np.mean(lb)), rel=1e-5)
    assert result.mean_difference == pytest.approx(np.mean(lb) - np.mean(la), abs=1e-5)
    # Each side alone is what surprise() says of that model.
    assert result.surprise_a().losses == surprise(a, VOCAB, TEXT).losses
    assert result.perplexity_b == pytest.approx(surprise(b, VOCAB, TEXT).perplexity, rel=1e-6)
    # Where they differ most: the largest |B - A|, largest first.
    d = np.subtract(lb, la)
    order = sorted(range(len(d)), key=lambda i: -abs(d[i]))[:5]
    assert [m.position for m in result.most] == [i + 1 for i in order]
    for m in result.most:
        assert m.char == TEXT[m.position] and TEXT[:m.position].endswith(m.before)
        assert m.delta == pytest.approx(d[m.position - 1], rel=1e-4, abs=1e-5)


def test_a_vocabulary_that_lacks_characters_is_marked_not_compared():
    # B's vocabulary: no quote, no 'q', no full stop, and its indices in another order.
    tokens_b = ["<unk>", "e", "t", " ", "h", "a", "\n"]
    vocab_b = Vocab.from_tokens_list(tokens_b)
    b_net = RNNModelScratch(len(vocab_b), 5, "cpu", generator=torch.Generator().manual_seed(4))
    a = tiny_rnn()
    result = compare_surprise(a, VOCAB, b_net, vocab_b, TEXT, top=50)
    assert result.missing_a == ""
    assert result.missing_b == '".'
    expected_known = [c not in '".' for c in TEXT[1:]]
    assert list(result.known) == expected_known
    la, lb = by_hand(a, VOCAB, TEXT), by_hand(b_net, vocab_b, TEXT)  # <unk> where B lacks one
    np.testing.assert_allclose(result.losses_b, lb, rtol=1e-5)
    shared = [i for i, k in enumerate(expected_known) if k]
    assert result.compared == len(shared) < len(TEXT) - 1
    assert result.perplexity_a == pytest.approx(math.exp(np.mean([la[i] for i in shared])),
                                                rel=1e-5)
    assert result.perplexity_b == pytest.approx(math.exp(np.mean([lb[i] for i in shared])),
                                                rel=1e-5)
    # The characters B cannot read never count as differences or as its hardest.
    assert len(result.most) == len(shared)
    assert all(m.char not in '".' for m in result.most)
    assert all(h.char not in '".' for h in result.surprise_b(top=50).hardest)
    assert result.surprise_b().unknown == sum(c in '".' for c in TEXT)


def test_models_with_no_character_in_common_say_so():
    vocab_b = Vocab.from_tokens_list(["<unk>", "x", "y"])
    b = RNNModelScratch(len(vocab_b), 3, "cpu", generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="share no character"):
        compare_surprise(tiny_rnn(), VOCAB, b, vocab_b, "that hat", top=3)
    with pytest.raises(ValueError, match="too short"):
        compare_surprise(tiny_rnn(), VOCAB, tiny_lstm(), VOCAB, "!", preprocess="book")


def test_the_text_is_read_as_the_first_models_corpus_was():
    result = compare_surprise(tiny_rnn(), VOCAB, tiny_lstm(), VOCAB, "The Hat!\nEat",
                              preprocess="book")
    assert result.text == "the hateat"


def test_a_model_compared_with_itself_differs_by_nothing():
    net = tiny_rnn()
    result = compare_surprise(net, VOCAB, net, VOCAB, TEXT)
    assert result.differences == (0.0,) * (len(TEXT) - 1)
    assert result.perplexity_a == result.perplexity_b
    from tui.format import signed
    assert signed(result.mean_difference) == "+0.000" and signed(-1e-9) == "+0.000"
