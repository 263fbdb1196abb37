"""The Trainer: d2l's `train_ch8` as an object that other threads can watch and steer.

It trains in the thread that calls `run()` and owns the model there: every torch operation
(training, generation for other threads, evaluation) happens on that thread, because two
threads running torch ops fight over the cores (docs/performance.md, "Threads").
Other threads read `snapshot()` (an immutable value published under a lock), drain
`events()`, send commands (pause, resume, step, stop, set_*) that apply at the next batch
boundary, and ask for predictions or a checkpoint with `request_prediction()` and
`request_save()`, which return Futures.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
import time
from concurrent.futures import Future
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from . import config as cfg
from .allocator import reuse_freed_memory
from .checkpoint import (Checkpoint, CheckpointError, check_compatible, named_params, python_rng_state,
                         restore_python_rng, restore_torch_rng, resume_config, save_checkpoint)
from .config import ConfigError, TrainConfig
from .control import RUN, STOP, WAIT, Control
from .corpus import Corpus, load_text
from .data import SeqDataLoader, dropped_letters, dropped_notice, load_corpus
from .events import (Diverged, EpochDone, Event, Failed, Finished, Notice, RunInfo, RunState,
                     Sample, SampleReady, SettingChanged, Snapshot, Started, Stopped)
from .devices import describe, free_memory, resolve_device, synchronize, to_device
from .generate import Prediction, predict
from .model import estimated_bytes, model_spec
from .optim import make_optimizer, scheduled_lr
from .sampling import GREEDY, Sampling, parse_sampling
from .implementations import Implementation, get_implementation
from .inspect import memorization, text_windows
from .threads import ALL_CORES, ThreadTuner, threads_label
from .train import CarriedGraph, diverged, perplexity
from .validation import evaluate_perplexity, holdout

PUBLISH_INTERVAL_S = 0.1   # at most ~10 snapshots a second, however fast training runs
MAX_HISTORY = 4096         # per-epoch points kept; beyond that the history is halved
MAX_SAMPLES = 50           # sample rounds kept, newest first


class _Stop(Exception):
    """Raised inside the loop when stop() was asked for."""


class Trainer:
    def __init__(self, config: TrainConfig | None = None, corpus: Corpus | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 resume: Checkpoint | None = None):
        """config defaults to the book's; with resume, training continues from a checkpoint
        (build its config with resume_config) exactly where it stopped."""
        self.config = cfg.validate(config or (resume_config(resume) if resume else TrainConfig()))
        self._resume = resume
        self._corpus = corpus
        self._listeners: list[Callable[[Event], None]] = [on_event] if on_event else []
        self._lock = threading.Lock()     # guards the published snapshot
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        # Commands and requests from other threads, taken at the next batch boundary.
        self.control = Control()
        self._changed = False  # whether the last commands changed a live setting
        self._snapshot = Snapshot(**self._live_values(self.config))
        self.info: RunInfo | None = None
        self.thread: threading.Thread | None = None

    # ---- set-up (on the training thread) --------------------------------------------------

    def setup(self) -> RunInfo:
        """Load the corpus, build vocabulary, data and model. Raises CorpusError, DataError,
        DeviceError or ConfigError with a message for the user."""
        if self.info is not None:
            return self.info
        c = self.config
        reuse_freed_memory()
        if c.threads:
            torch.set_num_threads(c.threads)
        self.device = resolve_device(c.device)
        # --threads 0 on a CPU: the count that measures fastest, re-checked as training goes.
        self._tuner = (ThreadTuner(ALL_CORES, torch.set_num_threads)
                       if not c.threads and self.device.type == "cpu" else None)
        if self._tuner:
            torch.set_num_threads(self._tuner.threads)
        corpus = self._corpus or load_text(c.corpus)
        self.corpus = corpus
        tokens, self.vocab = load_corpus(corpus.text, c.max_tokens, c.preprocess)
        dropped = dropped_notice(dropped_letters(corpus.text, c.preprocess))
        if len(self.vocab) < 3:
            raise ConfigError(
                f"the corpus {corpus.name!r} has only {len(self.vocab) - 1} distinct character(s) "
                "after preprocessing: there is nothing to learn")
        num_tokens = len(tokens)
        tokens, self._val_tokens = holdout(tokens, c.val_fraction, c.num_steps)
        try:
            self.spec = model_spec(c, len(self.vocab))
        except ValueError as e:
            raise ConfigError(str(e)) from None
        problem = cfg.memory_problem(c, len(self.vocab), free_memory(self.device), str(self.device),
                                     need=estimated_bytes(self.spec, c.batch_size, c.num_steps))
        if problem:
            raise ConfigError(problem)
        self.loader = SeqDataLoader(tokens, self.vocab, c.batch_size, c.num_steps,
                                    c.use_random_iter, seed=c.seed)
        self.impl: Implementation = get_implementation(c.impl, self.device, self.spec)
        self._sample_generator = torch.Generator().manual_seed(c.seed + 1)
        for name, value in self._live_values(c).items():  # self._lr, self._clip, ...
            setattr(self, "_" + name, value)
        self._epoch = 0
        self._history: list[float] = []
        self._history_stride = 1
        self._samples: list[Sample] = []
        self._elapsed = 0.0
        self._tokens_per_sec = 0.0        # live: of the epoch under way, updated as it goes
        self._epoch_tokens_per_sec = 0.0  # of the last finished epoch, for final reports
        self._last_ppl: float | None = None
        self._val_history: list[float] = []
        self._last_val_ppl: float | None = None
        self._last_loss: float | None = None   # of the latest batch read back
        self._last_norm: float | None = None
        if self._resume is None:
            generator = torch.Generator().manual_seed(c.seed)
            self.net = self.impl.make_model(len(self.vocab), c.num_hiddens, self.device,
                                            generator=generator)
        else:
            self._restore(self._resume, corpus)
        self.optimizer = make_optimizer(c.optimizer, self.net.parameters())
        if self._resume is not None and self._resume.optimizer.get("name") == c.optimizer:
            try:  # Adam's moments; a run that switched optimizer starts them afresh
                self.optimizer.load_state_dict(self._resume.optimizer)
            except ValueError as e:
                raise CheckpointError(f"checkpoint {str(self._resume.source)!r}: {e}") from None
        self._mark_boundary()
        self.info = RunInfo(corpus.name, corpus.num_chars, num_tokens, len(self.vocab),
                            describe(self.device), self.impl.label,
                            sum(p.numel() for p in self.net.parameters()), corpus.notice,
                            self._threads_description(),
                            val_tokens=len(self._val_tokens), dropped=dropped)
        for notice in (corpus.notice, dropped):
            if notice:
                self._emit(Notice(notice))
        if c.detach == "no":
            self._emit(Notice(
                "detach no: with random sampling the state starts afresh every batch anyway"
                if c.use_random_iter else
                f"detach no: each batch backpropagates through up to "
                f"{CarriedGraph.MAX_CARRIED_BATCHES - 1} batches before it; memory and time "
                "per batch grow with them"))
        self._emit(Started(self.info, self._epoch))
        self._publish(batch=0)
        return self.info

    def _restore(self, ckpt: Checkpoint, corpus: Corpus) -> None:
        """Continue from a checkpoint: its parameters, counters, history and random states."""
        check_compatible(ckpt, self.vocab, self.config.num_hiddens, corpus_sha1=corpus.sha1)
        self.net = self.impl.make_model(len(self.vocab), self.config.num_hiddens, self.device,
                                        params=ckpt.param_list(self.device, self.spec))
        restore_python_rng(self.loader.rng, ckpt.rng["python"])
        restore_torch_rng(self._sample_generator, ckpt.rng["torch"])  # prompt-box sampling
        self._epoch = ckpt.epoch
        self._history, self._history_stride = [float(x) for x in ckpt.history], ckpt.history_stride
        self._last_ppl = self._history[-1] if self._history else None
        self._samples = [Sample(d["epoch"], d["prefix"], d["text"], d.get("memorized"))
                         for d in ckpt.samples]
        self._elapsed = ckpt.elapsed
        self._val_history = [float(x) for x in ckpt.extra.get("val_history", [])]
        self._last_val_ppl = self._val_history[-1] if self._val_history else None

    # ---- checkpoints (on the training thread) ----------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """The state at the end of the last finished epoch (a run resumed from it continues
        exactly as this one would). Only the training thread may call this."""
        rng = random.Random()
        rng.setstate(self._boundary_rng)
        return Checkpoint(
            params=named_params(self._good_params, self.spec), vocab=list(self.vocab.idx_to_token),
            config=self.config.to_dict(), corpus_name=self.corpus.name,
            corpus_sha1=self.corpus.sha1, epoch=self._epoch, batch=0,
            rng={"python": python_rng_state(rng), "torch": self._sample_generator.get_state()},
            history=list(self._history), history_stride=self._history_stride,
            samples=[asdict(x) for x in self._samples], elapsed=self._elapsed,
            impl=self.impl.name,
            optimizer={**self._good_optimizer, "lr": float(self._lr), "clip": float(self._clip)},
            live={name: getattr(self, "_" + name) for name in cfg.LIVE_FIELDS},
            extra={"val_history": list(self._val_history)} if self._val_history else {})

    def save(self, path) -> Path:
        """Write checkpoint() atomically to path. Only the training thread may call this."""
        return save_checkpoint(path, self.checkpoint())

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call listener(event) on the training thread for every event (before run())."""
        self._listeners.append(listener)

    # ---- commands (any thread) -------------------------------------------------------------

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def toggle_pause(self) -> bool:
        """Pause if running, resume if paused; returns True when now paused."""
        return self.control.toggle_pause()

    def step(self, batches: int = 1) -> None:
        """While paused, train this many batches and pause again."""
        self.control.step(batches)

    def stop(self) -> None:
        """Stop at the next batch boundary (also while paused); run() then returns."""
        self.control.stop()

    @property
    def stop_requested(self) -> bool:
        return self.control.stop_requested

    def set_lr(self, value) -> None:
        self.set_live("lr", value)

    def set_clip(self, value) -> None:
        self.set_live("clip", value)

    def set_epochs(self, value) -> None:
        self.set_live("epochs", value)

    def set_sample_every(self, value) -> None:
        self.set_live("sample_every", value)

    def set_live(self, name: str, value) -> None:
        """Change one of config.LIVE_FIELDS; raises ConfigError with a message if invalid."""
        if name not in cfg.LIVE_FIELDS:
            raise ConfigError(f"{name} cannot change during a run; restart with new settings")
        value = cfg.check_field(name, value)
        if name == "epochs" and value < self._epoch:
            raise ConfigError(f"epochs must be at least {self._epoch}, the epochs already trained")
        self.control.set(name, value)

    def request_prediction(self, prefix: str, num_preds: int = 50,
                           sampling: Sampling = GREEDY) -> Future:
        """Ask the training thread for a continuation; the Future resolves to a Prediction
        (or raises ValueError for a bad request). Served between batches and while paused."""
        return self.control.submit(lambda: self.predict(prefix, num_preds, sampling))

    def request_save(self, path) -> Future:
        """Ask the training thread to write a checkpoint of the last finished epoch; the
        Future resolves to the path (or raises CheckpointError)."""
        return self.control.submit(lambda: self.save(path))

    def request(self, work: Callable[[], object]) -> Future:
        """Ask the training thread to run work() (any torch work for another thread: an
        evaluation, a view inside the model); the Future resolves to its result."""
        return self.control.submit(work)

    # ---- reading (any thread) --------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def events(self) -> list[Event]:
        """Events since the last call, oldest first."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    # ---- the training thread ---------------------------------------------------------------

    def predict(self, prefix: str, num_preds: int = 50, sampling: Sampling = GREEDY
                ) -> Prediction:
        """Generate on the calling thread; only the thread that trains should call this.
        The prefix is read as the corpus was (lower case for the book's preprocessing)."""
        return predict(prefix, num_preds, self.net, self.vocab, self.device, sampling,
                       generator=self._sample_generator, preprocess=self.config.preprocess)

    def run(self, keep_alive: bool = False) -> Snapshot:
        """Train until the last epoch or stop(). With keep_alive, go on serving predictions
        after training ends, until stop(), and train on if the number of epochs is raised.
        Errors end in the ERROR state, never raise; a diverged epoch pauses in the DIVERGED
        state until resume() (after, say, set_lr) or stop()."""
        self.thread = threading.current_thread()
        try:
            self.setup()
            while True:
                self._set_state(RunState.PAUSED if self.control.paused else RunState.TRAINING)
                while self._epoch < self._epochs:
                    try:
                        self._train_epoch()
                    except _DivergedError as e:
                        self._on_diverged(e)
                # Epochs lowered to the one in progress: that epoch was finished, and is the last.
                self._epochs = max(self._epochs, self._epoch)
                self._publish(batch=0)
                self._set_state(RunState.FINISHED)
                self._emit(Finished(self._epoch, self._last_ppl, self._tokens_per_sec))
                if not (keep_alive and self._serve_until_stopped(train_on=True)):
                    break
        except _Stop:
            if self._epoch_tokens_per_sec:  # a part-epoch's speed is not the run's
                self._tokens_per_sec = self._epoch_tokens_per_sec
                self._publish(batch=0)
            if self.snapshot().state != RunState.DIVERGED:
                self._set_state(RunState.STOPPED)
            self._emit(Stopped(self._epoch))
        except Exception as e:  # noqa: BLE001 - shown to the user, the app stays up
            message = f"{type(e).__name__}: {e}" if not isinstance(e, ValueError) else str(e)
            self._set_state(RunState.ERROR, message)
            self._emit(Failed(message))
        if keep_alive:
            self._serve_until_stopped()
        self.control.fail_pending()
        return self.snapshot()

    def _on_diverged(self, error: "_DivergedError") -> None:
        """Pause with the last good parameters back in place, and wait for resume or stop."""
        self.control.halt()
        self._set_state(RunState.DIVERGED, str(error))
        self._emit(Diverged(self._epoch, error.batch, str(error)))
        self._publish(batch=0)
        self._wait_while_paused()
        self._set_state(RunState.TRAINING)

    def _train_epoch(self) -> None:
        """One pass over the data: d2l's `train_epoch_ch8`, checking commands between batches."""
        net, device, use_random_iter = self.net, self.device, self.config.use_random_iter
        carry = self.config.detach == "no" and not use_random_iter  # the graph across batches
        state = None
        loss_sum = torch.zeros((), device=device)
        num_tokens = 0
        train_time = 0.0
        lr = self.epoch_lr()
        for batch, (X, Y) in enumerate(self.loader):
            if self._between_batches(batch):
                lr = self.epoch_lr()  # the base rate or its schedule changed
            start = time.perf_counter()
            if state is None or use_random_iter:
                # Initialize state for the first batch, and for every batch of random sampling.
                state = net.begin_state(batch_size=X.shape[0], device=device)
            elif not carry or batch % CarriedGraph.MAX_CARRIED_BATCHES == 0:
                # Keep the state but cut the graph, so gradients stop at the batch boundary.
                state = tuple(s.detach() for s in state)
            X, Y = to_device(X, device), to_device(Y, device)
            batch_loss, grad_norm, state = self.impl.train_step(
                CarriedGraph(net) if carry else net, X, Y, state, lr, self._clip, self.optimizer,
                retain_graph=carry)
            loss_sum += batch_loss
            num_tokens += Y.numel()
            self._last_batch = (batch_loss, grad_norm, Y.numel())
            train_time += time.perf_counter() - start
            self._batch = batch + 1
            if time.perf_counter() - self._last_publish >= PUBLISH_INTERVAL_S:
                t = time.perf_counter()
                self._publish_batch(batch + 1, num_tokens, train_time)
                train_time += time.perf_counter() - t
        t = time.perf_counter()
        mean_loss = float(loss_sum) / max(1, num_tokens)  # one host sync per epoch
        synchronize(device)
        train_time += time.perf_counter() - t
        self._check_diverged(mean_loss, self._batch)
        # The epoch's last batch, for the panels even when epochs outpace the publish interval.
        batch_loss, grad_norm, n = self._last_batch
        self._last_loss, self._last_norm = float(batch_loss) / n, float(grad_norm)
        self._epoch += 1
        self._elapsed += train_time
        self._tokens_per_sec = num_tokens / train_time if train_time > 0 else 0.0
        self._epoch_tokens_per_sec = self._tokens_per_sec
        self._last_ppl = perplexity(mean_loss)
        if self._val_tokens:  # timed as part of the epoch, but not in its tokens/s
            t = time.perf_counter()
            self._last_val_ppl = evaluate_perplexity(net, self._val_tokens, self.config.batch_size,
                                                     self.config.num_steps, device)
            self._elapsed += time.perf_counter() - t
        self._mark_boundary()
        self._record_history(self._last_ppl)
        self._emit(EpochDone(self._epoch, self._last_ppl, self._tokens_per_sec, lr,
                             self._clip, self._last_norm, self._elapsed, torch.get_num_threads(),
                             val_perplexity=self._last_val_ppl))
        if self._tuner and (why := self._tuner.epoch_done(self._tokens_per_sec)):
            self._emit(Notice(why, "threads"))
        if self._sample_every and self._epoch % self._sample_every == 0 or self._epoch == self._epochs:
            self._take_samples()
        self._publish(batch=0)

    def _threads_description(self) -> str:
        if self._tuner:
            return (f"adaptive threads: {threads_label(self._tuner.threads)} (all cores) to "
                    "start, re-measured while training")
        if self.device.type != "cpu":
            return ""
        return f"{threads_label(torch.get_num_threads())} (--threads {self.config.threads})"

    def _mark_boundary(self) -> None:
        """Remember the state between two epochs: the last good parameters (restored after a
        divergence) and the batch generator's state, which together make a checkpoint that
        resumes exactly."""
        self._good_params = [p.detach().clone() for p in self.net.parameters()]
        self._good_optimizer = self.optimizer.state_dict()
        self._boundary_rng = self.loader.rng.getstate()

    def epoch_lr(self) -> float:
        """The learning rate of the epoch under way: the base rate, or its schedule's value."""
        return scheduled_lr(self._lr, self._lr_schedule, self._epoch, self._epochs)

    def _between_batches(self, batch: int) -> bool:
        """Apply commands, serve requests, wait while paused (time that does not count as
        training). Returns whether a live setting changed."""
        self.control.serve()
        self._changed = False  # set by _apply
        if self._commands() == WAIT:
            self._publish(batch)  # the paused screen shows exactly where training stopped
            self._set_state(RunState.PAUSED)
            if self._wait_while_paused() == RUN:
                self._set_state(RunState.TRAINING)
        return self._changed

    def _wait_while_paused(self) -> str:
        """Serve requests and apply settings until resumed (RUN) or asked for one batch
        (STEP); raises _Stop on stop()."""
        while True:
            self.control.serve()
            action = self._commands()
            if action != WAIT:
                return action
            self.control.wait()

    def _commands(self) -> str:
        """Apply the commands taken from the control channel; say whether to RUN a batch,
        STEP one while paused, or WAIT. Raises _Stop when stop() was asked for."""
        changes, action = self.control.take()
        self._apply(changes)
        if action == STOP:
            raise _Stop
        return action

    def _apply(self, changes: dict) -> bool:
        """Apply changed live settings and emit their events; whether any changed."""
        changed = False
        for name, value in changes.items():
            old = getattr(self, "_" + name)
            if old != value:
                setattr(self, "_" + name, value)
                self._emit(SettingChanged(self._epoch, name, old, value))
                changed = True
        if changes:
            with self._lock:
                self._snapshot = replace(self._snapshot, **self._live_values())
        self._changed = self._changed or changed
        return changed

    def _live_values(self, config: TrainConfig | None = None) -> dict:
        """The live settings in force (or a config's), as the snapshot shows them."""
        if config is not None:
            return {name: getattr(config, name) for name in cfg.LIVE_FIELDS}
        return {name: getattr(self, "_" + name) for name in cfg.LIVE_FIELDS}

    def _serve_until_stopped(self, train_on: bool = False) -> bool:
        """After training: serve requests and apply settings until stop() (False) or, with
        train_on, until epochs is raised past the current epoch (True: train on, as one
        uninterrupted run would)."""
        while True:
            self.control.serve()
            changes, action = self.control.take()
            self._apply(changes)
            if action == STOP:
                return False
            if train_on and self._epochs > self._epoch:
                self._publish(batch=0)
                return True
            self.control.wait(paused=False)

    def _check_diverged(self, mean_loss: float, batch: int) -> None:
        if not diverged(mean_loss, len(self.vocab)):
            return
        # Put back the parameters of the last good epoch, so the model is usable again.
        with torch.no_grad():
            for p, good in zip(self.net.parameters(), self._good_params):
                p.copy_(good)
        self.optimizer.load_state_dict(self._good_optimizer)
        what = "not a finite number" if not math.isfinite(mean_loss) else f"{mean_loss:.3g} nats"
        raise _DivergedError(
            f"training diverged in epoch {self._epoch + 1} (mean loss {what}) with learning rate "
            f"{self._lr:g}; the parameters of epoch {self._epoch} were restored. "
            f"Try a smaller learning rate, e.g. {self._lr / 2:g}.", batch)

    def _take_samples(self) -> None:
        sampling = parse_sampling(self._sampling)
        samples = []
        for prefix in self._prefixes:
            text = self.predict(prefix, self._predict_len, sampling).text
            samples.append(Sample(self._epoch, prefix, text,
                                  memorization(text, self.training_windows).share))
        self._samples = (samples + self._samples)[: MAX_SAMPLES * len(samples)]
        self._emit(SampleReady(self._epoch, tuple(samples)))

    @functools.cached_property
    def training_windows(self) -> frozenset[str]:
        """The training text's 20-character windows, built once (on the training thread, at
        the first sample): a sample's windows found here were seen in training."""
        return text_windows("".join(self.vocab.to_tokens(self.loader.corpus)))

    def _record_history(self, ppl: float) -> None:
        """Keep one point per history_stride epochs; halve when full so memory stays flat."""
        if (self._epoch - 1) % self._history_stride == 0:
            self._history.append(ppl)
            if self._last_val_ppl is not None:
                self._val_history.append(self._last_val_ppl)
        if len(self._history) >= MAX_HISTORY:
            self._history = self._history[::2]
            self._val_history = self._val_history[::2]
            self._history_stride *= 2

    def _publish_batch(self, batch: int, num_tokens: int, train_time: float) -> None:
        """Read the latest batch's numbers (a host sync) and publish them."""
        batch_loss, grad_norm, n = self._last_batch
        loss = float(batch_loss) / n
        self._last_loss, self._last_norm = loss, float(grad_norm)
        if num_tokens and train_time > 0:
            self._tokens_per_sec = num_tokens / train_time
        self._publish(batch)

    def _publish(self, batch: int) -> None:
        with self._lock:
            self._snapshot = replace(
                self._snapshot, epoch=self._epoch, batch=batch,
                batches_per_epoch=len(self.loader), perplexity=self._last_ppl,
                history=tuple(self._history), history_stride=self._history_stride,
                tokens_per_sec=self._tokens_per_sec,
                loss=self._last_loss, grad_norm=self._last_norm,
                samples=tuple(self._samples), elapsed=self._elapsed, **self._live_values(),
                threads=self._tuner.threads if self._tuner else torch.get_num_threads(),
                val_perplexity=self._last_val_ppl, val_history=tuple(self._val_history))
        self._last_publish = time.perf_counter()

    def _set_state(self, state: RunState, message: str = "") -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, state=state, message=message)

    def _emit(self, event: Event) -> None:
        self._events.put(event)
        for listener in self._listeners:
            listener(event)


class _DivergedError(Exception):
    def __init__(self, message: str, batch: int):
        super().__init__(message)
        self.batch = batch
