"""The Trainer: it learns, it is reproducible, and other threads can steer it."""

import threading
import time

import pytest

from engine.config import ConfigError, TrainConfig
from engine.checkpoint import CheckpointError, load_checkpoint
from engine.corpus import Corpus
from engine.run_parts import Progress
from engine.trainer import (EpochDone, Finished, NotSetUp, RunState, SampleReady, SettingChanged,
                            Started, Trainer, resume_config)

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
    assert kinds == [Started, EpochDone, EpochDone, SampleReady, EpochDone, EpochDone, SampleReady, Finished]
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


def test_epochs_cannot_go_below_the_epochs_trained(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=10_000)
    thread = _start(trainer)
    assert _wait(lambda: trainer.snapshot().epoch >= 2)
    trainer.pause()
    assert _wait(lambda: trainer.snapshot().state == RunState.PAUSED)
    done = trainer.snapshot().epoch
    with pytest.raises(ConfigError, match=f"epochs must be at least {done}, the epochs already "
                                          "trained"):
        trainer.set_epochs(done - 1)
    # Lowered to the epochs trained: the epoch in progress is finished and is the last.
    trainer.set_epochs(done)
    trainer.resume()
    thread.join(timeout=30)
    snap = trainer.snapshot()
    assert snap.state == RunState.FINISHED
    assert snap.epochs == snap.epoch and snap.epoch in (done, done + 1)


def test_an_epoch_far_worse_than_guessing_counts_as_diverged():
    import math
    from engine.train import diverged
    uniform = math.log(28)  # the loss of a uniform guess over the book's 28 characters
    assert not diverged(uniform, 28) and not diverged(1.4 * uniform, 28)
    assert diverged(1.6 * uniform, 28)  # perplexity above 28 ** 1.5, about 148
    assert diverged(30.0, 28)  # perplexity 1e13: it was accepted before
    assert diverged(float("nan"), 28) and diverged(float("inf"), 28)


def test_keep_alive_serves_predictions_after_training(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=1)
    thread = _start(trainer, keep_alive=True)
    assert _wait(lambda: trainer.snapshot().state == RunState.FINISHED)
    assert trainer.request_prediction("the", 5).result(timeout=10).prefix == "the"
    # The book's corpus is lower case: a capital is read as its lower case, and said so.
    capital = trainer.request_prediction("The", 5).result(timeout=10)
    assert capital.prefix == "the" and not capital.unknown and "lower-cased" in capital.note
    with pytest.raises(ValueError, match="empty"):
        trainer.request_prediction("", 5).result(timeout=10)
    trainer.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.mark.parametrize("iterator", ["sequential", "random"])
def test_raising_epochs_after_the_end_trains_on_exactly(timemachine_corpus, iterator):
    """A finished run kept alive (as the app keeps it) trains on when its epochs are raised,
    and gives the numbers of one uninterrupted run."""
    whole = make(timemachine_corpus, epochs=5, iterator=iterator, seed=4).run()
    trainer = make(timemachine_corpus, epochs=3, iterator=iterator, seed=4)
    thread = _start(trainer, keep_alive=True)
    assert _wait(lambda: trainer.snapshot().state == RunState.FINISHED)
    assert trainer.snapshot().epoch == 3
    trainer.set_epochs(3)  # not more: it stays finished
    assert trainer.request_prediction("the", 5).result(timeout=10).prefix == "the"
    assert trainer.snapshot().state == RunState.FINISHED
    trainer.set_epochs(5)
    assert _wait(lambda: trainer.snapshot().epoch == 5
                 and trainer.snapshot().state == RunState.FINISHED)
    assert trainer.snapshot().history == whole.history
    finished = [e.epoch for e in trainer.events() if isinstance(e, Finished)]
    assert finished == [3, 5]
    trainer.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and trainer.snapshot().state == RunState.FINISHED


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


def test_before_set_up_there_are_no_parts_and_asking_for_one_says_so(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=1)
    assert trainer.info is None  # what the app polls for
    for read in (lambda: trainer.net, lambda: trainer.vocab, lambda: trainer.loader,
                 trainer.checkpoint, lambda: trainer.predict("time")):
        with pytest.raises(NotSetUp, match="not set up yet: setup"):
            read()
    info = trainer.setup()
    assert trainer.info is info and len(trainer.vocab) == info.vocab_size
    assert trainer.setup() is info and trainer.parts is trainer.parts  # built once


def test_a_set_up_that_fails_leaves_no_half_built_run():
    trainer = Trainer(TrainConfig(**SMALL), corpus=Corpus("one letter", "a" * 5000, "0" * 40))
    with pytest.raises(ConfigError, match="nothing to learn"):
        trainer.setup()
    assert trainer.info is None
    with pytest.raises(NotSetUp):
        trainer.vocab  # built before the error, but never handed over
    with pytest.raises(ConfigError, match="nothing to learn"):
        trainer.setup()  # tried again from the start, not half done


def test_the_progress_a_checkpoint_keeps_comes_back_whole(timemachine_corpus, tmp_path):
    first = make(timemachine_corpus, epochs=3, val_fraction=0.1)
    first.run()
    ckpt = load_checkpoint(first.save(tmp_path / "run.pt"))
    back = Progress.from_checkpoint(ckpt)
    kept = ("epoch", "history", "history_stride", "val_history", "samples", "elapsed",
            "perplexity", "val_perplexity")
    assert {k: getattr(back, k) for k in kept} == {k: getattr(first.progress, k) for k in kept}
    assert back.epoch == 3 and len(back.val_history) == 3 and back.samples
    assert back.loss is None and back.tokens_per_sec == 0.0  # a batch's, not kept
    # A resumed trainer stands there from the start: before set-up, epochs cannot go below it.
    resumed = Trainer(resume_config(ckpt, epochs=6), corpus=timemachine_corpus, resume=ckpt)
    assert resumed.progress == back
    with pytest.raises(ConfigError, match="epochs must be at least 3"):
        resumed.set_epochs(2)


def test_live_changes_replace_the_settings_in_force_not_the_config(timemachine_corpus):
    trainer = make(timemachine_corpus, epochs=2)
    started = trainer.in_force
    trainer.set_lr(0.5)
    trainer.set_live("sampling", "temperature 0.5")
    trainer.run()
    assert trainer.in_force.lr == 0.5 and trainer.in_force.sampling == "temperature 0.5"
    assert started.lr == trainer.config.lr == 1.0 and trainer.config.sampling == "greedy"
    assert trainer.in_force == trainer.config.replace(lr=0.5, sampling="temperature 0.5")
    assert trainer.checkpoint().live["lr"] == 0.5 and trainer.snapshot().lr == 0.5


@pytest.mark.parametrize("iterator", ["sequential", "random"])
def test_resume_continues_exactly(timemachine_corpus, tmp_path, iterator):
    """Resuming after epoch 3 and training to 6 gives the history of an uninterrupted run."""
    whole = make(timemachine_corpus, epochs=6, iterator=iterator, seed=3).run()
    first = make(timemachine_corpus, epochs=3, iterator=iterator, seed=3)
    first.run()
    path = first.save(tmp_path / "run.pt")
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 3 and ckpt.history == list(whole.history[:3])
    resumed = Trainer(resume_config(ckpt, epochs=6), corpus=timemachine_corpus, resume=ckpt)
    snap = resumed.run()
    assert snap.state == RunState.FINISHED
    assert snap.history == whole.history
    # The same samples at the same epochs (the first run also sampled at its last epoch, 3).
    resumed_samples = {(x.epoch, x.prefix): x.text for x in snap.samples}
    assert all(resumed_samples[(x.epoch, x.prefix)] == x.text for x in whole.samples)


def test_resume_refuses_changed_shapes_and_corpora(timemachine_corpus, tmp_path):
    from engine.corpus import load_pydoc
    first = make(timemachine_corpus, epochs=1)
    first.run()
    ckpt = load_checkpoint(first.save(tmp_path / "run.pt"))
    with pytest.raises(ConfigError, match="num_hiddens cannot change when resuming"):
        resume_config(ckpt, num_hiddens=128)
    assert resume_config(ckpt, epochs=9, lr=0.5).epochs == 9
    other = Trainer(resume_config(ckpt), corpus=load_pydoc(), resume=ckpt).run()
    assert other.state == RunState.ERROR and "another vocabulary" in other.message


def test_save_requested_from_another_thread(timemachine_corpus, tmp_path):
    trainer = make(timemachine_corpus, epochs=10_000)
    thread = _start(trainer)
    assert _wait(lambda: trainer.snapshot().epoch >= 2)
    path = trainer.request_save(tmp_path / "now.pt").result(timeout=10)
    trainer.stop()
    thread.join(timeout=5)
    ckpt = load_checkpoint(path)
    assert ckpt.epoch >= 2 and len(ckpt.history) == ckpt.epoch
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "missing.pt")
