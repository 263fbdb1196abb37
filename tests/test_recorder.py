"""A run on disk: metrics as JSON Lines, samples, checkpoints every N epochs and at the end."""

from dataclasses import replace

from engine.checkpoint import load_checkpoint
from engine.config import TrainConfig
from engine.corpus import Corpus
from engine.recorder import RunRecorder
from engine.runlog import read_metrics
from engine.trainer import Trainer

SMALL = dict(num_hiddens=32, max_tokens=3000, batch_size=8, num_steps=10, threads=1,
             sample_every=2, impl="book")


def test_run_directory_holds_metrics_samples_and_checkpoint(timemachine_corpus, tmp_path):
    trainer = Trainer(TrainConfig(**SMALL, epochs=5), corpus=timemachine_corpus)
    recorder = RunRecorder(trainer, run_dir=tmp_path / "run", autosave_every=2)
    saved_at = []
    trainer.add_listener(lambda e: saved_at.append(load_checkpoint(recorder.checkpoint_path).epoch)
                         if type(e).__name__ == "EpochDone" and e.epoch == 2 else None)
    trainer.control.set("lr", 0.5)  # a live change, as from another thread, before the first batch
    trainer.run()
    recorder.close()
    records = read_metrics(tmp_path / "run")
    kinds = [r["type"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end"
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4, 5]
    assert all(r["lr"] == 0.5 and r["clip"] == 1.0 and r["grad_norm"] > 0 and r["wall_time"] > 0
               and r["tokens_per_sec"] > 0 and r["perplexity"] > 1 for r in epochs)
    assert any(r["type"] == "setting" and r["name"] == "lr" and r["new"] == 0.5 for r in records)
    assert saved_at == [2]  # the autosave after epoch 2 was already on disk
    assert load_checkpoint(recorder.checkpoint_path).epoch == 5
    samples = (tmp_path / "run" / "samples.txt").read_text().splitlines()
    assert samples[0].startswith("epoch    2  time traveller")
    assert len(samples) == 3 * 2  # epochs 2, 4 and the last, two prefixes each


def test_default_run_dir_under_xdg_data_home(timemachine_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    trainer = Trainer(TrainConfig(**SMALL, epochs=1), corpus=timemachine_corpus)
    recorder = RunRecorder(trainer)
    trainer.run()
    recorder.close()
    assert recorder.run_dir.parent == tmp_path / "rnn-tui" / "runs"
    assert recorder.run_dir.name.endswith("-timemachine-h32-sequential")
    assert (recorder.run_dir / "checkpoint.pt").is_file()


def test_the_run_is_named_after_the_corpus_it_really_uses(timemachine_corpus, tmp_path):
    """A corpus handed to the trainer (as the app does) names the run, not the config's name."""
    other = Corpus("pydoc", timemachine_corpus.text, timemachine_corpus.sha1)
    trainer = Trainer(TrainConfig(**SMALL, epochs=1, corpus="timemachine"), corpus=other)
    recorder = RunRecorder(trainer, runs_root=tmp_path)
    trainer.run()
    recorder.close()
    assert recorder.run_dir.name.endswith("-pydoc-h32-sequential")


def test_an_exception_mid_run_is_reported_and_the_last_good_epoch_saved(timemachine_corpus,
                                                                       tmp_path, monkeypatch):
    """As a CUDA out-of-memory or a vanished device would: the run ends in ERROR, the
    message is kept, and the checkpoint holds the last finished epoch."""
    from engine import run_parts
    trainer = Trainer(TrainConfig(**SMALL, epochs=50), corpus=timemachine_corpus)
    recorder = RunRecorder(trainer, run_dir=tmp_path / "run", autosave_every=1000)
    calls = {"n": 0}

    def failing(get_implementation):
        """The implementation the run asks for, with a train step that fails in epoch 4."""
        def get(*args, **kwargs):
            impl = get_implementation(*args, **kwargs)

            def failing_step(*step_args, **step_kwargs):
                calls["n"] += 1
                if calls["n"] > 3 * len(trainer.loader):
                    raise RuntimeError("CUDA out of memory (simulated)")
                return impl.train_step(*step_args, **step_kwargs)
            return replace(impl, train_step=failing_step)
        return get

    monkeypatch.setattr(run_parts, "get_implementation", failing(run_parts.get_implementation))
    snap = trainer.run()
    recorder.close()
    assert snap.state.value == "error" and "CUDA out of memory (simulated)" in snap.message
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt").epoch == 3
    assert read_metrics(tmp_path / "run")[-1]["type"] == "error"
