"""Sampling on a fixed logits vector: each strategy draws from what it promises."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from engine.data import Vocab, tokenize
from engine.generate import predict
from engine.model import RNNModelScratch
from engine.sampling import GREEDY, Sampling, SamplingError, parse_sampling
from tui.widgets.sampling_input import nudged, next_strategy

LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 3.0, -0.5, 1.5])
PROBS = torch.softmax(LOGITS, 0)
ORDER = PROBS.argsort(descending=True).tolist()  # likeliest first


def draws(sampling: Sampling, n: int = 4000, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.tensor([sampling.next_token(LOGITS, generator) for _ in range(n)])


def chi_square(counts: torch.Tensor, expected_probs: torch.Tensor) -> float:
    expected = expected_probs * counts.sum()
    keep = expected > 0
    return float((((counts - expected) ** 2)[keep] / expected[keep]).sum())


def test_greedy_is_the_argmax():
    assert GREEDY.next_token(LOGITS, None) == int(LOGITS.argmax()) == 5
    assert set(draws(GREEDY, 50).tolist()) == {5}


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_never_leaves_the_k_likeliest(k):
    seen = set(draws(Sampling("top-k", k=k), 2000).tolist())
    assert seen <= set(ORDER[:k]) and len(seen) == k


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8, 0.95])
def test_top_p_never_leaves_the_smallest_set_with_mass_p(p):
    cumulative = PROBS[ORDER].cumsum(0)
    size = int((cumulative < p).sum()) + 1  # the smallest prefix whose mass reaches p
    nucleus = set(ORDER[:size])
    assert float(PROBS[list(nucleus)].sum()) >= p
    seen = set(draws(Sampling("top-p", p=p), 2000).tolist())
    assert seen <= nucleus and len(seen) == len(nucleus)


def test_a_temperature_near_zero_is_greedy_and_one_is_softmax():
    assert set(draws(Sampling("temperature", temperature=1e-4), 300).tolist()) == {5}
    assert Sampling("temperature", temperature=0).greedy
    counts = torch.bincount(draws(Sampling("temperature", temperature=1.0)), minlength=8)
    assert chi_square(counts.float(), PROBS) < 24.3  # 7 degrees of freedom, p = 0.001


@pytest.mark.parametrize("alpha", [0.5, 2.0, 3.0])
def test_power_draws_from_p_to_the_alpha(alpha):
    target = PROBS ** alpha / (PROBS ** alpha).sum()
    counts = torch.bincount(draws(Sampling("power", alpha=alpha), 6000), minlength=8)
    # A fixed seed: the same draws every run, so this is a check, not a flaky test.
    assert chi_square(counts.float(), target) < 24.3
    # ... and not from plain softmax (it sharpens or flattens)
    assert chi_square(counts.float(), PROBS) > 24.3


def test_the_text_form_reads_back():
    for text in ("greedy", "temperature 0.8", "top-k 5", "top-p 0.9", "power 2"):
        assert str(parse_sampling(text)) == text
    assert parse_sampling("top_k:7") == Sampling("top-k", k=7)
    assert parse_sampling("t 0.5") == Sampling("temperature", temperature=0.5)


@pytest.mark.parametrize("text, message", [
    ("", "sampling is empty: write greedy, temperature T, top-k K, top-p P or power A"),
    ("hot", "sampling: 'hot' is not one of greedy, temperature T, top-k K, top-p P, power A"),
    ("top-k 0", "top-k's k must be a whole number from 1 to 100000, got 0"),
    ("top-k 2.5", "top-k: '2.5' is not a whole number"),
    ("top-p 1.5", "top-p's p must be above 0 and at most 1, got 1.5"),
    ("temperature -1", "temperature must be between 0 (greedy) and 100, got -1"),
    ("power nan", "power's alpha must be above 0 and at most 100, got nan"),
    ("greedy 3", "greedy takes no number"),
])
def test_bad_samplings_say_what_is_wrong(text, message):
    with pytest.raises(SamplingError) as e:
        parse_sampling(text)
    assert str(e.value) == message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_typed_sampling_is_read_or_refused_in_one_line(text):
    try:
        sampling = parse_sampling(text)
    except SamplingError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert parse_sampling(str(sampling)) == sampling


def test_predict_takes_the_sampling_whole_and_its_seed_repeats():
    vocab = Vocab(tokenize(["the time traveller for so it will be"], "char"))
    net = RNNModelScratch(len(vocab), 16, "cpu", generator=torch.Generator().manual_seed(1))
    sampling = Sampling("top-p", p=0.95, seed=7)
    a = predict("the", 40, net, vocab, "cpu", sampling)
    b = predict("the", 40, net, vocab, "cpu", sampling)
    assert a.text == b.text and len(set(a.text)) > 3
    assert predict("the", 40, net, vocab, "cpu", GREEDY).text == \
        predict("the", 40, net, vocab, "cpu").text


def test_the_prompt_keys_cycle_strategies_and_nudge_numbers():
    names = []
    s = GREEDY
    for _ in range(5):
        s = next_strategy(s)
        names.append(str(s))
    assert names == ["temperature 0.8", "top-k 5", "top-p 0.9", "power 2", "greedy"]
    assert str(nudged(Sampling("top-k", k=5), 1)) == "top-k 6"
    assert str(nudged(Sampling("top-k", k=1), -1)) == "top-k 1"  # no lower than its range
    assert str(nudged(Sampling("top-p", p=0.9), 1)) == "top-p 0.95"
    assert math.isclose(nudged(Sampling("temperature", temperature=0.8), -1).temperature, 0.7)
    assert nudged(GREEDY, 1) == GREEDY
