"""The adaptive thread count (engine/threads.py): its decisions, on fake machines that say how
many tokens a second each thread count trains; then how the trainer uses it and says so.
Nothing here is timed: the speed figures are the benchmark's (bench/busy.py)."""

from __future__ import annotations

import json
import random

import pytest

from engine import threads as threads_module
from engine.config import TrainConfig
from engine.recorder import RunRecorder
from engine.threads import MAX_INTERVAL, ThreadTuner
from engine.events import EpochDone, Notice
from engine.trainer import Trainer

QUIET = {1: 33_000.0, 2: 56_000.0}     # 2 cores, nothing else running (the figures)
BUSY = {1: 33_000.0, 2: 19_000.0}      # beside one busy core


class FakeMachine:
    """Runs epochs for a tuner: speed(epoch, threads) -> tokens/s; records what was set."""

    def __init__(self, cores: int, speed):
        self.speed = speed
        self.set_calls: list[int] = []
        self.tuner = ThreadTuner(cores, self.set_calls.append)
        self.counts: list[int] = []       # the count each epoch ran with
        self.messages: list[tuple[int, str]] = []

    def run(self, epochs: int) -> "FakeMachine":
        for _ in range(epochs):
            epoch = len(self.counts)
            n = self.tuner.current
            assert 1 <= n <= self.tuner.max_threads
            if self.set_calls:   # what torch was told is what runs
                assert self.set_calls[-1] == n
            self.counts.append(n)
            message = self.tuner.epoch_done(self.speed(epoch, n))
            if message:
                self.messages.append((epoch, message))
        return self

    def share(self, n: int, start: int = 0, end: int | None = None) -> float:
        counts = self.counts[start:end]
        return counts.count(n) / len(counts)


def fixed(table):
    return lambda epoch, n: table[n]


def test_a_quiet_machine_keeps_all_cores_and_probes_less_and_less():
    m = FakeMachine(2, fixed(QUIET)).run(500)
    assert m.tuner.threads == 2 and m.messages == []
    probes = [e for e, n in enumerate(m.counts) if n == 1]
    assert probes and len(probes) <= 10
    assert m.share(1) <= 0.02          # the probes cost at most 2% of the epochs
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    assert gaps == sorted(gaps) and gaps[-1] >= MAX_INTERVAL
    assert "the fastest" in m.tuner.describe() and "56,000" in m.tuner.describe()


def test_beside_a_busy_core_it_drops_to_one_thread_at_once_and_says_why():
    m = FakeMachine(2, fixed(BUSY)).run(500)
    assert m.tuner.threads == 1
    assert m.counts[:2] == [2, 1]   # measured, probe: one thread from then on
    assert m.share(2) <= 0.03
    (epoch, message), = m.messages
    assert epoch == 1
    assert message.startswith("training with 1 thread instead of 2")
    assert "other processes are using cores" in message
    assert "33,000 tokens/s against 19,000 with 2 threads" in message


def test_it_follows_the_machine_as_load_comes_and_goes():
    def speed(epoch, n):
        return (BUSY if 200 <= epoch < 400 else QUIET)[n]
    m = FakeMachine(2, speed).run(800)
    # Load arriving slows the current count: noticed within a few epochs, not after the long
    # quiet-time interval.
    assert m.share(2, 0, 200) >= 0.95
    assert m.share(1, 210, 400) >= 0.95
    assert m.messages[0][0] in range(200, 205)
    # Load leaving does not change one thread's speed: the next scheduled probe finds it.
    back = m.messages[-1][0]
    assert "cores are free" in m.messages[-1][1] and back in range(400, 400 + MAX_INTERVAL)
    assert m.share(2, back, 800) >= 0.95


def test_on_four_cores_it_steps_down_to_the_fastest_count_and_stays():
    table = {1: 20_000.0, 2: 36_000.0, 3: 50_000.0, 4: 30_000.0}
    m = FakeMachine(4, fixed(table)).run(400)
    assert m.tuner.threads == 3
    assert m.share(3, 20) >= 0.95
    assert min(m.counts) >= 2          # it tried 2, found it slower, never went lower


def test_noise_within_the_margin_never_moves_the_count():
    rng = random.Random(0)
    m = FakeMachine(2, lambda e, n: 40_000.0 * rng.uniform(0.98, 1.02)).run(500)
    assert m.messages == [] and m.tuner.threads == 2


def test_one_odd_epoch_does_not_decide():
    # Epoch 60, at 2 threads, is slow (another program woke up briefly): not a change of
    # the machine, so no probe and no change.
    m = FakeMachine(2, lambda e, n: 1_000.0 if e == 60 else QUIET[n]).run(200)
    assert m.counts[58:64] == [2] * 6 and m.messages == [] and m.tuner.threads == 2
    assert m.share(2) >= 0.95


def test_a_change_of_speed_probes_the_way_it_points():
    # At one thread (others busy), getting slower still is no reason to try two threads;
    # getting faster is.
    def speed(epoch, n):
        if epoch < 100:
            return BUSY[n]
        if epoch < 200:
            return {1: 15_000.0, 2: 5_000.0}[n]    # busier
        return QUIET[n]                            # everything else stopped
    m = FakeMachine(2, speed).run(260)
    assert m.share(1, 100, 120) == 1.0 and m.share(1, 100, 200) >= 0.98   # scheduled only
    assert m.messages[-1][0] in range(200, 205) and m.tuner.threads == 2


def test_slow_probes_are_made_rare():
    # Under heavy load, two threads ran five times slower than one: each probe of two costs
    # four epochs' time, so they come at most every 200 epochs (2% of the time).
    m = FakeMachine(2, fixed({1: 10_000.0, 2: 2_000.0})).run(1000)
    probes = [e for e, n in enumerate(m.counts) if n == 2 and e > 0]
    assert all(b - a >= 200 for a, b in zip(probes[1:], probes[2:]))
    assert sum(10_000.0 / 2_000.0 - 1 for _ in probes) / 1000 <= 0.03


def test_a_slow_first_epoch_misleads_only_briefly():
    # Were the first epoch slow for reasons of its own, the probe would win by a narrow
    # margin (5%) and so be checked again soon: back to all cores within a few epochs.
    m = FakeMachine(2, lambda e, n: 31_000.0 if e == 0 else QUIET[n]).run(50)
    assert len(m.messages) == 2 and "cores are free" in m.messages[1][1]
    assert m.messages[1][0] < 10 and m.tuner.threads == 2 and m.share(2, 10) >= 0.95


def test_one_core_leaves_the_count_alone():
    m = FakeMachine(1, lambda e, n: 10_000.0).run(100)
    assert m.set_calls == [] and set(m.counts) == {1}


# ---- in the trainer -------------------------------------------------------------------------

SMALL = dict(num_hiddens=32, max_tokens=3000, batch_size=8, num_steps=10, epochs=6,
             sample_every=100, device="cpu")


class ScriptedTuner(ThreadTuner):
    """Decides to drop to one thread after the trainer's second epoch, whatever the timings."""
    instances: list["ScriptedTuner"] = []

    def __init__(self, max_threads, set_threads):
        super().__init__(2, set_threads)
        self.seen: list[float] = []
        ScriptedTuner.instances.append(self)

    def epoch_done(self, tokens_per_sec):
        self.seen.append(tokens_per_sec)
        if len(self.seen) == 2:
            self.threads = 1
            self._set_threads(1)
            return "training with 1 thread instead of 2: scripted"
        return None


def test_the_default_trainer_tunes_at_epoch_ends_and_records_why(
        timemachine_corpus, tmp_path, monkeypatch):
    import engine.run_parts as run_parts
    import torch
    before = torch.get_num_threads()
    ScriptedTuner.instances.clear()
    monkeypatch.setattr(run_parts, "ThreadTuner", ScriptedTuner)
    trainer = Trainer(TrainConfig(**SMALL, threads=0), corpus=timemachine_corpus)
    recorder = RunRecorder(trainer, run_dir=tmp_path / "run")
    try:
        trainer.run()
    finally:
        recorder.close()
        torch.set_num_threads(before)
    tuner, = ScriptedTuner.instances
    assert len(tuner.seen) == 6 and all(rate > 0 for rate in tuner.seen)
    assert "adaptive threads" in trainer.info.threads
    assert trainer.snapshot().threads == 1
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
               .splitlines()]
    assert "adaptive threads" in records[0]["threads"]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["threads"] for r in epochs] == [2, 2, 1, 1, 1, 1]
    notice, = [r for r in records if r["type"] == "notice"]
    assert notice == {**notice, "epoch": 2, "topic": "threads",
                      "message": "training with 1 thread instead of 2: scripted"}


@pytest.mark.parametrize("threads", [1, 2])
def test_a_fixed_thread_count_is_kept_and_said(timemachine_corpus, monkeypatch, threads):
    import engine.run_parts as run_parts
    import torch
    before = torch.get_num_threads()
    monkeypatch.setattr(run_parts, "ThreadTuner", None)   # never built
    events = []
    trainer = Trainer(TrainConfig(**SMALL, threads=threads), corpus=timemachine_corpus,
                      on_event=events.append)
    try:
        trainer.run()
    finally:
        torch.set_num_threads(before)
    assert trainer.info.threads == f"{threads} thread{'s' * (threads > 1)} (--threads {threads})"
    assert {e.threads for e in events if isinstance(e, EpochDone)} == {threads}
    assert not [e for e in events if isinstance(e, Notice)]


def test_all_cores_is_torchs_own_default():
    assert threads_module.ALL_CORES >= 1
