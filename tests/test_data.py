"""Corpus preprocessing, the book's Vocab, and the two mini-batch iterators."""

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data import (DataError, SeqDataLoader, Vocab, load_corpus, preprocess_lines,
                         seq_data_iter_random, seq_data_iter_sequential, tokenize)


def test_preprocess_keeps_letters_lower_case_one_space_per_run():
    lines = preprocess_lines("The Time-Machine, by H. G. Wells [1898]\n\n  I  \n")
    assert lines == ["the time machine by h g wells", "", "i"]
    assert preprocess_lines("Keep: ALL\n", "raw") == ["Keep: ALL\n"]


def test_vocab_sorted_by_frequency_with_unk_first():
    tokens = tokenize(["abca", "ab", ""], "char")
    vocab = Vocab(tokens)
    # a: 3, b: 2, c: 1; ties would keep first appearance.
    assert vocab.idx_to_token == ["<unk>", "a", "b", "c"]
    assert vocab["a"] == 1 and vocab[["c", "z"]] == [3, 0]
    assert vocab.to_tokens([1, 2, 0]) == ["a", "b", "<unk>"]
    assert len(vocab) == 4 and "z" not in vocab


def test_vocab_min_freq_and_reserved_tokens():
    vocab = Vocab(tokenize(["aaab"], "char"), min_freq=2, reserved_tokens=["<pad>"])
    assert vocab.idx_to_token == ["<unk>", "<pad>", "a"]
    assert vocab["b"] == vocab.unk == 0


def test_time_machine_like_the_book(timemachine_corpus):
    corpus, vocab = load_corpus(timemachine_corpus.text, max_tokens=-1)
    assert len(corpus) == 170580 and len(vocab) == 28   # d2l 8.2's printed figures
    assert vocab.idx_to_token[:4] == ["<unk>", " ", "e", "t"]
    first, _ = load_corpus(timemachine_corpus.text, max_tokens=10_000)
    assert torch.equal(first, corpus[:10_000])


def seq(n):
    return list(range(n))


def test_sequential_batches_continue_each_other():
    corpus = seq(35)
    batches = list(seq_data_iter_sequential(corpus, 2, 5, random.Random(0)))
    offset = batches[0][0][0, 0].item()
    assert 0 <= offset <= 5
    for X, Y in batches:
        assert X.shape == Y.shape == (2, 5)
        assert torch.equal(Y, X + 1)  # labels are the next tokens
    # Row i of batch k+1 starts where row i of batch k ended.
    for (X0, _), (X1, _) in zip(batches, batches[1:]):
        assert torch.equal(X1[:, 0], X0[:, -1] + 1)
    rows = (35 - offset - 1) // 2
    assert len(batches) == rows // 5


def test_random_batches_cover_without_overlap():
    corpus = seq(100)
    batches = list(seq_data_iter_random(corpus, 3, 5, random.Random(1)))
    starts = [int(x[0]) for X, _ in batches for x in X]
    offset = min(starts) % 5
    assert all((s - offset) % 5 == 0 for s in starts)      # aligned to the offset
    assert len(set(starts)) == len(starts)                  # no subsequence twice
    windows = sorted(starts)
    assert all(b - a >= 5 for a, b in zip(windows, windows[1:]))  # no overlap
    num_subseqs = (100 - offset - 1) // 5
    assert len(batches) == num_subseqs // 3 and len(starts) == 3 * (num_subseqs // 3)
    for X, Y in batches:
        assert X.shape == (3, 5) and torch.equal(Y, X + 1)


@pytest.mark.parametrize("fn", [seq_data_iter_random, seq_data_iter_sequential])
def test_iterators_reproducible_from_seed_and_offsets_vary(fn):
    a = [X for X, _ in fn(seq(500), 4, 7, random.Random(3))]
    b = [X for X, _ in fn(seq(500), 4, 7, random.Random(3))]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    rng = random.Random(0)
    firsts = {int(next(iter(fn(seq(500), 4, 7, rng)))[0].min()) for _ in range(30)}
    assert len(firsts) > 1  # each epoch starts from a random offset


def test_loader_refuses_a_corpus_too_short_for_one_batch():
    with pytest.raises(DataError, match="too few for one batch"):
        SeqDataLoader(seq(100), Vocab(), 32, 35, use_random_iter=False)
    loader = SeqDataLoader(seq(32 * 35 + 36), Vocab(), 32, 35, use_random_iter=False)
    assert len(list(loader)) >= 1


def book_reference(text: str, mode: str):
    """The book's way, one Python token at a time: what load_corpus must equal."""
    tokens = tokenize(preprocess_lines(text, mode), "char")
    vocab = Vocab(tokens)
    return [vocab[t] for line in tokens for t in line], vocab


@pytest.mark.parametrize("mode", ["book", "raw"])
def test_load_corpus_gives_the_books_numbers_on_the_book(timemachine_corpus, mode):
    want, want_vocab = book_reference(timemachine_corpus.text, mode)
    for max_tokens in (0, 10_000, 7):
        corpus, vocab = load_corpus(timemachine_corpus.text, max_tokens, mode)
        assert vocab.idx_to_token == want_vocab.idx_to_token
        assert corpus.tolist() == (want[:max_tokens] if max_tokens > 0 else want)


# Letters, spaces, punctuation, every kind of line break str.splitlines knows, and any other
# code point: the runs of non-letters that cross line ends are where a shortcut would slip.
TEXT = st.text(st.one_of(st.sampled_from(list("aAbZz .,-\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029é")),
                         st.characters()), max_size=300)


@settings(max_examples=300, deadline=None)
@given(text=TEXT, mode=st.sampled_from(["book", "raw"]), max_tokens=st.integers(-1, 50))
def test_load_corpus_equals_the_books_way_on_any_text(text, mode, max_tokens):
    want, want_vocab = book_reference(text, mode)
    corpus, vocab = load_corpus(text, max_tokens, mode)
    assert vocab.idx_to_token == want_vocab.idx_to_token
    assert corpus.tolist() == (want[:max_tokens] if max_tokens > 0 else want)


def test_load_corpus_works_piece_by_piece(monkeypatch):
    """A long text is processed a few megabytes at a time, cut at line ends; tiny pieces
    give the very same numbers."""
    import engine.data as data
    text = "The Time-Machine,\r\n by H. G. Wells!\n\n  a\u2028b  \n" * 50 + "end."
    want, _ = load_corpus(text, 0)
    monkeypatch.setattr(data, "PIECE_CHARS", 3)
    got, _ = load_corpus(text, 0)
    assert torch.equal(got, want) and got.tolist() == book_reference(text, "book")[0]


def test_the_book_preprocessing_says_which_letters_it_drops():
    from engine.data import dropped_letters, dropped_notice
    text = "Naïve café, Straße: 1 — ok"
    assert dropped_letters(text) == {"ï": 1, "é": 1, "ß": 1}
    assert "".join(preprocess_lines(text)) == "na ve caf stra e ok"  # what the book keeps
    assert dropped_notice(dropped_letters(text)) == (
        "the book's preprocessing dropped 3 letters outside a-z (ï é ß); "
        "--preprocess raw keeps every character")
    assert dropped_letters(text, "raw") == {} and dropped_notice(dropped_letters("plain")) is None
