"""Generation's limits: the temperature's range, the length's, and `<unk>` never generated."""

import math

import pytest
import torch

from engine.config import MAX_PREDICT_LEN
from engine.data import Vocab, tokenize
from engine.generate import predict, predict_ch8
from engine.sampling import MAX_TEMPERATURE, Sampling, check_temperature, parse_temperature
from engine.model import RNNModelScratch


def _net(seed=0, hidden=8):
    vocab = Vocab(tokenize(["the time traveller"], "char"))
    net = RNNModelScratch(len(vocab), hidden, "cpu", generator=torch.Generator().manual_seed(seed))
    return net, vocab


def _unk_loving_net():
    """A model whose output favours <unk> (index 0) by far, whatever the input."""
    net, vocab = _net()
    with torch.no_grad():
        b_q = net.params[-1]
        b_q.zero_()
        b_q[vocab.unk] = 50.0              # <unk>: by far the highest logit
        b_q[vocab["e"]] = 2.0              # then "e", then the rest
    return net, vocab


@pytest.mark.parametrize("temperature, shown", [
    (-1, "-1"), (-0.5, "-0.5"), (100.5, "100.5"), (1000, "1000"),
    (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"),
])
def test_predict_refuses_temperatures_outside_0_to_100(temperature, shown):
    net, vocab = _net()
    message = f"temperature must be between 0 (greedy) and 100, got {shown}"
    with pytest.raises(ValueError) as e:
        predict("the", 5, net, vocab, "cpu", sampling=Sampling("temperature", temperature=temperature))
    assert str(e.value) == message
    with pytest.raises(ValueError) as e:
        check_temperature(temperature)
    assert str(e.value) == message


def test_temperatures_from_0_to_100_are_accepted_and_typed_text_is_read_the_same_way():
    net, vocab = _net()
    assert MAX_TEMPERATURE == 100
    for t in (0, 0.8, 100, 1e-320):  # 1e-320: no overflow to inf/nan when dividing by it
        p = predict("the", 20, net, vocab, "cpu", sampling=Sampling("temperature", temperature=t),
                    generator=torch.Generator().manual_seed(0))
        assert len(p.text) == 20
    # A tiny temperature samples what greedy picks.
    tiny = predict("the", 20, net, vocab, "cpu", sampling=Sampling("temperature", temperature=1e-320),
                   generator=torch.Generator().manual_seed(0))
    assert tiny.text == predict("the", 20, net, vocab, "cpu").text
    assert parse_temperature(" 0.5 ") == 0.5 and parse_temperature("100") == 100.0
    with pytest.raises(ValueError, match=r"^temperature: 'hot' is not a number$"):
        parse_temperature("hot")
    with pytest.raises(ValueError, match=r"^temperature must be between 0 \(greedy\) and 100, got 1000$"):
        parse_temperature("1e3")


def test_predict_refuses_more_characters_than_a_sample_may_have():
    net, vocab = _net()
    assert MAX_PREDICT_LEN == 10_000
    with pytest.raises(ValueError) as e:
        predict("the", MAX_PREDICT_LEN + 1, net, vocab, "cpu")
    assert str(e.value) == "the number of characters to generate must be at most 10000, got 10001"
    assert len(predict("the", MAX_PREDICT_LEN, net, vocab, "cpu").text) == MAX_PREDICT_LEN


def test_unk_is_never_generated_greedy_or_sampled():
    net, vocab = _unk_loving_net()
    # The book's verbatim greedy loop does pick <unk> with this model: the mask is needed.
    assert "<unk>" in predict_ch8("the", 5, net, vocab, "cpu")
    greedy = predict("the", 30, net, vocab, "cpu")
    assert "<unk>" not in greedy.text and greedy.text == "e" * 30  # the best real character
    for t in (0.5, 1.0, 100.0):
        for seed in range(5):
            p = predict("the", 100, net, vocab, "cpu", sampling=Sampling("temperature", temperature=t),
                        generator=torch.Generator().manual_seed(seed))
            assert "<unk>" not in p.text and len(p.text) == 100
            assert all(ch in vocab.idx_to_token[1:] for ch in p.text)


def test_unk_is_left_out_of_the_top_next_characters():
    net, vocab = _unk_loving_net()
    p = predict("the", 1, net, vocab, "cpu", top_k=len(vocab))
    chars = [ch for ch, _ in p.top]
    assert "<unk>" not in chars
    assert sorted(chars) == sorted(vocab.idx_to_token[1:])  # every real character, once
    assert chars[0] == "e" and math.isclose(sum(q for _, q in p.top), 1.0, rel_tol=1e-5)


def test_masking_unk_keeps_the_books_greedy_text():
    """A model that does not pick <unk> generates exactly what the book's predict_ch8 does."""
    for seed in range(5):
        net, vocab = _net(seed, hidden=16)
        book = predict_ch8("time traveller", 40, net, vocab, "cpu")
        if "<unk>" in book[len("time traveller"):]:
            continue
        assert predict("time traveller", 40, net, vocab, "cpu").full == book
