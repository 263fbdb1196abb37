"""Generation (d2l's `predict_ch8`): warm up on the prefix, then predict one character at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import MAX_PREDICT_LEN
from .data import Vocab

# The hidden state forgets long before this; longer prefixes warm up on their tail only.
MAX_WARMUP_CHARS = 2_000
# Above this, sampling is as good as uniform over the vocabulary; 0 is the book's greedy argmax.
MAX_TEMPERATURE = 100.0
MIN_SAMPLING_TEMPERATURE = 1e-30  # smaller positive temperatures sample as this one does


@dataclass(frozen=True)
class Prediction:
    prefix: str                     # the prefix as the model saw it
    text: str                       # the generated continuation only
    unknown: tuple[tuple[int, str], ...] = ()   # (position, character) not in the vocabulary
    top: tuple[tuple[str, float], ...] = ()     # most likely next characters after the prefix
    truncated: int = 0              # characters dropped from the front of a long prefix
    note: str = ""                  # how the prefix was read, e.g. lower-cased for the model

    @property
    def full(self) -> str:
        return self.prefix + self.text


def normalize_prefix(prefix: str, preprocess: str) -> tuple[str, str | None]:
    """A model trained on the book's lower-case text knows no capitals: lower-case the prefix
    for it (saying so), rather than feeding every capital as <unk>."""
    if preprocess == "book" and prefix != prefix.lower():
        return prefix.lower(), "the prefix was lower-cased, as the model's corpus was"
    return prefix, None


def _number(value: float) -> str:
    """A temperature as the user would write it: 2 not 2.0, but 100.5, inf and nan as they are."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def check_temperature(value: float) -> float:
    """The temperature as a float, or ValueError: the one rule for the app's prompt, the
    `generate` command and predict()."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"temperature: {value!r} is not a number") from None
    if not (math.isfinite(t) and 0 <= t <= MAX_TEMPERATURE):
        raise ValueError(f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE:g}, "
                         f"got {_number(t)}")
    return t


def parse_temperature(text: str) -> float:
    """A temperature typed as text (a form field, a flag), checked by check_temperature."""
    return check_temperature(str(text).strip())


def check_num_preds(n: int) -> int:
    """How many characters to generate: 0 to MAX_PREDICT_LEN (the limit of predict_len too)."""
    if n < 0:
        raise ValueError(f"the number of characters to generate must be 0 or more, got {n}")
    if n > MAX_PREDICT_LEN:
        raise ValueError(f"the number of characters to generate must be at most "
                         f"{MAX_PREDICT_LEN}, got {n}")
    return n


def unknown_chars(prefix: str, vocab: Vocab) -> tuple[tuple[int, str], ...]:
    return tuple((i, ch) for i, ch in enumerate(prefix) if ch not in vocab)


def predict_ch8(prefix: str, num_preds: int, net, vocab: Vocab, device) -> str:
    """The book's greedy generation, verbatim: returns prefix + num_preds characters."""
    state = net.begin_state(batch_size=1, device=device)
    outputs = [vocab[prefix[0]]]

    def get_input():
        return torch.tensor([outputs[-1]], device=device).reshape((1, 1))

    for y in prefix[1:]:  # Warm-up period
        _, state = net(get_input(), state)
        outputs.append(vocab[y])
    for _ in range(num_preds):  # Predict num_preds steps
        y, state = net(get_input(), state)
        outputs.append(int(y.argmax(dim=1).reshape(1)))
    return "".join([vocab.idx_to_token[i] for i in outputs])


@torch.no_grad()
def predict(prefix: str, num_preds: int, net, vocab: Vocab, device, temperature: float = 0.0,
            top_k: int = 5, generator: torch.Generator | None = None,
            preprocess: str = "raw") -> Prediction:
    """predict_ch8 with more to show: sampling by temperature, top next characters, unknowns.

    temperature 0 is the book's greedy argmax; above 0 (up to MAX_TEMPERATURE) samples. The
    warm-up runs the whole prefix in one call (the same math as one step at a time) and
    unknown characters enter as `<unk>`, as in the book, but are reported instead of passing
    silently. `<unk>` is never generated: its logit is masked out before the argmax, the
    sampling and the top next characters (a trained model almost never picks it, so greedy
    text is the book's). `preprocess` is the corpus's ('book' or 'raw'): the prefix is read
    as the corpus was, and the note says how.
    """
    prefix, note = normalize_prefix(prefix, preprocess)
    if not prefix:
        raise ValueError("the prefix is empty: type at least one character")
    check_num_preds(num_preds)
    temperature = check_temperature(temperature)
    unknown = unknown_chars(prefix, vocab)
    truncated = max(0, len(prefix) - MAX_WARMUP_CHARS)
    seen = prefix[truncated:]
    indices = torch.tensor([vocab[list(seen)]], device=device)  # (1, len)
    state = net.begin_state(batch_size=1, device=device)
    if indices.shape[1] > 1:
        _, state = net(indices[:, :-1], state)
    last = indices[:, -1:]
    out: list[int] = []
    top: tuple[tuple[str, float], ...] = ()
    for i in range(num_preds + 1):
        y, state = net(last, state)
        # <unk> is an input for unknown characters, never an output.
        logits = y[-1].float().clone()
        logits[vocab.unk] = float("-inf")
        probs = torch.softmax(logits, dim=-1)
        if i == 0:
            k = min(top_k, probs.numel() - 1)
            p, idx = probs.topk(k)
            top = tuple((vocab.idx_to_token[j], float(q)) for j, q in zip(idx.tolist(), p.tolist()))
        if i == num_preds:
            break
        if temperature == 0:
            nxt = int(logits.argmax())
        else:
            # A temperature this small is greedy anyway; below it, float32 logits / temperature
            # overflow (or it rounds to 0) and the distribution would be nan.
            scaled = torch.softmax(logits / max(temperature, MIN_SAMPLING_TEMPERATURE), dim=-1)
            nxt = int(torch.multinomial(scaled.cpu(), 1, generator=generator))
        out.append(nxt)
        last = torch.tensor([[nxt]], device=device)
    return Prediction(seen, "".join(vocab.idx_to_token[i] for i in out), unknown, top, truncated,
                      note or "")
