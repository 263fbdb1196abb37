"""A run that trains elsewhere, read from its metrics.jsonl as it grows (`rnn-tui watch`).

`LogFollower` looks like a Trainer to the app (snapshot(), events(), run(), stop(), info)
but has no model: it tails the log on its own thread and publishes a Snapshot built from the
records. It cannot steer the run (`read_only`); the app says so for the keys that would.
Torch-free: watching needs no model.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import ConfigError, TrainConfig
from .runs import STALE_S, MetricsTail, metrics_path
from .events import (MAX_HISTORY, MAX_SAMPLES, Diverged, EpochDone, Event, Failed, Finished,
                     RunInfo, RunState, Sample, SettingChanged, Snapshot, Started, Stopped)

POLL_S = 0.25   # how often the log is read
READ_ONLY = ("this run trains elsewhere and is only watched (read-only); steer it where it "
             "runs, or open its checkpoint with rnn-tui --resume")


def config_of(records: list[dict[str, Any]]) -> TrainConfig:
    """The settings of the log's last start record; the book's where they cannot be read."""
    for r in reversed(records):
        if r.get("type") == "start" and isinstance(r.get("config"), dict):
            try:
                return TrainConfig.from_dict(r["config"])
            except (ConfigError, TypeError):
                break
    return TrainConfig()


class LogFollower:
    read_only = True

    def __init__(self, path: str | Path, poll_s: float = POLL_S):
        self.path = metrics_path(path)
        self.poll_s = poll_s
        self._tail = MetricsTail(self.path)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._events: list[Event] = []
        self.info: RunInfo | None = None
        self.config = TrainConfig()
        self._reset()

    def _reset(self) -> None:
        self._snap = Snapshot(state=RunState.READY, message=f"waiting for {self.path}")
        self._history: list[float] = []
        self._val_history: list[float] = []
        self._stride = 1
        self._epoch_seen = 0
        self._samples: list[Sample] = []
        self._last_change = time.time()

    # ---- the Trainer's reading interface ------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snap

    def events(self) -> list[Event]:
        with self._lock:
            out, self._events = self._events, []
        return out

    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_prediction(self, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_exception(ValueError(f"no model here: {READ_ONLY}"))
        return future

    def run(self, keep_alive: bool = True) -> Snapshot:
        """Follow the log until stop()."""
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.poll_s)
        return self.snapshot()

    # ---- reading the log ------------------------------------------------------------------------

    def poll(self) -> None:
        """Read what the log gained and publish it."""
        records = self._tail.read()
        now = time.time()
        with self._lock:
            if self._tail.reset:
                self._reset()
                self.info = None
            for record in records:
                self._apply(record)
            if records:
                self._last_change = now
            snap = self._snap
            quiet = now - self._last_change
            if snap.state is RunState.TRAINING and quiet > STALE_S:
                snap = replace(snap, message=f"the log has not grown for {quiet / 60:.0f} minutes")
            if not records and not self._tail.reset and snap.message == self._snap.message:
                return  # nothing new: the same snapshot, so the app has nothing to redraw
            self._snap = replace(snap, history=tuple(self._history),
                                 val_history=tuple(self._val_history),
                                 history_stride=self._stride, samples=tuple(self._samples))

    def _apply(self, r: dict[str, Any]) -> None:
        kind, s = r.get("type"), self._snap
        if kind == "start":
            self.config = config_of([r])
            c = self.config
            epoch = r.get("epoch") if isinstance(r.get("epoch"), int) else 0
            if epoch < self._epoch_seen:  # resumed from an earlier checkpoint: drop what came after
                keep = -(-epoch // self._stride)
                self._history, self._val_history = self._history[:keep], self._val_history[:keep]
            self._epoch_seen = epoch
            self.info = RunInfo(str(r.get("corpus", c.corpus)), int(r.get("num_chars") or 0),
                                int(r.get("num_tokens") or 0), int(r.get("vocab_size") or 0),
                                str(r.get("device", "?")),
                                f"{r.get('impl', c.impl)} · watched, read-only",
                                int(r.get("num_params") or 0),
                                val_tokens=int(r.get("val_tokens") or 0))
            self._snap = replace(s, state=RunState.TRAINING, message="", epoch=epoch,
                                 epochs=c.epochs, lr=c.lr, clip=c.clip,
                                 sample_every=c.sample_every)
            self._events.append(Started(self.info, epoch))
        elif kind == "epoch" and isinstance(r.get("epoch"), int):
            epoch, ppl, val = r["epoch"], _num(r.get("perplexity")), _num(r.get("val_perplexity"))
            self._epoch_seen = epoch
            if (epoch - 1) % self._stride == 0:
                self._history.append(ppl if ppl is not None else float("nan"))
                if val is not None:
                    self._val_history.append(val)
            if len(self._history) >= MAX_HISTORY:
                self._history, self._val_history = self._history[::2], self._val_history[::2]
                self._stride *= 2
            self._snap = replace(
                s, state=RunState.TRAINING, message="", epoch=epoch, perplexity=ppl,
                val_perplexity=val, tokens_per_sec=_num(r.get("tokens_per_sec")) or 0.0,
                lr=_num(r.get("lr")) or s.lr, clip=_num(r.get("clip")) or s.clip,
                grad_norm=_num(r.get("grad_norm")), elapsed=_num(r.get("wall_time")) or 0.0,
                epochs=max(s.epochs, epoch))
            self._events.append(EpochDone(epoch, ppl or float("nan"), self._snap.tokens_per_sec,
                                          self._snap.lr, self._snap.clip, self._snap.grad_norm,
                                          self._snap.elapsed, val_perplexity=val))
        elif kind == "setting" and isinstance(r.get("name"), str):
            name, new = r["name"], r.get("new")
            if name in ("lr", "clip", "epochs", "sample_every") and _num(new) is not None:
                self._snap = replace(s, **{name: type(getattr(s, name))(new)})
            self._events.append(SettingChanged(int(r.get("epoch") or 0), name, r.get("old"), new))
        elif kind == "sample":
            sample = Sample(int(r.get("epoch") or 0), str(r.get("prefix", "")),
                            str(r.get("text", "")))
            per_round = max(1, len(self.config.prefixes))
            self._samples = ([sample] + self._samples)[: MAX_SAMPLES * per_round]
            # The log holds a round's samples in order; the panel shows a round's in order.
            first = [x for x in self._samples if x.epoch == sample.epoch]
            rest = [x for x in self._samples if x.epoch != sample.epoch]
            self._samples = first[::-1] + rest
        elif kind == "end":
            if r.get("stopped"):
                self._snap = replace(s, state=RunState.STOPPED, message="")
                self._events.append(Stopped(s.epoch))
            else:
                self._snap = replace(s, state=RunState.FINISHED, message="")
                self._events.append(Finished(s.epoch, s.perplexity, s.tokens_per_sec))
        elif kind == "diverged":
            message = str(r.get("message", "training diverged"))
            self._snap = replace(s, state=RunState.DIVERGED, message=message)
            self._events.append(Diverged(s.epoch, 0, message))
        elif kind == "error":
            message = str(r.get("message", "the run failed"))
            self._snap = replace(s, state=RunState.ERROR, message=message)
            self._events.append(Failed(message))


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None
