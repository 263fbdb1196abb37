"""Every sample carries its memorization figure: in the trainer's events, the run log and the
samples file."""

from __future__ import annotations

from engine.config import TrainConfig
from engine.recorder import RunRecorder
from engine.runlog import read_metrics
from engine.events import SampleReady
from engine.trainer import Trainer


def test_samples_say_how_much_of_them_is_in_the_training_text(timemachine_corpus, tmp_path):
    config = TrainConfig(num_hiddens=24, max_tokens=2000, batch_size=4, num_steps=10, epochs=2,
                         threads=1, impl="book", sample_every=1, predict_len=60)
    events = []
    trainer = Trainer(config, corpus=timemachine_corpus, on_event=events.append)
    recorder = RunRecorder(trainer, run_dir=tmp_path / "run")
    trainer.run()
    recorder.close()
    training = "".join(trainer.vocab.to_tokens(trainer.loader.corpus))
    samples = [s for e in events if isinstance(e, SampleReady) for s in e.samples]
    assert len(samples) == 2 * len(config.prefixes)
    for s in samples:
        windows = [s.text[i:i + 20] for i in range(len(s.text) - 19)]
        assert s.memorized == sum(w in training for w in windows) / len(windows)
    logged = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["type"] == "sample"]
    assert [r["memorized"] for r in logged] == [s.memorized for s in samples]
    lines = (tmp_path / "run" / "samples.txt").read_text().splitlines()
    assert all(line.endswith(f"[{s.memorized:.0%} seen]") for line, s in zip(lines, samples))
