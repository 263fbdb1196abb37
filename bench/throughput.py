"""Training speed of the book's loop, the fast path and torch.nn.RNN, in interleaved rounds.

    python bench/throughput.py [--device cpu] [--threads 2] [--rounds 11] [--corpus PATH]

Three settings: the book's (batch 32, 35 steps, 512 hidden units, 28 characters), batch 256,
and 1024 hidden units. Each round trains every implementation for a few batches, in an order
that rotates from round to round, so that drift (other processes, clock changes) hits all of
them alike: on a shared machine only the ratios within a round mean much. torch.nn.RNN with
nn.Linear on the same one-hot inputs, clipped and stepped by PyTorch's own clip_grad_norm_ and
SGD, is an outside reference for the same model at the same sizes.

The last line is the median fast/book ratio in the book's setting.
"""

from __future__ import annotations

import argparse
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
from engine.implementations import get_implementation  # noqa: E402
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
    """The same model from PyTorch's modules: nn.RNN (one-hot in) and nn.Linear."""

    def __init__(self, vocab_size: int, num_hiddens: int, device, generator=None):
        self.vocab_size, self.num_hiddens, self.device = vocab_size, num_hiddens, device
        self.rnn = nn.RNN(vocab_size, num_hiddens, device=device)
        self.linear = nn.Linear(num_hiddens, vocab_size, device=device)
        self.params = [*self.rnn.parameters(), *self.linear.parameters()]
        self.optimizer = torch.optim.SGD(self.params, lr=LR, foreach=True)

    def begin_state(self, batch_size: int, device=None):
        return (torch.zeros((batch_size, self.num_hiddens), device=device or self.device),)

    def parameters(self):
        return self.params


def torch_train_step(net: TorchRNN, X, Y, state, lr, clip):
    y = Y.T.reshape(-1)
    outputs, H = net.rnn(F.one_hot(X.T, net.vocab_size).float(), state[0].unsqueeze(0))
    l = loss(net.linear(outputs.flatten(0, 1)), y)
    net.optimizer.zero_grad(set_to_none=True)
    l.backward()
    norm = nn.utils.clip_grad_norm_(net.params, clip, foreach=True)
    net.optimizer.step()
    return l.detach() * y.numel(), norm, (H.squeeze(0),)


@dataclass
class Contender:
    name: str
    make_model: Callable
    train_step: Callable


class Run:
    """One implementation in one setting: its model, its place in the data, its state."""

    def __init__(self, contender: Contender, setting: Setting, tokens, vocab_size, device):
        self.contender, self.setting, self.device = contender, setting, device
        self.tokens = tokens
        self.net = contender.make_model(vocab_size, setting.num_hiddens, device,
                                        generator=torch.Generator().manual_seed(0))
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


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_machine_args(parser)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args(argv)

    reuse_freed_memory()  # the process set-up of the Trainer, so both paths run as they would
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    corpus = open_corpus(args.corpus)
    tokens, vocab = load_corpus(corpus.text, 0)
    book, fast = (get_implementation(name, device) for name in ("book", "fast"))
    contenders = [Contender(impl.name, impl.make_model, impl.train_step) for impl in (book, fast)]
    contenders.append(Contender("torch.nn.RNN", TorchRNN, torch_train_step))
    print(f"{describe(device)}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"fast: {fast.detail}; corpus {corpus.name} ({len(tokens):,} tokens, "
          f"vocabulary {len(vocab)})")

    book_setting_ratio = float("nan")
    for setting in SETTINGS:
        print(f"\n[{setting.name}] batch {setting.batch_size}, steps {setting.num_steps}, hidden "
              f"{setting.num_hiddens}, vocab {len(vocab)}: {args.rounds} rounds of "
              f"{setting.batches} batches each")
        runs = [Run(c, setting, tokens, len(vocab), device) for c in contenders]
        for run in runs:
            run.train(2)  # warm-up: allocations, oneDNN/cuDNN kernel choice
        for r in range(args.rounds):
            for run in runs[r % len(runs):] + runs[:r % len(runs)]:
                run.tokens_per_sec.append(run.train(setting.batches))
        print(f"  {'':14s} {'median tok/s':>12s} {'min':>10s} {'max':>10s}"
              + ("  peak GPU memory" if device.type == "cuda" else ""))
        for run in runs:
            v = run.tokens_per_sec
            memory = f"  {run.peak_bytes / 2**20:,.0f} MiB" if device.type == "cuda" else ""
            print(f"  {run.contender.name:14s} {fmt(statistics.median(v)):>12s} {fmt(min(v))} "
                  f"{fmt(max(v))}{memory}")
        book_tps, fast_tps, torch_tps = (run.tokens_per_sec for run in runs)
        per_round = [f / b for f, b in zip(fast_tps, book_tps)]
        vs_torch = statistics.median(f / t for f, t in zip(fast_tps, torch_tps))
        print("  fast/book per round: " + " ".join(f"{x:.2f}" for x in per_round))
        print(f"  fast/book median {statistics.median(per_round):.2f}; "
              f"fast/torch.nn.RNN median {vs_torch:.2f}")
        if setting is SETTINGS[0]:
            book_setting_ratio = statistics.median(per_round)

    if device.type == "cpu":
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(f"\npeak memory: RSS {peak:,.0f} MiB (the whole process, all implementations)")
    print(f"fast/book median ratio (book setting): {book_setting_ratio:.2f}")
    return book_setting_ratio


if __name__ == "__main__":
    main()
