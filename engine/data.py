"""From text to mini-batches, as in d2l 8.2-8.3: preprocess, tokenize, Vocab, the two iterators."""

from __future__ import annotations

import collections
import random
import re
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from .errors import RnnTuiError


class DataError(RnnTuiError):
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
    if isinstance(tokens, collections.Counter):
        return tokens  # already counted (load_corpus counts with numpy)
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
        if isinstance(indices, torch.Tensor):  # a corpus from load_corpus, or a slice of one
            indices = indices.tolist()
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


def load_corpus(text: str, max_tokens: int = -1, mode: str = "book") -> tuple[torch.Tensor, Vocab]:
    """Token indices and vocabulary of a text (d2l's `load_corpus_time_machine`).

    The same numbers as tokenizing preprocess_lines(text) and counting every token in Python,
    computed with numpy a few megabytes at a time, so a 50 MB corpus takes seconds and little
    memory: the vocabulary still counts the whole text (as the book's does), but only the first
    max_tokens (<= 0: all) are kept, as one compact tensor (uint8 up to 256 tokens).
    """
    counts: dict[int, int] = {}    # code point -> count, in order of first appearance
    kept: list[np.ndarray] = []
    num_kept = 0
    for piece in _pieces(text):
        codes = _book_codes(piece) if mode != "raw" else _code_points(piece)
        _count(codes, counts)
        if max_tokens <= 0 or num_kept < max_tokens:
            take = codes if max_tokens <= 0 else codes[: max_tokens - num_kept]
            kept.append(take.astype(_narrowest(take)))
            num_kept += len(take)
    vocab = Vocab(collections.Counter({chr(c): n for c, n in counts.items()}))
    lookup = np.zeros(max(counts, default=0) + 1, dtype=np.uint8 if len(vocab) <= 256 else np.int32)
    for token, index in vocab.token_to_idx.items():
        if len(token) == 1:
            lookup[ord(token)] = index
    codes = np.concatenate(kept) if kept else np.zeros(0, dtype=np.uint8)
    del kept
    return torch.from_numpy(lookup[codes]), vocab


def _narrowest(codes: np.ndarray) -> type:
    top = int(codes.max()) if len(codes) else 0
    return np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32


PIECE_CHARS = 1 << 22       # how much text is processed at a time (bounds the extra memory)


def _pieces(text: str) -> Iterator[str]:
    """The text in pieces that end at a line break: the book's rules work line by line, so
    preprocessing each piece gives the same as preprocessing the whole."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + PIECE_CHARS)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _code_points(text: str) -> np.ndarray:
    # surrogatepass: a lone surrogate (never in decoded UTF-8, but a str may hold one) is a
    # code point like any other, as it is to the book's list(line).
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _book_codes(text: str) -> np.ndarray:
    """preprocess_lines(text) joined, as code points: letters lower-cased, each run of other
    characters one space, except a run that reaches a line's start or end, which goes."""
    c = _code_points(text)
    if len(c) == 0:
        return c
    lower = c | 0x20
    letter = (lower >= ord("a")) & (lower <= ord("z"))
    run_start = ~letter
    run_start[1:] &= letter[:-1]                  # the first character of each other run
    run = np.cumsum(run_start) - 1                # which run each character is in (or follows)
    dropped = np.zeros(int(run_start.sum()) + 1, dtype=bool)
    dropped[run[_line_breaks(c)]] = True          # runs with a line break in them
    if not letter[0]:
        dropped[0] = True                          # the run the text starts with
    if not letter[-1]:
        dropped[run[-1]] = True                    # and the one it ends with
    space = run_start & ~dropped[run]
    keep = letter | space
    return np.where(letter, lower, ord(" "))[keep]


def _line_breaks(c: np.ndarray) -> np.ndarray:
    """Where str.splitlines would end a line: \\n \\v \\f \\r, \\x1c-\\x1e, \\x85, \\u2028
    and \\u2029."""
    return (((c >= 0x0A) & (c <= 0x0D)) | ((c >= 0x1C) & (c <= 0x1E)) | (c == 0x85)
            | ((c | 1) == 0x2029))


def _count(codes: np.ndarray, counts: dict[int, int]) -> None:
    """Add the codes' counts; a code seen for the first time goes last, as a Counter would."""
    if len(codes) == 0:
        return
    tally = np.bincount(codes)
    present = np.flatnonzero(tally)
    new = [int(c) for c in present if int(c) not in counts]
    if len(new) > 1:  # order of first appearance
        firsts = {c: int(np.argmax(codes == c)) for c in new}
        new.sort(key=firsts.__getitem__)
    for c in new:
        counts[c] = 0
    for c in present:
        counts[int(c)] += int(tally[c])


def seq_data_iter_random(corpus: Sequence[int] | torch.Tensor, batch_size: int, num_steps: int,
                         rng: random.Random) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Random sampling: each batch holds subsequences from random places, none overlapping."""
    corpus = torch.as_tensor(corpus)
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
        yield torch.stack(X).long(), torch.stack(Y).long()


def seq_data_iter_sequential(corpus: Sequence[int] | torch.Tensor, batch_size: int, num_steps: int,
                             rng: random.Random) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Sequential partitioning: row i of each batch continues row i of the batch before."""
    corpus = torch.as_tensor(corpus)
    offset = rng.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = corpus[offset: offset + num_tokens]
    Ys = corpus[offset + 1: offset + 1 + num_tokens]
    Xs, Ys = Xs.reshape(batch_size, -1), Ys.reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        X = Xs[:, i: i + num_steps]
        Y = Ys[:, i: i + num_steps]
        yield X.long(), Y.long()  # the corpus may be stored narrower; the model indexes int64


def num_batches(corpus_len: int, batch_size: int, num_steps: int, use_random_iter: bool) -> int:
    """Batches per epoch at the worst offset, so a corpus that passes gives at least this many."""
    if use_random_iter:
        return ((corpus_len - num_steps) // num_steps) // batch_size
    return ((corpus_len - num_steps - 1) // batch_size) // num_steps


class SeqDataLoader:
    """An iterable over one epoch of batches, with its own random generator for offsets."""

    def __init__(self, corpus: Sequence[int] | torch.Tensor, vocab: Vocab, batch_size: int,
                 num_steps: int, use_random_iter: bool, seed: int = 0):
        self.corpus, self.vocab = torch.as_tensor(corpus), vocab
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
