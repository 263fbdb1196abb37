"""From text to mini-batches, as in d2l 8.2-8.3: preprocess, tokenize, Vocab, the two iterators."""

from __future__ import annotations

import collections
import random
import re
from typing import Iterable, Iterator, Sequence

import torch


class DataError(ValueError):
    """Data that cannot make a single mini-batch, or similar; the message says why."""


def preprocess_lines(text: str, mode: str = "book") -> list[str]:
    """The book keeps letters only, lower-cased, each other run of characters one space.

    It works line by line and strips each line, so lines join with no space between them
    (d2l's `read_time_machine`): 170,580 tokens for the whole book. `raw` keeps everything.
    """
    if mode == "raw":
        return [text]
    return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.splitlines()]


def dropped_letters(text: str, mode: str = "book") -> collections.Counter:
    """The letters the book's preprocessing drops because they are not A-Z (é, ï, ß, ж...),
    counted, so that a run can say so instead of losing the accents of "naïve café" unseen."""
    if mode == "raw":
        return collections.Counter()
    return collections.Counter(re.findall(r"[^\W\d_A-Za-z]", text))


def dropped_notice(dropped: collections.Counter) -> str | None:
    """One line about dropped_letters' count, or None when nothing was dropped."""
    n = sum(dropped.values())
    if not n:
        return None
    shown = " ".join(ch for ch, _ in dropped.most_common(8))
    more = " …" if len(dropped) > 8 else ""
    return (f"the book's preprocessing dropped {n:,} letter{'s' if n != 1 else ''} outside "
            f"a-z ({shown}{more}); --preprocess raw keeps every character")


def tokenize(lines: Sequence[str], token: str = "char") -> list[list[str]]:
    """Split lines into word or character tokens."""
    if token == "word":
        return [line.split() for line in lines]
    if token == "char":
        return [list(line) for line in lines]
    raise ValueError(f"unknown token type: {token}")


def count_corpus(tokens: Iterable) -> collections.Counter:
    """Count token frequencies; tokens may be a flat list or a list of lines."""
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], list):
        tokens = [tok for line in tokens for tok in line]
    return collections.Counter(tokens)


class Vocab:
    """The book's vocabulary: tokens sorted by frequency, `<unk>` at index 0."""

    def __init__(self, tokens=None, min_freq: int = 0, reserved_tokens=None):
        tokens = tokens or []
        reserved_tokens = list(reserved_tokens or [])
        counter = count_corpus(tokens)
        # sorted() is stable, so ties keep the order of first appearance.
        self._token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = ["<unk>"] + reserved_tokens
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        for token, freq in self._token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token) - 1

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    def __contains__(self, token) -> bool:
        return token in self.token_to_idx

    def to_tokens(self, indices):
        if not isinstance(indices, (list, tuple)):
            return self.idx_to_token[indices]
        return [self.idx_to_token[index] for index in indices]

    @property
    def unk(self) -> int:
        return 0

    @property
    def token_freqs(self):
        return self._token_freqs

    @classmethod
    def from_tokens_list(cls, idx_to_token: Sequence[str]) -> "Vocab":
        """Rebuild a vocabulary from its saved token list (checkpoints)."""
        vocab = cls()
        vocab.idx_to_token = list(idx_to_token)
        vocab.token_to_idx = {t: i for i, t in enumerate(vocab.idx_to_token)}
        return vocab


def load_corpus(text: str, max_tokens: int = -1, mode: str = "book") -> tuple[list[int], Vocab]:
    """Token indices and vocabulary of a text (d2l's `load_corpus_time_machine`).

    max_tokens <= 0 keeps the whole corpus.
    """
    lines = preprocess_lines(text, mode)
    tokens = tokenize(lines, "char")
    vocab = Vocab(tokens)
    corpus = [vocab[token] for line in tokens for token in line]
    if max_tokens > 0:
        corpus = corpus[:max_tokens]
    return corpus, vocab


def seq_data_iter_random(corpus: Sequence[int], batch_size: int, num_steps: int,
                         rng: random.Random) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Random sampling: each batch holds subsequences from random places, none overlapping."""
    # Start at a random offset so every epoch sees different partitions.
    corpus = corpus[rng.randint(0, num_steps - 1):]
    # Subtract 1 because the labels are the inputs shifted by one token.
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    rng.shuffle(initial_indices)

    def data(pos):
        return corpus[pos: pos + num_steps]

    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        initial_indices_per_batch = initial_indices[i: i + batch_size]
        X = [data(j) for j in initial_indices_per_batch]
        Y = [data(j + 1) for j in initial_indices_per_batch]
        yield torch.tensor(X), torch.tensor(Y)


def seq_data_iter_sequential(corpus: Sequence[int], batch_size: int, num_steps: int,
                             rng: random.Random) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Sequential partitioning: row i of each batch continues row i of the batch before."""
    offset = rng.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset: offset + num_tokens])
    Ys = torch.tensor(corpus[offset + 1: offset + 1 + num_tokens])
    Xs, Ys = Xs.reshape(batch_size, -1), Ys.reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        X = Xs[:, i: i + num_steps]
        Y = Ys[:, i: i + num_steps]
        yield X, Y


def num_batches(corpus_len: int, batch_size: int, num_steps: int, use_random_iter: bool) -> int:
    """Batches per epoch at the worst offset, so a corpus that passes gives at least this many."""
    if use_random_iter:
        return ((corpus_len - num_steps) // num_steps) // batch_size
    return ((corpus_len - num_steps - 1) // batch_size) // num_steps


class SeqDataLoader:
    """An iterable over one epoch of batches, with its own random generator for offsets."""

    def __init__(self, corpus: Sequence[int], vocab: Vocab, batch_size: int, num_steps: int,
                 use_random_iter: bool, seed: int = 0):
        self.corpus, self.vocab = list(corpus), vocab
        self.batch_size, self.num_steps = batch_size, num_steps
        self.use_random_iter = use_random_iter
        self.data_iter_fn = seq_data_iter_random if use_random_iter else seq_data_iter_sequential
        self.rng = random.Random(seed)
        if num_batches(len(self.corpus), batch_size, num_steps, use_random_iter) < 1:
            raise DataError(
                f"the corpus has {len(self.corpus)} tokens, too few for one batch of "
                f"{batch_size} x {num_steps} (needs at least "
                f"{batch_size * num_steps + num_steps + 1}); use a longer text, raise "
                f"max tokens, or lower the batch size or steps")

    def __iter__(self):
        return self.data_iter_fn(self.corpus, self.batch_size, self.num_steps, self.rng)

    def __len__(self) -> int:
        """Batches in the next epoch (it depends on the random offset only at the margin)."""
        return num_batches(len(self.corpus), self.batch_size, self.num_steps, self.use_random_iter)
