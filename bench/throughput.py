"""Training speed of the book's loop, the fast path and torch.nn's module, in interleaved rounds.

    python bench/throughput.py [--cell rnn|gru|lstm] [--layers N] [--input onehot|embedding]
        [--activation tanh|relu] [--setting book|all] [--routes] [--device cpu] [--threads 2]
        [--rounds 11] [--batches N] [--corpus PATH]

Three settings: the book's (batch 32, 35 steps, 512 hidden units, 28 characters), batch 256,
and 1024 hidden units (`--setting book`: the first only). Each round trains every
implementation for a few batches, in an order that rotates from round to round, so that drift
(other processes, clock changes) hits all of them alike: on a shared machine only the ratios
within a round mean much. torch.nn.RNN / GRU / LSTM with nn.Linear (and nn.Embedding) of the
same size, clipped and stepped by PyTorch's own clip_grad_norm_ and SGD, is an outside
reference. (torch.nn.GRU resets after the hidden product, the book's GRU before it: the same
size and work, another model.) `--routes` adds the fast path on each of its routes.

The last line is the median fast/book ratio in the book's setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import random
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Callable

from common import add_machine_args, open_corpus  # first: it puts the checkout on the path

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from engine.allocator import reuse_freed_memory  # noqa: E402
from engine.data import load_corpus, seq_data_iter_sequential  # noqa: E402
from engine.devices import describe, resolve_device, synchronize  # noqa: E402
from engine import fast as fast_path  # noqa: E402
from engine.cells import CELLS  # noqa: E402
from engine.implementations import get_implementation  # noqa: E402
from engine.model import INPUTS, ModelSpec  # noqa: E402
from engine.train import loss  # noqa: E402

LR, CLIP = 1.0, 1.0


@dataclass(frozen=True)
class Setting:
    name: str
    batch_size: int
    num_hiddens: int
    batches: int  # per implementation and round
    num_steps: int = 35


SETTINGS = (
    Setting("book setting", 32, 512, batches=8),  # one epoch of the book's 10,000 tokens
    Setting("batch 256", 256, 512, batches=2),
    Setting("hidden 1024", 32, 1024, batches=4),
)


class TorchRNN:
    """The same kind of model from PyTorch's modules: nn.RNN / GRU / LSTM and nn.Linear."""

    MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

    def __init__(self, spec: ModelSpec, device, generator=None):
        self.spec, self.device = spec, device
        extra = {"nonlinearity": spec.activation} if spec.cell == "rnn" else {}
        self.embedding = (nn.Embedding(spec.vocab_size, spec.embed_size, device=device)
                          if spec.input == "embedding" else None)
        self.rnn = self.MODULES[spec.cell](spec.input_size, spec.num_hiddens, spec.num_layers,
                                           device=device, **extra)
        self.linear = nn.Linear(spec.num_hiddens, spec.vocab_size, device=device)
        modules = [m for m in (self.embedding, self.rnn, self.linear) if m is not None]
        self.params = [p for m in modules for p in m.parameters()]
        self.optimizer = torch.optim.SGD(self.params, lr=LR, foreach=True)

    def begin_state(self, batch_size: int, device=None):
        """Flat, as the engine's models keep it: (H,) or (H, C) per layer."""
        n = 2 if self.spec.cell == "lstm" else 1
        return tuple(torch.zeros((batch_size, self.spec.num_hiddens), device=device or self.device)
                     for _ in range(n * self.spec.num_layers))

    def parameters(self):
        return self.params

    def __call__(self, X, state):
        inputs = (F.one_hot(X.T, self.spec.vocab_size).float() if self.embedding is None
                  else self.embedding(X.T))
        if self.spec.cell == "lstm":
            hx = (torch.stack(state[0::2]), torch.stack(state[1::2]))
            outputs, (H, C) = self.rnn(inputs, hx)
            new_state = tuple(t for pair in zip(H, C) for t in pair)
        else:
            outputs, H = self.rnn(inputs, torch.stack(state))
            new_state = tuple(H)
        return self.linear(outputs.flatten(0, 1)), new_state


def torch_train_step(net: TorchRNN, X, Y, state, lr, clip):
    y = Y.T.reshape(-1)
    y_hat, state = net(X, state)
    l = loss(y_hat, y)
    net.optimizer.zero_grad(set_to_none=True)
    l.backward()
    norm = nn.utils.clip_grad_norm_(net.params, clip, foreach=True)
    net.optimizer.step()
    return l.detach() * y.numel(), norm, state


@dataclass
class Contender:
    name: str
    make_model: Callable  # (spec, device, generator=) -> model
    train_step: Callable


class Run:
    """One implementation in one setting: its model, its place in the data, its state."""

    def __init__(self, contender: Contender, setting: Setting, tokens, spec: ModelSpec, device):
        self.contender, self.setting, self.device = contender, setting, device
        self.tokens = tokens
        self.net = contender.make_model(spec, device, generator=torch.Generator().manual_seed(0))
        self.batches = self._batches()
        self.state = None
        self.tokens_per_sec: list[float] = []
        self.peak_bytes = 0

    def _batches(self):
        """The sequential iterator over the corpus, epoch after epoch, already on the device."""
        s = self.setting
        for epoch in itertools.count():
            for X, Y in seq_data_iter_sequential(self.tokens, s.batch_size, s.num_steps,
                                                 random.Random(epoch)):
                yield X.to(self.device), Y.to(self.device)

    def train(self, num_batches: int) -> float:
        """Train num_batches; returns tokens per second."""
        step, net = self.contender.train_step, self.net
        batches = [next(self.batches) for _ in range(num_batches)]
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        synchronize(self.device)
        start = time.perf_counter()
        for X, Y in batches:
            if self.state is None:
                self.state = net.begin_state(X.shape[0], self.device)
            self.state = tuple(s.detach() for s in self.state)
            batch_loss, _, self.state = step(net, X, Y, self.state, LR, CLIP)
        float(batch_loss)  # waits for the last batch; the steps themselves never sync
        elapsed = time.perf_counter() - start
        if self.device.type == "cuda":
            self.peak_bytes = max(self.peak_bytes, torch.cuda.max_memory_allocated(self.device))
        return num_batches * self.setting.batch_size * self.setting.num_steps / elapsed


def fmt(tokens_per_sec: float) -> str:
    return f"{tokens_per_sec:>10,.0f}"


def contenders(spec: ModelSpec, device, routes: bool) -> list[Contender]:
    """book, fast (on its chosen route), then torch.nn's module; with `routes`, the fast path on
    each of its other routes too."""
    book, fast = (get_implementation(name, device, spec) for name in ("book", "fast"))

    def maker(impl):
        return lambda spec, device, generator: impl.make_model(
            spec.vocab_size, spec.num_hiddens, device, generator=generator)

    found = [Contender("book", maker(book), book.train_step),
             Contender("fast", maker(fast), fast.train_step)]
    if routes:
        kind, chosen = fast_path.route_kind(spec), fast_path.choose_route(device, spec)
        for name in fast_path._routes(device, kind):
            route = fast_path._choose_route(fast_path._device_key(device), kind, name)
            if route.name == name != chosen.name:
                found.append(Contender(f"fast[{name}]", (
                    lambda spec, device, generator, route=route: fast_path.RNNModelFast(
                        spec, device, route, generator=generator)), fast.train_step))
    found.append(Contender(f"torch.nn.{spec.cell.upper()}", TorchRNN, torch_train_step))
    return found


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_machine_args(parser)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--cell", choices=list(CELLS), default="rnn")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--input", choices=INPUTS, default="onehot")
    parser.add_argument("--embed-size", type=int, default=ModelSpec.embed_size)
    parser.add_argument("--activation", choices=("tanh", "relu"), default="tanh")
    parser.add_argument("--setting", choices=("book", "all"), default="all")
    parser.add_argument("--routes", action="store_true", help="the fast path on every route")
    parser.add_argument("--batches", type=int, default=0,
                        help="batches per implementation and round (0: the setting's)")
    args = parser.parse_args(argv)

    reuse_freed_memory()  # the process set-up of the Trainer, so both paths run as they would
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    corpus = open_corpus(args.corpus)
    tokens, vocab = load_corpus(corpus.text, 0)
    spec = ModelSpec(len(vocab), SETTINGS[0].num_hiddens, args.cell, args.layers, args.input,
                     args.embed_size, args.activation)
    runners = contenders(spec, device, args.routes)
    fast_detail = get_implementation("fast", device, spec).detail
    print(f"{describe(device)}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"model: {fast_path.describe_kind(spec)}; fast: {fast_detail}; corpus {corpus.name} "
          f"({len(tokens):,} tokens, vocabulary {len(vocab)})")

    book_setting_ratio = float("nan")
    for setting in SETTINGS[:1] if args.setting == "book" else SETTINGS:
        if args.batches:
            setting = dataclasses.replace(setting, batches=args.batches)
        print(f"\n[{setting.name}] batch {setting.batch_size}, steps {setting.num_steps}, hidden "
              f"{setting.num_hiddens}, vocab {len(vocab)}: {args.rounds} rounds of "
              f"{setting.batches} batches each")
        sized = dataclasses.replace(spec, num_hiddens=setting.num_hiddens)
        runs = [Run(c, setting, tokens, sized, device) for c in runners]
        for run in runs:
            run.train(2)  # warm-up: allocations, oneDNN/cuDNN kernel choice
        for r in range(args.rounds):
            for run in runs[r % len(runs):] + runs[:r % len(runs)]:
                run.tokens_per_sec.append(run.train(setting.batches))
        print(f"  {'':16s} {'median tok/s':>12s} {'min':>10s} {'max':>10s}"
              + ("  peak GPU memory" if device.type == "cuda" else ""))
        for run in runs:
            v = run.tokens_per_sec
            memory = f"  {run.peak_bytes / 2**20:,.0f} MiB" if device.type == "cuda" else ""
            print(f"  {run.contender.name:16s} {fmt(statistics.median(v)):>12s} {fmt(min(v))} "
                  f"{fmt(max(v))}{memory}")
        book_tps, fast_tps = runs[0].tokens_per_sec, runs[1].tokens_per_sec
        per_round = [f / b for f, b in zip(fast_tps, book_tps)]
        print("  fast/book per round: " + " ".join(f"{x:.2f}" for x in per_round))
        ratios = [f"fast/book median {statistics.median(per_round):.2f}"]
        for run in runs[2:]:
            ratios.append(f"fast/{run.contender.name} median "
                          f"{statistics.median(f / t for f, t in zip(fast_tps, run.tokens_per_sec)):.2f}")
        print("  " + "; ".join(ratios))
        if setting.name == SETTINGS[0].name:
            book_setting_ratio = statistics.median(per_round)

    if device.type == "cpu":
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(f"\npeak memory: RSS {peak:,.0f} MiB (the whole process, all implementations)")
    print(f"fast/book median ratio (book setting): {book_setting_ratio:.2f}")
    return book_setting_ratio


if __name__ == "__main__":
    main()
