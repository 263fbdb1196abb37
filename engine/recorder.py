"""RunRecorder: a trainer listener that keeps a run on disk.

It writes the run's metrics and live setting changes as JSON Lines, its samples as text, and
a checkpoint every N epochs and when the run ends, stops, diverges or fails, all into one run
directory. Everything it does happens on the training thread, between batches.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import CheckpointError
from .run_index import remember_run_dir
from .runlog import RunLog, new_run_dir
from .events import (Diverged, EpochDone, Event, Failed, Finished, Notice, SampleReady,
                     SettingChanged, Started, Stopped)
from .trainer import Trainer

CHECKPOINT_FILE = "checkpoint.pt"


def run_name(trainer: Trainer) -> str:
    """e.g. timemachine-h512-sequential: named after the corpus the run really uses (a file's
    name without its folders and suffix), once the trainer has loaded it."""
    c = trainer.config
    corpus = trainer.info.corpus if trainer.info else c.corpus
    return f"{Path(corpus).stem}-h{c.num_hiddens}-{c.iterator}"


class RunRecorder:
    def __init__(self, trainer: Trainer, run_dir: str | Path | None = None,
                 autosave_every: int = 10, runs_root: str | Path | None = None):
        """run_dir: where to write (created); None makes a new one under runs_root."""
        self.trainer = trainer
        self.run_dir = Path(run_dir).expanduser() if run_dir else None
        self.runs_root = runs_root
        self.autosave_every = autosave_every
        self.log: RunLog | None = None
        self.last_saved: Path | None = None
        self.save_error: str | None = None
        trainer.add_listener(self)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / CHECKPOINT_FILE if self.run_dir else None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self._start(event)
            return
        if self.log is None:
            return
        if isinstance(event, EpochDone):
            self._epoch = event.epoch
            self.log.write({"type": "epoch", "epoch": event.epoch, "perplexity": event.perplexity,
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
            self.log.write({"type": "setting", "epoch": event.epoch, "name": event.name,
                            "old": event.old, "new": event.new})
        elif isinstance(event, SampleReady):
            for sample in event.samples:
                self.log.sample(sample.epoch, sample.prefix, sample.text, sample.memorized)
        elif isinstance(event, Finished):
            self.log.write({"type": "end", "epoch": event.epoch, "perplexity": event.perplexity,
                            "tokens_per_sec": event.tokens_per_sec})
            self.save()
        elif isinstance(event, Stopped):
            self.log.write({"type": "end", "epoch": event.epoch, "stopped": True})
            self.save()
        elif isinstance(event, Diverged):
            self.log.write({"type": "diverged", "epoch": event.epoch, "message": event.message})
            self.save()
        elif isinstance(event, Failed):
            self.log.write({"type": "error", "message": event.message})
            self.save()

    def _start(self, event: Started) -> None:
        if self.run_dir is None:
            self.run_dir = new_run_dir(run_name(self.trainer), root=self.runs_root)
        self.log = RunLog(self.run_dir)
        self._epoch = event.epoch   # the last finished epoch, for records between epochs
        remember_run_dir(self.run_dir)  # a --run-dir elsewhere: the app's list finds it
        info = event.info
        self.log.write({"type": "start", "epoch": event.epoch, "config": self.trainer.config.to_dict(),
                        "corpus": info.corpus, "num_chars": info.num_chars,
                        "corpus_sha1": self.trainer.corpus.sha1,
                        "num_tokens": info.num_tokens, "vocab_size": info.vocab_size,
                        "device": info.device, "impl": info.impl, "num_params": info.num_params,
                        "threads": info.threads,
                        **({"val_tokens": info.val_tokens} if info.val_tokens else {})})

    def save(self) -> Path | None:
        """Checkpoint the last finished epoch (on the training thread). A failure is kept in
        save_error and returned as None, never raised into training."""
        if self.checkpoint_path is None or self.trainer.info is None:
            return None
        try:
            self.last_saved = self.trainer.save(self.checkpoint_path)
            self.save_error = None
        except (CheckpointError, OSError) as e:
            self.save_error = str(e)
            return None
        return self.last_saved

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
