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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from . import config as cfg
from .checkpoint import Checkpoint, named_params, python_rng_state, resume_config, save_checkpoint
from .config import ConfigError, TrainConfig
from .control import RUN, STOP, WAIT, Control
from .corpus import Corpus
from .data import SeqDataLoader, Vocab
from .events import (Diverged, EpochDone, Event, Failed, Finished, Notice, RunInfo, RunState,
                     Sample, SampleReady, SettingChanged, Snapshot, Started, Stopped)
from .devices import synchronize, to_device
from .generate import Prediction, predict
from .implementations import Implementation
from .model import ModelSpec, RNNModel
from .optim import scheduled_lr
from .run_parts import Progress, Run, build_run
from .sampling import GREEDY, Sampling, parse_sampling
from .inspect import memorization, text_windows
from .train import CarriedGraph, diverged, perplexity
from .validation import evaluate_perplexity

PUBLISH_INTERVAL_S = 0.1   # at most ~10 snapshots a second, however fast training runs


class _Stop(Exception):
    """Raised inside the loop when stop() was asked for."""


class NotSetUp(RuntimeError):
    """A run's part was asked for before setup() (or run()) built them."""


def live_values(config: TrainConfig) -> dict:
    """A config's live settings (config.LIVE_FIELDS), as the snapshot and checkpoint keep them."""
    return {name: getattr(config, name) for name in cfg.LIVE_FIELDS}


@dataclass(frozen=True, eq=False)
class Boundary:
    """The state between two epochs: the last good parameters (put back after a divergence)
    and the batch generator's state, which together make a checkpoint that resumes exactly."""
    params: list[torch.Tensor]
    optimizer: dict
    loader_rng: tuple

    @classmethod
    def of(cls, run: Run) -> "Boundary":
        return cls([p.detach().clone() for p in run.net.parameters()],
                   run.optimizer.state_dict(), run.loader.rng.getstate())


class Trainer:
    read_only = False  # it steers its own run (rnn-tui watch's follower only reads one)

    def __init__(self, config: TrainConfig | None = None, corpus: Corpus | None = None,
                 on_event: Callable[[Event], None] | None = None,
                 resume: Checkpoint | None = None):
        """config defaults to the book's; with resume, training continues from a checkpoint
        (build its config with resume_config) exactly where it stopped."""
        self.config = cfg.validate(config or (resume_config(resume) if resume else TrainConfig()))
        # The settings in force: the config, with the live changes commands made since (only
        # config.LIVE_FIELDS ever differ). A new value each time, so any thread may read it.
        self.in_force = self.config
        self._resume = resume
        self._corpus = corpus
        self._listeners: list[Callable[[Event], None]] = [on_event] if on_event else []
        self._lock = threading.Lock()     # guards the published snapshot
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        # Commands and requests from other threads, taken at the next batch boundary.
        self.control = Control()
        self._changed = False  # whether the last commands changed a live setting
        self._snapshot = Snapshot(**live_values(self.config))
        # The run's parts, built by setup() in one go; until then there are none.
        self._parts: Run | None = None
        # What training has done: where the checkpoint left off, or nothing yet. Only the
        # training thread changes it; the snapshot publishes it.
        self.progress = Progress.from_checkpoint(resume) if resume else Progress()
        self._boundary: Boundary | None = None  # the last finished epoch's, for checkpoints
        self._last_publish = 0.0
        self.thread: threading.Thread | None = None

    # ---- set-up (on the training thread) --------------------------------------------------

    def setup(self) -> RunInfo:
        """Load the corpus, build vocabulary, data and model. Raises CorpusError, DataError,
        DeviceError or ConfigError with a message for the user."""
        if self._parts is not None:
            return self._parts.info
        self._parts = build_run(self.config, self._corpus, self._resume)
        self._mark_boundary()
        for notice in self._parts.notices:
            self._emit(Notice(notice))
        self._emit(Started(self._parts.info, self.progress.epoch))
        self._publish(batch=0)
        return self._parts.info

    @property
    def parts(self) -> Run:
        """The run's corpus, vocabulary, data, model and optimizer; setup() builds them."""
        if self._parts is None:
            raise NotSetUp("the trainer is not set up yet: setup() or run() builds its corpus, "
                           "vocabulary, data and model")
        return self._parts

    @property
    def info(self) -> RunInfo | None:
        """What the UI shows about the run; None until set up (the app polls for it)."""
        return self._parts.info if self._parts is not None else None

    # The parts other code reads most (on the training thread); NotSetUp before setup().
    @property
    def net(self) -> RNNModel:
        return self.parts.net

    @property
    def vocab(self) -> Vocab:
        return self.parts.vocab

    @property
    def loader(self) -> SeqDataLoader:
        return self.parts.loader

    @property
    def impl(self) -> Implementation:
        return self.parts.impl

    @property
    def spec(self) -> ModelSpec:
        return self.parts.spec

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.parts.optimizer

    @property
    def corpus(self) -> Corpus:
        return self.parts.corpus

    @property
    def device(self) -> torch.device:
        return self.parts.device

    # ---- checkpoints (on the training thread) ----------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """The state at the end of the last finished epoch (a run resumed from it continues
        exactly as this one would). Only the training thread may call this."""
        run, done, boundary, now = self.parts, self.progress, self._boundary, self.in_force
        rng = random.Random()
        rng.setstate(boundary.loader_rng)
        return Checkpoint(
            params=named_params(boundary.params, run.spec), vocab=list(run.vocab.idx_to_token),
            config=self.config.to_dict(), corpus_name=run.corpus.name,
            corpus_sha1=run.corpus.sha1, epoch=done.epoch, batch=0,
            rng={"python": python_rng_state(rng), "torch": run.sample_generator.get_state()},
            history=list(done.history), history_stride=done.history_stride,
            samples=[asdict(x) for x in done.samples], elapsed=done.elapsed,
            impl=run.impl.name,
            optimizer={**boundary.optimizer, "lr": float(now.lr), "clip": float(now.clip)},
            live=live_values(now),
            extra={"val_history": list(done.val_history)} if done.val_history else {})

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
        done = self.progress.epoch
        if name == "epochs" and value < done:
            raise ConfigError(f"epochs must be at least {done}, the epochs already trained")
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
        run = self.parts
        return predict(prefix, num_preds, run.net, run.vocab, run.device, sampling,
                       generator=run.sample_generator, preprocess=self.config.preprocess)

    def run(self, keep_alive: bool = False) -> Snapshot:
        """Train until the last epoch or stop(). With keep_alive, go on serving predictions
        after training ends, until stop(), and train on if the number of epochs is raised.
        Errors end in the ERROR state, never raise; a diverged epoch pauses in the DIVERGED
        state until resume() (after, say, set_lr) or stop()."""
        self.thread = threading.current_thread()
        done = self.progress
        try:
            self.setup()
            while True:
                self._set_state(RunState.PAUSED if self.control.paused else RunState.TRAINING)
                while done.epoch < self.in_force.epochs:
                    try:
                        self._train_epoch()
                    except _DivergedError as e:
                        self._on_diverged(e)
                # Epochs lowered to the one in progress: that epoch was finished, and is the last.
                if self.in_force.epochs < done.epoch:
                    self.in_force = replace(self.in_force, epochs=done.epoch)
                self._publish(batch=0)
                self._set_state(RunState.FINISHED)
                self._emit(Finished(done.epoch, done.perplexity, done.tokens_per_sec))
                if not (keep_alive and self._serve_until_stopped(train_on=True)):
                    break
        except _Stop:
            if done.epoch_tokens_per_sec:  # a part-epoch's speed is not the run's
                done.tokens_per_sec = done.epoch_tokens_per_sec
                self._publish(batch=0)
            if self.snapshot().state != RunState.DIVERGED:
                self._set_state(RunState.STOPPED)
            self._emit(Stopped(done.epoch))
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
        self._emit(Diverged(self.progress.epoch, error.batch, str(error)))
        self._publish(batch=0)
        self._wait_while_paused()
        self._set_state(RunState.TRAINING)

    def _train_epoch(self) -> None:
        """One pass over the data: d2l's `train_epoch_ch8`, checking commands between batches."""
        run, done = self.parts, self.progress
        net, device, use_random_iter = run.net, run.device, self.config.use_random_iter
        carry = self.config.detach == "no" and not use_random_iter  # the graph across batches
        state = None
        loss_sum = torch.zeros((), device=device)
        num_tokens = 0
        train_time = 0.0
        batches = 0
        last_batch = None  # (loss sum, gradient norm, tokens) of the latest batch, unread
        lr = self.epoch_lr()
        for batch, (X, Y) in enumerate(run.loader):
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
            batch_loss, grad_norm, state = run.impl.train_step(
                CarriedGraph(net) if carry else net, X, Y, state, lr, self.in_force.clip,
                run.optimizer, retain_graph=carry)
            loss_sum += batch_loss
            num_tokens += Y.numel()
            last_batch = (batch_loss, grad_norm, Y.numel())
            train_time += time.perf_counter() - start
            batches = batch + 1
            if time.perf_counter() - self._last_publish >= PUBLISH_INTERVAL_S:
                t = time.perf_counter()
                self._publish_batch(batches, last_batch, num_tokens, train_time)
                train_time += time.perf_counter() - t
        t = time.perf_counter()
        mean_loss = float(loss_sum) / max(1, num_tokens)  # one host sync per epoch
        synchronize(device)
        train_time += time.perf_counter() - t
        self._check_diverged(mean_loss, batches)
        # The epoch's last batch, for the panels even when epochs outpace the publish interval.
        batch_loss, grad_norm, n = last_batch
        done.loss, done.grad_norm = float(batch_loss) / n, float(grad_norm)
        done.epoch += 1
        done.elapsed += train_time
        done.tokens_per_sec = num_tokens / train_time if train_time > 0 else 0.0
        done.epoch_tokens_per_sec = done.tokens_per_sec
        done.perplexity = perplexity(mean_loss)
        if run.val_tokens:  # timed as part of the epoch, but not in its tokens/s
            t = time.perf_counter()
            done.val_perplexity = evaluate_perplexity(net, run.val_tokens, self.config.batch_size,
                                                      self.config.num_steps, device)
            done.elapsed += time.perf_counter() - t
        self._mark_boundary()
        done.record_history()
        self._emit(EpochDone(done.epoch, done.perplexity, done.tokens_per_sec, lr,
                             self.in_force.clip, done.grad_norm, done.elapsed,
                             torch.get_num_threads(), val_perplexity=done.val_perplexity))
        if run.tuner and (why := run.tuner.epoch_done(done.tokens_per_sec)):
            self._emit(Notice(why, "threads"))
        every, epochs = self.in_force.sample_every, self.in_force.epochs
        if every and done.epoch % every == 0 or done.epoch == epochs:
            self._take_samples()
        self._publish(batch=0)

    def _mark_boundary(self) -> None:
        """Remember the end of a finished epoch (or the start): see Boundary."""
        self._boundary = Boundary.of(self.parts)

    def epoch_lr(self) -> float:
        """The learning rate of the epoch under way: the base rate, or its schedule's value."""
        now = self.in_force
        return scheduled_lr(now.lr, now.lr_schedule, self.progress.epoch, now.epochs)

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
        if not changes:
            return False
        before = live_values(self.in_force)
        self.in_force = replace(self.in_force, **changes)
        changed = False
        for name, value in changes.items():
            if before[name] != value:
                self._emit(SettingChanged(self.progress.epoch, name, before[name], value))
                changed = True
        with self._lock:
            self._snapshot = replace(self._snapshot, **live_values(self.in_force))
        self._changed = self._changed or changed
        return changed

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
            if train_on and self.in_force.epochs > self.progress.epoch:
                self._publish(batch=0)
                return True
            self.control.wait(paused=False)

    def _check_diverged(self, mean_loss: float, batch: int) -> None:
        run = self.parts
        if not diverged(mean_loss, len(run.vocab)):
            return
        # Put back the parameters of the last good epoch, so the model is usable again.
        with torch.no_grad():
            for p, good in zip(run.net.parameters(), self._boundary.params):
                p.copy_(good)
        run.optimizer.load_state_dict(self._boundary.optimizer)
        what = "not a finite number" if not math.isfinite(mean_loss) else f"{mean_loss:.3g} nats"
        epoch, lr = self.progress.epoch, self.in_force.lr
        raise _DivergedError(
            f"training diverged in epoch {epoch + 1} (mean loss {what}) with learning rate "
            f"{lr:g}; the parameters of epoch {epoch} were restored. "
            f"Try a smaller learning rate, e.g. {lr / 2:g}.", batch)

    def _take_samples(self) -> None:
        now, epoch = self.in_force, self.progress.epoch
        sampling = parse_sampling(now.sampling)
        samples = []
        for prefix in now.prefixes:
            text = self.predict(prefix, now.predict_len, sampling).text
            samples.append(Sample(epoch, prefix, text,
                                  memorization(text, self.training_windows).share))
        self.progress.add_samples(samples)
        self._emit(SampleReady(epoch, tuple(samples)))

    @functools.cached_property
    def training_windows(self) -> frozenset[str]:
        """The training text's 20-character windows, built once (on the training thread, at
        the first sample): a sample's windows found here were seen in training."""
        run = self.parts
        return text_windows("".join(run.vocab.to_tokens(run.loader.corpus)))

    def _publish_batch(self, batch: int, last_batch: tuple, num_tokens: int,
                       train_time: float) -> None:
        """Read the latest batch's numbers (a host sync) and publish them."""
        batch_loss, grad_norm, n = last_batch
        done = self.progress
        done.loss, done.grad_norm = float(batch_loss) / n, float(grad_norm)
        if num_tokens and train_time > 0:
            done.tokens_per_sec = num_tokens / train_time
        self._publish(batch)

    def _publish(self, batch: int) -> None:
        done, tuner = self.progress, self.parts.tuner
        with self._lock:
            self._snapshot = replace(
                self._snapshot, epoch=done.epoch, batch=batch,
                batches_per_epoch=len(self.parts.loader), perplexity=done.perplexity,
                history=tuple(done.history), history_stride=done.history_stride,
                tokens_per_sec=done.tokens_per_sec, loss=done.loss, grad_norm=done.grad_norm,
                samples=tuple(done.samples), elapsed=done.elapsed, **live_values(self.in_force),
                threads=tuner.threads if tuner else torch.get_num_threads(),
                val_perplexity=done.val_perplexity, val_history=tuple(done.val_history))
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
