"""RunRecorder: a trainer listener that keeps a run on disk.

It writes the run's metrics and live setting changes as JSON Lines, its samples as text, and
a checkpoint every N epochs and when the run ends, stops, diverges or fails, all into one run
directory. Everything it does happens on the training thread, between batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .checkpoint import PREVIOUS_UNCHANGED, CheckpointError, save_checkpoint
from .run_index import remember_run_dir
from .events import (Diverged, EpochDone, Event, Failed, Finished, Notice, SampleReady,
                     SettingChanged, Started, Stopped)
from .rundir import RunDirError, RunLock, check_runs_folder, check_writable
from .runlog import RunLog, default_runs_dir, new_run_dir
from .trainer import Trainer

CHECKPOINT_FILE = "checkpoint.pt"


def run_name(trainer: Trainer) -> str:
    """e.g. timemachine-h512-sequential: named after the corpus the run really uses (a file's
    name without its folders and suffix), once the trainer has loaded it."""
    c = trainer.config
    corpus = trainer.info.corpus if trainer.info else c.corpus
    return f"{Path(corpus).stem}-h{c.num_hiddens}-{c.iterator}"


class RunRecorder:
    """Keeps one run on disk. A write that fails (a full disk, a deleted or read-only
    directory) never raises into training: the recorder keeps the first message in `failure`
    and calls on_failure(message) once, on the training thread, so the caller can pause or
    stop the run; the last checkpoint that was written stays as it was."""

    def __init__(self, trainer: Trainer, run_dir: str | Path | None = None,
                 autosave_every: int = 10, runs_root: str | Path | None = None,
                 on_failure: Callable[[str], None] | None = None):
        """run_dir: where to write (created); None makes a new one under runs_root."""
        self.trainer = trainer
        self.run_dir = Path(run_dir).expanduser() if run_dir else None
        self.runs_root = runs_root
        self.autosave_every = autosave_every
        self.on_failure = on_failure
        self.log: RunLog | None = None
        self.lock: RunLock | None = None
        self.last_saved: Path | None = None
        self.saved_epoch: int | None = None  # the epoch that last_saved holds
        self.save_error: str | None = None
        self.failure: str | None = None      # the first write that failed, until one works again
        self.failures = 0                    # how many times writing failed (after retries too)
        trainer.add_listener(self)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / CHECKPOINT_FILE if self.run_dir else None

    def prepare(self) -> None:
        """Before training: the run directory (or, for a new one, the runs folder) can be
        written, and this run holds the directory's lock. Raises RunDirError."""
        if self.run_dir is None:
            check_runs_folder(self.runs_root if self.runs_root is not None else default_runs_dir())
            return
        check_writable(self.run_dir)
        self.lock = self.lock or RunLock(self.run_dir)
        self.lock.acquire()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self._start(event)
            return
        if self.log is None:
            return
        if isinstance(event, EpochDone):
            self._epoch = event.epoch
            if self.failure is not None:
                self._retry()
            self._write({"type": "epoch", "epoch": event.epoch, "perplexity": event.perplexity,
                         "tokens_per_sec": event.tokens_per_sec, "lr": event.lr,
                         "clip": event.clip, "grad_norm": event.grad_norm,
                         "wall_time": event.elapsed, "threads": event.threads,
                         **({"val_perplexity": event.val_perplexity}
                            if event.val_perplexity is not None else {})})
            if self.autosave_every and event.epoch % self.autosave_every == 0:
                self.save()
        elif isinstance(event, Notice):   # e.g. the thread count changed, and why
            self.log.write({"type": "notice", "epoch": self._epoch,
                            "topic": event.topic, "message": event.message})
        elif isinstance(event, SettingChanged):
            self._write({"type": "setting", "epoch": event.epoch, "name": event.name,
                         "old": event.old, "new": event.new})
        elif isinstance(event, SampleReady):
            for sample in event.samples:
                self.log.sample(sample.epoch, sample.prefix, sample.text, sample.memorized)
            self._check_log()
        elif isinstance(event, Finished):
            self._write({"type": "end", "epoch": event.epoch, "perplexity": event.perplexity,
                         "tokens_per_sec": event.tokens_per_sec})
            self.save()
        elif isinstance(event, Stopped):
            self._write({"type": "end", "epoch": event.epoch, "stopped": True})
            self.save()
        elif isinstance(event, Diverged):
            self._write({"type": "diverged", "epoch": event.epoch, "message": event.message})
            self.save()
        elif isinstance(event, Failed):
            self._write({"type": "error", "message": event.message})
            self.save()

    def _start(self, event: Started) -> None:
        if self.run_dir is None:
            root = self.runs_root if self.runs_root is not None else default_runs_dir()
            try:
                self.run_dir = new_run_dir(run_name(self.trainer), root=root)
            except OSError as e:
                raise RunDirError(f"cannot create a run directory in {str(root)!r}: "
                                  f"{e.strerror or e}") from None
        if self.lock is None or not self.lock.held:
            self.prepare()
        self.log = RunLog(self.run_dir)
        self._epoch = event.epoch   # the last finished epoch, for records between epochs
        remember_run_dir(self.run_dir)  # a --run-dir elsewhere: the app's list finds it
        info = event.info
        self._write({"type": "start", "epoch": event.epoch, "config": self.trainer.config.to_dict(),
                     "corpus": info.corpus, "num_chars": info.num_chars,
                     "corpus_sha1": self.trainer.corpus.sha1,
                     "num_tokens": info.num_tokens, "vocab_size": info.vocab_size,
                     "device": info.device, "impl": info.impl, "num_params": info.num_params,
                     "threads": info.threads,
                     **({"val_tokens": info.val_tokens} if info.val_tokens else {})})

    def _write(self, record: dict) -> None:
        self.log.write(record)
        self._check_log()

    def _check_log(self) -> None:
        error = self.log.error if self.log is not None else None
        if error is not None:
            self._fail(f"cannot write the run's metrics in {str(self.run_dir)!r}: "
                       f"{error.strerror or error}")

    def _retry(self) -> None:
        """After a failure, each epoch tries again: the user may have freed space meanwhile."""
        self.failure = None
        if self.log is not None and not self.log.ok:
            self.log.reopen()
        if self.save_error is not None:
            self.save()

    def _fail(self, message: str) -> None:
        if self.failure is not None:
            return
        self.failure = message
        self.failures += 1
        if self.on_failure is not None:
            self.on_failure(self.explain())

    def explain(self) -> str:
        """The failure, and what is kept on disk, in one sentence."""
        return f"{self.failure}; {self.kept()}"

    def kept(self) -> str:
        """What the run has on disk: the last checkpoint written, and its epoch."""
        if self.last_saved is None:
            return "no checkpoint of this run was saved"
        return (f"the last checkpoint saved, {str(self.last_saved)!r}, holds epoch "
                f"{self.saved_epoch}")

    def save(self) -> Path | None:
        """Checkpoint the last finished epoch (on the training thread). A failure is kept in
        save_error and failure and returned as None, never raised into training."""
        if self.checkpoint_path is None or self.trainer.info is None:
            return None
        try:
            ckpt = self.trainer.checkpoint()
            save_checkpoint(self.checkpoint_path, ckpt)
        except (CheckpointError, OSError) as e:
            self.save_error = str(e)
            self._fail(str(e).removesuffix(PREVIOUS_UNCHANGED))  # kept() says what is on disk
            return None
        self.last_saved, self.saved_epoch, self.save_error = self.checkpoint_path, ckpt.epoch, None
        return self.last_saved

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self._check_log()
        if self.lock is not None:
            self.lock.release()
