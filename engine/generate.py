"""Generation (d2l's `predict_ch8`): warm up on the prefix, then predict one character at a time."""

from __future__ import annotations

import torch

from .config import MAX_PREDICT_LEN
from .data import Vocab
from .events import Prediction
from .sampling import GREEDY, Sampling

# The hidden state forgets long before this; longer prefixes warm up on their tail only.
MAX_WARMUP_CHARS = 2_000
# Finite parameters can still be large enough (a damaged or crafted checkpoint) that the
# output overflows float32 and the odds are not numbers.
OVERFLOW = ("the model's output overflows float32 (its parameters are far too large), so it "
            "has no odds to generate from")


def normalize_prefix(prefix: str, preprocess: str) -> tuple[str, str | None]:
    """A model trained on the book's lower-case text knows no capitals: lower-case the prefix
    for it (saying so), rather than feeding every capital as <unk>."""
    if preprocess == "book" and prefix != prefix.lower():
        return prefix.lower(), "the prefix was lower-cased, as the model's corpus was"
    return prefix, None


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
def predict(prefix: str, num_preds: int, net, vocab: Vocab, device,
            sampling: Sampling = GREEDY, generator: torch.Generator | None = None,
            preprocess: str = "raw", top_k: int = 5) -> Prediction:
    """predict_ch8 with more to show: any sampling, the top next characters, unknowns.

    `sampling` chooses each character (engine.sampling; greedy is the book's argmax); with a
    seed of its own it draws from a generator of that seed, else from `generator`. The
    warm-up runs the whole prefix in one call (the same math as one step at a time) and
    unknown characters enter as `<unk>`, as in the book, but are reported instead of passing
    silently. `<unk>` is never generated: its logit is masked out before choosing and before
    the top_k next characters (a trained model almost never picks it, so greedy text is the
    book's). `preprocess` is the corpus's ('book' or 'raw'): the prefix is read as the corpus
    was, and the note says how.
    """
    prefix, note = normalize_prefix(prefix, preprocess)
    if not prefix:
        raise ValueError("the prefix is empty: type at least one character")
    check_num_preds(num_preds)
    sampling = sampling.checked()
    if sampling.seed is not None:
        generator = torch.Generator().manual_seed(sampling.seed)
    unknown = unknown_chars(prefix, vocab)
    truncated = max(0, len(prefix) - MAX_WARMUP_CHARS)
    seen = prefix[truncated:]
    indices = torch.tensor([vocab[list(seen)]], device=device)  # (1, len)
    state = net.begin_state(batch_size=1, device=device)
    if indices.shape[1] > 1:
        _, state = net(indices[:, :-1], state)
    last = indices[:, -1:]
    out: list[int] = []
    chosen: list[float] = []  # how sure the model was of each character it wrote
    top: tuple[tuple[str, float], ...] = ()
    for i in range(num_preds + 1):
        y, state = net(last, state)
        # <unk> is an input for unknown characters, never an output.
        logits = y[-1].float().clone()
        logits[vocab.unk] = float("-inf")
        if i == 0:
            probs = torch.softmax(logits, dim=-1)
            if not bool(torch.isfinite(probs).all()):
                raise ValueError(OVERFLOW)
            p, idx = probs.topk(min(top_k, probs.numel() - 1))
            top = tuple((vocab.idx_to_token[j], float(q)) for j, q in zip(idx.tolist(), p.tolist()))
        if i == num_preds:
            break
        try:
            nxt = sampling.next_token(logits, generator)
        except RuntimeError as e:  # its odds are inf or nan: see OVERFLOW
            raise ValueError(OVERFLOW) from e
        out.append(nxt)
        chosen.append(float(torch.softmax(logits, dim=-1)[nxt]))
        last = torch.tensor([[nxt]], device=device)
    return Prediction(seen, "".join(vocab.idx_to_token[i] for i in out), unknown, top, truncated,
                      note or "", tuple(chosen))
