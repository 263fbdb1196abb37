"""Looking inside the model: surprise, confidence, hidden units, gradients through time, and
how much of a sample was copied from the training text.

Each function takes the model as the trainer and `generate` hold it (`net(X, state)` with X the
token indices (batch, steps), `net.begin_state(batch, device)`, `net.params`), so it works for
any cell behind that interface, and returns plain numbers and strings (dataclasses of floats,
tuples and, for the hidden states, CPU tensors) that a UI or a command line can show.

The hidden-state views run the model one step at a time and keep the state after each step:
`state[0]` is H; an LSTM's state is (H, C). A net that also has `gates(X, state)` (returning
{name: (batch, hidden) tensor} for the step that X starts from `state`) has its gates
recorded too.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch.nn import functional as F

from .data import Vocab, preprocess_lines
from .generate import Prediction, predict
from .sampling import GREEDY, Sampling
from .model import RNNModel, RNNModelScratch
from .model import param_names as model_param_names

# Longer texts are cut to this many characters: the views run on the trainer's thread, between
# batches, and the hidden states are kept per step.
MAX_INSPECT_CHARS = 10_000
MEMORIZATION_WINDOW = 20     # characters: a window this long found verbatim was seen in training
STATE_NAMES = ("H", "C")     # the parts of a state, the book's names (RNN, GRU: H; LSTM: H, C)
BOOK_PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")
from .char_classes import CHAR_CLASSES, VOWELS  # noqa: E402 - torch-free, for the CLI


# ---- reading a text as the model's corpus was read -------------------------------------------

@dataclass(frozen=True)
class ModelText:
    text: str                  # the text as the model reads it (preprocessed, cut)
    indices: tuple[int, ...]   # its tokens
    truncated: int = 0         # characters dropped from the end
    unknown: int = 0           # characters read as <unk>


def read_text(text: str, vocab: Vocab, preprocess: str = "raw",
              limit: int = MAX_INSPECT_CHARS) -> ModelText:
    """Preprocess as the corpus was ('book': letters, lower case, lines joined) and cut to
    `limit` characters; ValueError if fewer than two characters are left."""
    seen = "".join(preprocess_lines(text, preprocess))
    truncated = max(0, len(seen) - limit)
    seen = seen[:limit]
    if len(seen) < 2:
        raise ValueError("the text is too short: the model needs at least two characters "
                         "(after its preprocessing) to be surprised by one")
    indices = tuple(vocab[list(seen)])
    return ModelText(seen, indices, truncated, sum(1 for c in seen if c not in vocab))


def _param_device(net) -> torch.device:
    return net.params[0].device


# ---- surprise: the loss on each character ------------------------------------------------------

@dataclass(frozen=True)
class Hard:
    position: int     # index in the text of the character that surprised the model
    char: str
    loss: float       # nats
    before: str       # the characters just before it, for context


@dataclass(frozen=True)
class Surprise:
    text: str
    losses: tuple[float, ...]   # losses[i]: nats to predict text[i + 1] after text[: i + 1]
    hardest: tuple[Hard, ...]
    truncated: int = 0
    unknown: int = 0

    @property
    def mean_loss(self) -> float:
        return sum(self.losses) / len(self.losses)

    @property
    def perplexity(self) -> float:
        return math.exp(self.mean_loss)


@torch.no_grad()
def char_losses(net, indices: Sequence[int]) -> torch.Tensor:
    """The cross-entropy of each next character, teacher forced: one forward pass over the
    text from a fresh state, as training computes its loss (no masking)."""
    device = _param_device(net)
    X = torch.tensor([list(indices)], device=device)
    state = net.begin_state(batch_size=1, device=device)
    Y_hat, _ = net(X[:, :-1], state)
    return F.cross_entropy(Y_hat.float(), X[0, 1:], reduction="none").cpu()


def hardest_chars(text: str, losses: Sequence[float], top: int = 10, context: int = 12,
                  known: Sequence[bool] | None = None) -> tuple[Hard, ...]:
    """The `top` characters with the highest loss, hardest first (ties: the earlier first);
    only those where known[i] is true, when it is given."""
    order = sorted((i for i in range(len(losses)) if known is None or known[i]),
                   key=lambda i: (-losses[i], i))[:top]
    return tuple(Hard(i + 1, text[i + 1], float(losses[i]), text[max(0, i + 1 - context): i + 1])
                 for i in order)


def surprise(net, vocab: Vocab, text: str, preprocess: str = "raw", top: int = 10) -> Surprise:
    """How surprised the model is by each character of a text, its perplexity on it, and the
    characters that surprised it most."""
    read = read_text(text, vocab, preprocess)
    losses = tuple(char_losses(net, read.indices).tolist())
    return Surprise(read.text, losses, hardest_chars(read.text, losses, top),
                    read.truncated, read.unknown)


# ---- two models' surprise on the same text ------------------------------------------------------

@dataclass(frozen=True)
class Difference:
    position: int     # index in the text of the character
    char: str
    loss_a: float     # nats, model A
    loss_b: float     # nats, model B
    before: str       # the characters just before it, for context

    @property
    def delta(self) -> float:
        """B's loss minus A's: above 0 where B is the more surprised."""
        return self.loss_b - self.loss_a


@dataclass(frozen=True)
class SurpriseComparison:
    """Two models' surprise on one text. losses_a[i] and losses_b[i] are each model's loss on
    text[i + 1]; known[i] says whether both vocabularies hold text[i + 1]. Where one lacks it,
    that model was asked for <unk>, which is no fair comparison: such characters are left out
    of the perplexities, the mean difference and the list of differences."""
    text: str
    losses_a: tuple[float, ...]
    losses_b: tuple[float, ...]
    known: tuple[bool, ...]
    most: tuple[Difference, ...]   # the biggest |B - A| among the known characters
    missing_a: str = ""            # the distinct characters of the text A's vocabulary lacks
    missing_b: str = ""
    truncated: int = 0

    @property
    def differences(self) -> tuple[float, ...]:
        return tuple(b - a for a, b in zip(self.losses_a, self.losses_b))

    @property
    def compared(self) -> int:
        """How many characters both models could be compared on."""
        return sum(self.known)

    def _mean(self, losses: Sequence[float]) -> float:
        return sum(x for x, k in zip(losses, self.known) if k) / self.compared

    @property
    def mean_loss_a(self) -> float:
        return self._mean(self.losses_a)

    @property
    def mean_loss_b(self) -> float:
        return self._mean(self.losses_b)

    @property
    def perplexity_a(self) -> float:
        return math.exp(self.mean_loss_a)

    @property
    def perplexity_b(self) -> float:
        return math.exp(self.mean_loss_b)

    @property
    def mean_difference(self) -> float:
        """B's mean loss minus A's, in nats per character (log of the perplexities' ratio)."""
        return self.mean_loss_b - self.mean_loss_a

    def surprise_a(self, top: int = 10) -> Surprise:
        """A's side alone, as surprise() gives it (its hardest among the known characters)."""
        return self._side(self.losses_a, self.missing_a, top)

    def surprise_b(self, top: int = 10) -> Surprise:
        return self._side(self.losses_b, self.missing_b, top)

    def _side(self, losses: tuple[float, ...], missing: str, top: int) -> Surprise:
        return Surprise(self.text, losses, hardest_chars(self.text, losses, top,
                                                         known=self.known),
                        self.truncated, sum(1 for c in self.text if c in missing))


def most_different(text: str, losses_a: Sequence[float], losses_b: Sequence[float],
                   known: Sequence[bool], top: int = 10, context: int = 12
                   ) -> tuple[Difference, ...]:
    """The `top` known characters with the largest |B - A|, largest first (ties: the earlier)."""
    order = sorted((i for i in range(len(losses_a)) if known[i]),
                   key=lambda i: (-abs(losses_b[i] - losses_a[i]), i))[:top]
    return tuple(Difference(i + 1, text[i + 1], float(losses_a[i]), float(losses_b[i]),
                            text[max(0, i + 1 - context): i + 1]) for i in order)


def _missing(text: str, vocab: Vocab) -> str:
    return "".join(dict.fromkeys(c for c in text if c not in vocab))


def compare_surprise(net_a, vocab_a: Vocab, net_b, vocab_b: Vocab, text: str,
                     preprocess: str = "raw", top: int = 10) -> SurpriseComparison:
    """Two models' surprise on the same text, character by character, and where they differ
    most. The text is read as A's corpus was (`preprocess`); each model reads it with its own
    vocabulary, on its own device, whatever its cell. ValueError when no character of the text
    (after the first) is in both vocabularies."""
    read = read_text(text, vocab_a, preprocess)
    losses_a = tuple(char_losses(net_a, read.indices).tolist())
    losses_b = tuple(char_losses(net_b, vocab_b[list(read.text)]).tolist())
    known = tuple(c in vocab_a and c in vocab_b for c in read.text[1:])
    missing_a, missing_b = _missing(read.text, vocab_a), _missing(read.text, vocab_b)
    if not any(known):
        raise ValueError("the two models share no character of this text: nothing to compare "
                         f"(not in the first model's vocabulary: {missing_a!r}; not in the "
                         f"second's: {missing_b!r})")
    return SurpriseComparison(read.text, losses_a, losses_b, known,
                              most_different(read.text, losses_a, losses_b, known, top),
                              missing_a, missing_b, read.truncated)


# ---- confidence: the probability of each generated character ----------------------------------

@dataclass(frozen=True)
class Confidence:
    prediction: Prediction
    probs: tuple[float, ...]   # probs[i]: the model's probability of text[i] when it was chosen

    @property
    def text(self) -> str:
        return self.prediction.text


@torch.no_grad()
def next_char_probs(net, vocab: Vocab, prefix: str, text: str) -> tuple[float, ...]:
    """The model's probability of each character of `text` after `prefix` and the text before
    it, with <unk> masked out as generation masks it (predict)."""
    device = _param_device(net)
    X = torch.tensor([vocab[list(prefix + text)]], device=device)
    state = net.begin_state(batch_size=1, device=device)
    Y_hat, _ = net(X[:, :-1], state)
    logits = Y_hat[len(prefix) - 1:].float()
    logits[:, vocab.unk] = float("-inf")
    probs = torch.softmax(logits, dim=-1)
    chosen = X[0, len(prefix):]
    return tuple(probs.gather(1, chosen.unsqueeze(1)).squeeze(1).cpu().tolist())


def confidence(prefix: str, num_preds: int, net, vocab: Vocab, device,
               sampling: Sampling = GREEDY, generator: torch.Generator | None = None,
               preprocess: str = "raw") -> Confidence:
    """predict() (greedy by default), with the probability the model gave each character it
    wrote. With a sampling strategy the choice is drawn, but the probability shown is still
    the model's own (its softmax, <unk> masked): how sure the model was, not how the dice were
    loaded."""
    prediction = predict(prefix, num_preds, net, vocab, device, sampling=sampling,
                         generator=generator, preprocess=preprocess)
    probs = next_char_probs(net, vocab, prediction.prefix, prediction.text) if prediction.text \
        else ()
    return Confidence(prediction, probs)


# ---- hidden units ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class HiddenStates:
    text: str
    states: dict[str, torch.Tensor]   # name ("H", "C", gate names) -> (len(text), units), CPU
    truncated: int = 0

    @property
    def H(self) -> torch.Tensor:
        return self.states["H"]


def _units(part: torch.Tensor) -> torch.Tensor:
    """One sequence's units from a state part: (batch, hidden) or, for a deep net,
    (layers, batch, hidden) with the layers' units one after the other."""
    if part.dim() == 2:
        return part[0]
    return part[:, 0].reshape(-1)


@torch.no_grad()
def hidden_states(net, vocab: Vocab, text: str, preprocess: str = "raw",
                  limit: int = 2_000) -> HiddenStates:
    """The state after each character of the text, one step at a time from a fresh state: row t
    is the state once text[t] has been read. H always; C for an LSTM; gates if the net has
    `gates(X, state)`."""
    read = read_text(text, vocab, preprocess, limit)
    device = _param_device(net)
    X = torch.tensor([list(read.indices)], device=device)
    state = net.begin_state(batch_size=1, device=device)
    gates_of = getattr(net, "gates", None)
    rows: dict[str, list[torch.Tensor]] = {}
    for t in range(X.shape[1]):
        X_t = X[:, t:t + 1]
        if callable(gates_of):
            for name, value in gates_of(X_t, state).items():
                rows.setdefault(name, []).append(_units(value))
        _, state = net(X_t, state)
        names = net.state_names if isinstance(net, RNNModel) else STATE_NAMES
        for i, part in enumerate(state):
            name = names[i] if i < len(names) else f"state{i}"
            rows.setdefault(name, []).append(_units(part))
    states = {name: torch.stack(r).float().cpu() for name, r in rows.items()}
    return HiddenStates(read.text, states, read.truncated)


def char_class_values(text: str, char_class: str) -> list[float]:
    """The class's value after each character (see CHAR_CLASSES): 1/0 indicators, and for
    'line' the position in the line."""
    values: list[float] = []
    inside = False
    column = 0
    last = ""
    for ch in text:
        if char_class == "space":
            values.append(float(ch == " "))
        elif char_class == "vowel":
            values.append(float(ch in VOWELS))
        elif char_class == "quote":
            inside ^= ch == '"'
            values.append(float(inside))
        elif char_class == "line":
            column = 0 if ch == "\n" else column + 1
            values.append(float(column))
        elif char_class == "sentence":
            if not ch.isspace():
                last = ch
            values.append(float(last == "."))
        else:
            raise ValueError(f"unknown character class {char_class!r}; choose one of "
                             f"{', '.join(CHAR_CLASSES)}")
    return values


def correlations(states: torch.Tensor, values: Sequence[float]) -> torch.Tensor:
    """Pearson's correlation of each unit (a column of states, (T, units)) with the values;
    0 for a unit that never changes."""
    A = states.double()
    v = torch.tensor(list(values), dtype=torch.float64)
    A = A - A.mean(0)
    v = v - v.mean()
    denom = A.norm(dim=0) * v.norm()
    r = (A * v.unsqueeze(1)).sum(0) / denom
    return torch.where(denom > 0, r, torch.zeros_like(r))


def find_unit(states: torch.Tensor, text: str, char_class: str, top: int = 5
              ) -> tuple[tuple[int, float], ...]:
    """The units whose activation follows the class best: (unit, correlation), by |r|."""
    if states.shape[0] != len(text):
        raise ValueError(f"{states.shape[0]} states for a text of {len(text)} characters")
    values = char_class_values(text, char_class)
    if len(set(values)) < 2:
        raise ValueError(f"the text never changes class {char_class!r} "
                         f"({CHAR_CLASSES[char_class]}): nothing to correlate with")
    r = correlations(states, values)
    order = sorted(range(len(r)), key=lambda u: (-abs(float(r[u])), u))[:top]
    return tuple((u, float(r[u])) for u in order)


# ---- gradients through time ------------------------------------------------------------------

@dataclass(frozen=True)
class GradientsThroughTime:
    state_norms: dict[str, tuple[float, ...]]   # "H" (and "C"): |dL/dH_t| for t = 1..num_steps
    param_norms: dict[str, tuple[float, ...]]   # name -> |the gradient it receives through step t|
    grad_norm: float                            # the whole gradient's norm, before clipping
    clip: float
    loss: float
    # |dL_T/dH_t|: the gradient of the last step's part of the loss alone (L_T / num_steps),
    # which has to travel back through every step after t: where vanishing shows plainly.
    last_norms: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def scale(self) -> float:
        """The book's clipping factor: gradients are scaled by clip / norm above the clip."""
        return self.clip / self.grad_norm if self.grad_norm > self.clip else 1.0

    @property
    def H(self) -> tuple[float, ...]:
        return self.state_norms["H"]

    def clipped(self, name: str = "H") -> tuple[float, ...]:
        return tuple(n * self.scale for n in self.state_norms[name])

    def decay_per_step(self, name: str = "H") -> float | None:
        """How much |dL_T/d{name}_t| is multiplied by for each step it travels back, on average
        (the geometric mean over the steps): under 1 it vanishes, over 1 it explodes. None for
        one step, or a norm of 0 (nothing came back)."""
        last = self.last_norms.get(name, ())
        if len(last) < 2 or not last[0] > 0 or not last[-1] > 0:
            return None
        return (last[0] / last[-1]) ** (1 / (len(last) - 1))


def param_names(net) -> tuple[str, ...]:
    if isinstance(net, RNNModel):  # any cell: the registry's names (W_xz, ..., W_xh_l1, ...)
        return model_param_names(net.spec)
    if len(net.params) == len(BOOK_PARAM_NAMES):
        return BOOK_PARAM_NAMES
    return tuple(f"param{i}" for i in range(len(net.params)))


def _norms(grads: Iterable[torch.Tensor]) -> tuple[float, ...]:
    return tuple(float(g.double().norm()) for g in grads)


MAX_GRADIENT_STEPS = 1_000   # time steps unrolled for gradients through time
MAX_GRADIENT_BATCH = 1_024


def sequential_batch(tokens: Sequence[int], batch_size: int, num_steps: int, index: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Batch `index` of d2l's sequential partitioning, from offset 0 (no random offset, so
    the same text gives the same batch): X, Y and a note. A text too short for batch_size rows
    gives as many rows as it fills, and the note says so."""
    if not 1 <= num_steps <= MAX_GRADIENT_STEPS:
        raise ValueError(f"the number of steps must be between 1 and {MAX_GRADIENT_STEPS}, "
                         f"got {num_steps}")
    if not 1 <= batch_size <= MAX_GRADIENT_BATCH:
        raise ValueError(f"the batch size must be between 1 and {MAX_GRADIENT_BATCH}, "
                         f"got {batch_size}")
    rows = (len(tokens) - 1) // num_steps
    if rows < 1:
        raise ValueError(f"the text has {len(tokens)} characters, too few for one sequence of "
                         f"{num_steps} steps (needs {num_steps + 1})")
    note = ""
    if batch_size > rows:
        note = (f"the text fills {rows} sequence(s) of {num_steps} steps, not {batch_size}: "
                f"the batch has {rows}")
        batch_size = rows
    num_tokens = ((len(tokens) - 1) // batch_size) * batch_size
    # as_tensor: tokens may be a list or load_corpus's compact tensor; the model wants int64.
    Xs = torch.as_tensor(tokens[:num_tokens], dtype=torch.long).reshape(batch_size, -1)
    Ys = torch.as_tensor(tokens[1:num_tokens + 1], dtype=torch.long).reshape(batch_size, -1)
    start = index * num_steps
    if start + num_steps > Xs.shape[1]:
        raise ValueError(f"the text has {Xs.shape[1] // num_steps} batch(es), no batch {index}")
    return Xs[:, start:start + num_steps], Ys[:, start:start + num_steps], note


def book_call(net, X: torch.Tensor, state):
    """The model's step as the chapter writes it: a fast model (a subclass of RNNModel with a
    fused route) computes its outputs inside one kernel, from a state that is not the
    one it returns, so the gradient with respect to the returned state would miss the output
    layer's part. Its forward_fn is the book's, on the same parameters (tests prove the two
    agree)."""
    for book in (RNNModel, RNNModelScratch):  # a spec's model (RNNModelFast's base), the book's
        if isinstance(net, book):
            return book.__call__(net, X, state)
    return net(X, state)


def gradients_through_time(net, X: torch.Tensor, Y: torch.Tensor, state, clip: float
                           ) -> GradientsThroughTime:
    """For one batch, the loss's gradient with respect to the state after each step, and what
    each step adds to each weight's gradient.

    The batch is unrolled one step at a time, each step with its own leaf copy of the
    parameters (the same values), so that autograd gives the gradient that flows into the
    weights through step t; over the steps these add up to the usual gradient. The loss is
    training's: the mean cross-entropy over all the batch's characters, and dL/dH_t is the
    chapter's (8.7): through the output at step t and through every later step. The model's
    own parameters and their .grad are left alone.
    """
    num_steps = X.shape[1]
    device = _param_device(net)
    X, Y = X.to(device), Y.to(device)
    state = tuple(s.detach() for s in state)
    with torch.enable_grad():
        step_params, outputs, states = [], [], []
        for t in range(num_steps):
            params = [p.detach().requires_grad_(True) for p in net.params]
            step_net = copy.copy(net)  # the same model, reading this step's parameter copies
            step_net.params = params
            y, state = book_call(step_net, X[:, t:t + 1], state)
            step_params.append(params)
            outputs.append(y)
            states.append(state)
        l = F.cross_entropy(torch.cat(outputs).float(), Y.T.reshape(-1).long())
        parts = len(states[0])
        state_parts = [s[i] for s in states for i in range(parts)]
        l_last = F.cross_entropy(outputs[-1].float(), Y[:, -1].long()) / num_steps
        last_grads = torch.autograd.grad(l_last, state_parts, allow_unused=True,
                                         retain_graph=True)
        wrt = state_parts + [p for ps in step_params for p in ps]
        grads = torch.autograd.grad(l, wrt, allow_unused=True)
    last_grads = [torch.zeros_like(w) if g is None else g for w, g in zip(state_parts, last_grads)]
    grads = [torch.zeros_like(w) if g is None else g for w, g in zip(wrt, grads)]
    state_grads, param_grads = grads[:num_steps * parts], grads[num_steps * parts:]
    state_norms, last_norms = {}, {}
    for i in range(parts):
        name = STATE_NAMES[i] if i < len(STATE_NAMES) else f"state{i}"
        state_norms[name] = _norms(state_grads[t * parts + i] for t in range(num_steps))
        last_norms[name] = _norms(last_grads[t * parts + i] for t in range(num_steps))
    names = param_names(net)
    k = len(names)
    param_norms = {name: _norms(param_grads[t * k + j] for t in range(num_steps))
                   for j, name in enumerate(names)}
    totals = [sum(param_grads[t * k + j] for t in range(num_steps)) for j in range(k)]
    grad_norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in totals))
    return GradientsThroughTime(state_norms, param_norms, grad_norm, float(clip), float(l.detach()),
                                last_norms)


# ---- memorization --------------------------------------------------------------------------

@dataclass(frozen=True)
class Memorization:
    windows: int       # windows of the sample
    found: int         # of those, found verbatim in the training text
    window: int = MEMORIZATION_WINDOW

    @property
    def share(self) -> float | None:
        """The share of the sample's windows seen in training; None for a sample too short."""
        return self.found / self.windows if self.windows else None


def text_windows(text: str, window: int = MEMORIZATION_WINDOW) -> frozenset[str]:
    """Every `window`-character substring of a text: built once per training text, then each
    sample's windows are looked up in it."""
    return frozenset(text[i:i + window] for i in range(len(text) - window + 1))


def memorization(sample: str, training: str | frozenset[str],
                 window: int = MEMORIZATION_WINDOW) -> Memorization:
    """The share of the sample's `window`-character windows that occur verbatim in the
    training text (a str, or its text_windows() for many samples)."""
    if window < 1:
        raise ValueError(f"the window must be at least 1 character, got {window}")
    starts = range(len(sample) - window + 1)
    # `in` is a substring search in a str and a lookup in a set of windows of this length.
    found = sum(1 for i in starts if sample[i:i + window] in training)
    return Memorization(len(starts), found, window)


# ---- views: plain values for a UI, computed where the model lives ------------------------------

@dataclass(frozen=True)
class UnitsView:
    text: str
    char_class: str
    values: tuple[float, ...]                    # the class's value after each character
    ranked: tuple[tuple[int, float], ...]        # (unit, correlation), best first
    rows: tuple[tuple[float, ...], ...]          # rows[i][t]: unit ranked[i] after text[t]
    num_units: int
    part: str = "H"                              # which part of the state ("H", "C", a gate)
    parts: tuple[str, ...] = ("H",)
    truncated: int = 0
    problem: str = ""                            # why nothing could be ranked, if so


def units_view(net, vocab: Vocab, text: str, preprocess: str = "raw", char_class: str = "space",
               top: int = 12, part: str = "H", limit: int = 2_000) -> UnitsView:
    """The hidden states of a text and the units that follow a character class best, as
    plain numbers (the UI thread never sees a tensor)."""
    hs = hidden_states(net, vocab, text, preprocess, limit)
    if part not in hs.states:
        part = "H"
    states = hs.states[part]
    values = tuple(char_class_values(hs.text, char_class))
    try:
        ranked, problem = find_unit(states, hs.text, char_class, top), ""
    except ValueError as e:  # the class never changes in this text: show the first units
        ranked = tuple((u, 0.0) for u in range(min(top, states.shape[1])))
        problem = str(e)
    rows = tuple(tuple(states[:, u].tolist()) for u, _ in ranked)
    return UnitsView(hs.text, char_class, values, ranked, rows, states.shape[1], part,
                     tuple(hs.states), hs.truncated, problem)


@dataclass(frozen=True)
class GradientsView:
    gradients: GradientsThroughTime
    index: int          # which batch of the text
    batches: int        # how many it has
    batch_size: int
    num_steps: int
    note: str = ""


def gradients_view(net, tokens: Sequence[int], batch_size: int, num_steps: int, clip: float,
                   index: int = 0) -> GradientsView:
    """Gradients through time for batch `index` (wrapping around) of the text's sequential
    partitioning, from a fresh state."""
    X, _, note = sequential_batch(tokens, batch_size, num_steps)
    batches = max(1, ((len(tokens) - 1) // X.shape[0]) // num_steps)
    index %= batches
    X, Y, _ = sequential_batch(tokens, X.shape[0], num_steps, index)
    g = gradients_through_time(net, X, Y, net.begin_state(X.shape[0]), clip)
    return GradientsView(g, index, batches, X.shape[0], num_steps, note)


@dataclass(frozen=True)
class GradientsComparison:
    """Two models' gradients through time on the same batch of the same text (8.7's question:
    how far back does each carry the gradient? an RNN against an LSTM, say)."""
    a: GradientsView
    b: GradientsView
    missing_b: str   # characters of the text that B's vocabulary lacks: B reads them as <unk>


def compare_gradients(net_a, vocab_a: Vocab, net_b, vocab_b: Vocab, text: str, batch_size: int,
                      num_steps: int, clip: float, index: int = 0) -> GradientsComparison:
    """Batch `index` of `text` (as the models' corpora were read: already preprocessed)
    through both models, each reading it with its own vocabulary, on its own device, from a
    fresh state, clipped at the same `clip`."""
    chars = list(text)
    a = gradients_view(net_a, vocab_a[chars], batch_size, num_steps, clip, index)
    b = gradients_view(net_b, vocab_b[chars], batch_size, num_steps, clip, a.index)
    return GradientsComparison(a, b, _missing(text, vocab_b))
