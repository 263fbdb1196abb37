"""A run's state in two values: the parts set-up builds once, and the progress training makes.

`build_run` does the set-up of d2l's `train_ch8` (corpus, vocabulary, data iterator, model,
optimizer) in one go and returns a `Run`, so a trainer either has all of them or none: there
is no half-built trainer to guard against. `Progress` is what changes as training goes
(epochs, perplexities, samples, time); it starts fresh or from a checkpoint, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import config as cfg
from .allocator import reuse_freed_memory
from .checkpoint import (Checkpoint, CheckpointError, check_compatible, restore_python_rng,
                         restore_torch_rng)
from .config import ConfigError, TrainConfig
from .corpus import Corpus, load_text
from .data import SeqDataLoader, Vocab, dropped_letters, dropped_notice, load_corpus
from .devices import describe, free_memory, resolve_device
from .events import MAX_HISTORY, MAX_SAMPLES, RunInfo, Sample
from .implementations import Implementation, get_implementation
from .model import ModelSpec, RNNModel, estimated_bytes, model_spec
from .optim import make_optimizer
from .threads import ALL_CORES, ThreadTuner, threads_label
from .train import CarriedGraph
from .validation import holdout



@dataclass(frozen=True, eq=False)  # eq=False: it holds tensors and a model
class Run:
    """The parts of one run, built by `build_run` and never replaced: the model's
    parameters, the optimizer's state and the generators' states change in place as it
    trains, but every part here is the same object from the first batch to the last."""
    device: torch.device
    tuner: ThreadTuner | None         # --threads 0 on a CPU: re-measures the thread count
    corpus: Corpus
    vocab: Vocab
    spec: ModelSpec                   # the model's kind and sizes
    loader: SeqDataLoader             # the training tokens' batches, with its own generator
    val_tokens: list[int]             # held out for validation (empty: none, the book's run)
    impl: Implementation              # book or fast: how a batch is trained
    net: RNNModel
    optimizer: torch.optim.Optimizer
    sample_generator: torch.Generator  # samples and the prompt draw from it, never the loader's
    info: RunInfo                     # what the UI shows about the run
    notices: tuple[str, ...] = ()     # what set-up found worth telling the user


def build_run(config: TrainConfig, corpus: Corpus | None = None,
              resume: Checkpoint | None = None) -> Run:
    """Load the corpus (config.corpus unless given), build vocabulary, data, model and
    optimizer, from resume's parameters and random states if given. Sets torch's thread
    count. Raises CorpusError, DataError, DeviceError, ConfigError or CheckpointError with
    a message for the user."""
    c = config
    reuse_freed_memory()
    if c.threads:
        torch.set_num_threads(c.threads)
    device = resolve_device(c.device)
    # --threads 0 on a CPU: the count that measures fastest, re-checked as training goes.
    tuner = (ThreadTuner(ALL_CORES, torch.set_num_threads)
             if not c.threads and device.type == "cpu" else None)
    if tuner:
        torch.set_num_threads(tuner.threads)
    corpus = corpus or load_text(c.corpus)
    tokens, vocab = load_corpus(corpus.text, c.max_tokens, c.preprocess)
    dropped = dropped_notice(dropped_letters(corpus.text, c.preprocess))
    if len(vocab) < 3:
        raise ConfigError(
            f"the corpus {corpus.name!r} has only {len(vocab) - 1} distinct character(s) "
            "after preprocessing: there is nothing to learn")
    num_tokens = len(tokens)
    tokens, val_tokens = holdout(tokens, c.val_fraction, c.num_steps)
    try:
        spec = model_spec(c, len(vocab))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    problem = cfg.memory_problem(c, len(vocab), free_memory(device), str(device),
                                 need=estimated_bytes(spec, c.batch_size, c.num_steps))
    if problem:
        raise ConfigError(problem)
    loader = SeqDataLoader(tokens, vocab, c.batch_size, c.num_steps, c.use_random_iter,
                           seed=c.seed)
    impl = get_implementation(c.impl, device, spec)
    sample_generator = torch.Generator().manual_seed(c.seed + 1)
    if resume is None:
        net = impl.make_model(len(vocab), c.num_hiddens, device,
                              generator=torch.Generator().manual_seed(c.seed))
    else:  # its parameters, and the random states that make the run go on exactly
        check_compatible(resume, vocab, c.num_hiddens, corpus_sha1=corpus.sha1)
        net = impl.make_model(len(vocab), c.num_hiddens, device,
                              params=resume.param_list(device, spec))
        restore_python_rng(loader.rng, resume.rng["python"])
        restore_torch_rng(sample_generator, resume.rng["torch"])
    optimizer = make_optimizer(c.optimizer, net.parameters())
    if resume is not None and resume.optimizer.get("name") == c.optimizer:
        try:  # Adam's moments; a run that switched optimizer starts them afresh
            optimizer.load_state_dict(resume.optimizer)
        except ValueError as e:
            raise CheckpointError(f"checkpoint {str(resume.source)!r}: {e}") from None
    info = RunInfo(corpus.name, corpus.num_chars, num_tokens, len(vocab), describe(device),
                   impl.label, sum(p.numel() for p in net.parameters()), corpus.notice,
                   threads_description(c, device, tuner), val_tokens=len(val_tokens),
                   dropped=dropped)
    return Run(device, tuner, corpus, vocab, spec, loader, val_tokens, impl, net, optimizer,
               sample_generator, info, notices=_notices(c, corpus, dropped))


def threads_description(config: TrainConfig, device: torch.device,
                        tuner: ThreadTuner | None) -> str:
    """How torch's thread count is chosen, for RunInfo.threads."""
    if tuner:
        return (f"adaptive threads: {threads_label(tuner.threads)} (all cores) to "
                "start, re-measured while training")
    if device.type != "cpu":
        return ""
    return f"{threads_label(torch.get_num_threads())} (--threads {config.threads})"


def _notices(config: TrainConfig, corpus: Corpus, dropped: str | None) -> tuple[str, ...]:
    """How the text was read, the letters preprocessing dropped, and what --detach no costs."""
    detach = None
    if config.detach == "no":
        detach = ("detach no: with random sampling the state starts afresh every batch anyway"
                  if config.use_random_iter else
                  f"detach no: each batch backpropagates through up to "
                  f"{CarriedGraph.MAX_CARRIED_BATCHES - 1} batches before it; memory and time "
                  "per batch grow with them")
    return tuple(n for n in (corpus.notice, dropped, detach) if n)


@dataclass
class Progress:
    """What training has done so far. The training thread changes it as it goes; others
    read it only through the published Snapshot. A checkpoint keeps the counters, history
    and samples (not the latest batch's numbers), so a resumed run goes on from them."""
    epoch: int = 0                              # completed epochs
    history: list[float] = field(default_factory=list)  # perplexity, one per history_stride epochs
    history_stride: int = 1
    val_history: list[float] = field(default_factory=list)  # as history; empty: none held out
    samples: list[Sample] = field(default_factory=list)     # newest first
    elapsed: float = 0.0                        # training seconds, pauses excluded
    perplexity: float | None = None             # of the last finished epoch
    val_perplexity: float | None = None         # on the held-out tokens, after the last epoch
    tokens_per_sec: float = 0.0                 # of the epoch under way, updated as it goes
    epoch_tokens_per_sec: float = 0.0           # of the last finished epoch, for final reports
    loss: float | None = None                   # mean loss of the latest batch read back
    grad_norm: float | None = None              # before clipping, of that batch

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "Progress":
        """Where the checkpointed run stood at the end of its last finished epoch."""
        history = [float(x) for x in ckpt.history]
        val_history = [float(x) for x in ckpt.extra.get("val_history", [])]
        return cls(epoch=ckpt.epoch, history=history, history_stride=ckpt.history_stride,
                   val_history=val_history,
                   samples=[Sample(d["epoch"], d["prefix"], d["text"], d.get("memorized"))
                            for d in ckpt.samples],
                   elapsed=ckpt.elapsed,
                   perplexity=history[-1] if history else None,
                   val_perplexity=val_history[-1] if val_history else None)

    def record_history(self) -> None:
        """Keep the finished epoch's perplexities, one point per history_stride epochs;
        halve the history when full, so memory stays flat however long the run."""
        if (self.epoch - 1) % self.history_stride == 0:
            self.history.append(self.perplexity)
            if self.val_perplexity is not None:
                self.val_history.append(self.val_perplexity)
        if len(self.history) >= MAX_HISTORY:
            self.history = self.history[::2]
            self.val_history = self.val_history[::2]
            self.history_stride *= 2

    def add_samples(self, samples: list[Sample]) -> None:
        """A round of samples, kept newest first (at most MAX_SAMPLES rounds)."""
        self.samples = (samples + self.samples)[: MAX_SAMPLES * len(samples)]
