"""The Trainer: it learns, it is reproducible, and other threads can steer it."""

import threading
import time

import pytest

from engine.config import ConfigError, TrainConfig
from engine.trainer import (EpochDone, Finished, RunState, SampleReady, SettingChanged, Trainer)

SMALL = dict(num_hiddens=64, max_tokens=5000, batch_size=16, num_steps=20, threads=1,
             sample_every=2, impl="book")


def make(corpus, **kw):
    return Trainer(TrainConfig(**{**SMALL, **kw}), corpus=corpus)


def test_short_run_lowers_perplexity(timemachine_corpus):
    snap = make(timemachine_corpus, epochs=12, lr=1.0).run()
    assert snap.state == RunState.FINISHED and snap.epoch == 12
    assert len(snap.history) == 12
    assert snap.history[-1] < 0.75 * snap.history[0]
    assert snap.tokens_per_sec > 0 and snap.perplexity == snap.history[-1]


@pytest.mark.parametrize("iterator", ["sequential", "random"])
def test_same_seed_same_numbers(timemachine_corpus, iterator):
    a = make(timemachine_corpus, epochs=3, iterator=iterator, seed=7).run()
    b = make(timemachine_corpus, epochs=3, iterator=iterator, seed=7).run()
    c = make(timemachine_corpus, epochs=3, iterator=iterator, seed=8).run()
    assert a.history == b.history
    assert a.samples == b.samples
    assert a.history != c.history


def test_events_in_order(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=4)
    trainer.run()
    kinds = [type(e) for e in trainer.events()]
    assert kinds == [EpochDone, EpochDone, SampleReady, EpochDone, EpochDone, SampleReady, Finished]
    assert trainer.snapshot().samples[0].epoch == 4  # newest first


def _start(trainer, **kw):
    thread = threading.Thread(target=trainer.run, kwargs=kw, daemon=True)
    thread.start()
    return thread


def _wait(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_pause_resume_stop_from_another_thread(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=10_000)
    thread = _start(trainer)
    assert _wait(lambda: trainer.snapshot().epoch >= 1)
    trainer.pause()
    assert _wait(lambda: trainer.snapshot().state == RunState.PAUSED)
    paused_at = trainer.snapshot()
    time.sleep(0.5)
    assert trainer.snapshot().epoch == paused_at.epoch      # nothing moves while paused
    # One batch while paused, then paused again.
    trainer.step()
    assert _wait(lambda: trainer.snapshot().batch != paused_at.batch
                 or trainer.snapshot().epoch != paused_at.epoch)
    assert trainer.snapshot().state == RunState.PAUSED
    # A prediction is served while paused.
    prediction = trainer.request_prediction("time traveller", 10).result(timeout=10)
    assert len(prediction.text) == 10
    trainer.resume()
    epoch = trainer.snapshot().epoch
    assert _wait(lambda: trainer.snapshot().epoch > epoch + 1)
    # Stop acts within one batch (a batch of this model takes a few milliseconds).
    t = time.perf_counter()
    trainer.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.perf_counter() - t < 1.0
    assert trainer.snapshot().state == RunState.STOPPED


def test_stop_while_paused_ends_the_thread(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=10_000)
    trainer.pause()                     # paused before it starts
    thread = _start(trainer)
    assert _wait(lambda: trainer.snapshot().state == RunState.PAUSED)
    trainer.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_live_settings_apply_between_batches(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=10_000)
    thread = _start(trainer)
    assert _wait(lambda: trainer.snapshot().epoch >= 1)
    trainer.set_lr(0.5)
    trainer.set_clip("2.5")
    trainer.set_epochs(trainer.snapshot().epoch + 2)
    with pytest.raises(ConfigError, match="lr must be greater than 0"):
        trainer.set_lr(-1)
    with pytest.raises(ConfigError, match="is not a number"):
        trainer.set_lr("abc")
    with pytest.raises(ConfigError, match="cannot change during a run"):
        trainer.set_live("num_hiddens", 10)
    thread.join(timeout=30)
    snap = trainer.snapshot()
    assert snap.state == RunState.FINISHED and snap.lr == 0.5 and snap.clip == 2.5
    changes = {e.name: e.new for e in trainer.events() if isinstance(e, SettingChanged)}
    assert changes["lr"] == 0.5 and changes["clip"] == 2.5


def test_keep_alive_serves_predictions_after_training(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=1)
    thread = _start(trainer, keep_alive=True)
    assert _wait(lambda: trainer.snapshot().state == RunState.FINISHED)
    assert trainer.request_prediction("the", 5).result(timeout=10).prefix == "the"
    with pytest.raises(ValueError, match="empty"):
        trainer.request_prediction("", 5).result(timeout=10)
    trainer.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_huge_learning_rate_diverges_pauses_and_recovers(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=3, lr=1000.0)
    thread = _start(trainer)
    assert _wait(lambda: trainer.snapshot().state == RunState.DIVERGED)
    snap = trainer.snapshot()
    assert "learning rate 1000" in snap.message and "e.g. 500" in snap.message
    assert all(p.isfinite().all() for p in trainer.net.parameters())
    # The last good parameters are back (here: the initial ones, epoch 0) and usable.
    assert snap.epoch == 0
    assert trainer.request_prediction("time", 5).result(timeout=10).text
    # Lower the learning rate and resume: training goes on to the end.
    trainer.set_lr(1.0)
    trainer.resume()
    thread.join(timeout=60)
    assert trainer.snapshot().state == RunState.FINISHED and trainer.snapshot().epoch == 3


def test_stop_after_divergence_keeps_the_diverged_state(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=3, lr=1000.0)
    trainer.add_listener(lambda e: trainer.stop() if type(e).__name__ == "Diverged" else None)
    snap = trainer.run()
    assert snap.state == RunState.DIVERGED


def test_errors_in_setup_end_in_error_state_not_an_exception(tmp_path):
    trainer = Trainer(TrainConfig(corpus=str(tmp_path / "missing.txt"), threads=1))
    snap = trainer.run()
    assert snap.state == RunState.ERROR and "does not exist" in snap.message
