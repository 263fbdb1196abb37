"""Held-out perplexity: the split, the evaluation against a direct computation, the trainer."""

import math
import random

import pytest
import torch

from engine.checkpoint import load_checkpoint, resume_config
from engine.config import ConfigError, TrainConfig
from engine.data import DataError
from engine.implementations import get_implementation
from engine.model import RNNModelScratch
from engine.recorder import RunRecorder
from engine.runlog import read_metrics
from engine.events import EpochDone, RunState
from engine.trainer import Trainer
from engine.runs import memorization
from engine.validation import eval_layout, evaluate_perplexity, holdout

SMALL = dict(num_hiddens=32, max_tokens=3000, batch_size=8, num_steps=10, threads=1,
             sample_every=100, impl="book")


def test_holdout_keeps_the_end():
    tokens = list(range(100))
    train, val = holdout(tokens, 0.2, num_steps=5)
    assert train == list(range(80)) and val == list(range(80, 100))
    assert holdout(tokens, 0.0, num_steps=5) == (tokens, [])
    with pytest.raises(DataError, match="too few for one validation sequence of 36"):
        holdout(tokens, 0.3, num_steps=35)


def direct_perplexity(params, tokens, rows, steps):
    """Row by row, one character at a time, with the book's equations written out."""
    W_xh, W_hh, b_h, W_hq, b_q = (p.detach() for p in params)
    total = 0.0
    for r in range(rows):
        row = tokens[r * steps: r * steps + steps + 1]
        H = torch.zeros(W_hh.shape[0], dtype=torch.float64)
        for x, y in zip(row[:-1], row[1:]):
            H = torch.tanh(W_xh[x].double() + H @ W_hh.double() + b_h.double())
            logits = H @ W_hq.double() + b_q.double()
            total -= float(torch.log_softmax(logits, 0)[y])
    return math.exp(total / (rows * steps))


@pytest.mark.parametrize("impl", ["book", "fast"])
@pytest.mark.parametrize("n,batch_size,num_steps,chunk", [(61, 4, 3, 2), (50, 8, 5, 512),
                                                            (12, 32, 35, 7)])
def test_evaluate_equals_a_direct_computation(impl, n, batch_size, num_steps, chunk):
    vocab, hidden = 6, 9
    g = torch.Generator().manual_seed(1)
    implementation = get_implementation(impl, torch.device("cpu"))
    net = implementation.make_model(vocab, hidden, "cpu", generator=g)
    with torch.no_grad():  # larger weights than the initial 0.01, so the state matters
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    tokens = [random.Random(n).randrange(vocab) for _ in range(n)]
    rows, steps = eval_layout(n, batch_size, num_steps)
    assert rows * steps <= n - 1 and rows <= batch_size
    before = [p.detach().clone() for p in net.parameters()]
    got = evaluate_perplexity(net, tokens, batch_size, num_steps, "cpu", chunk_steps=chunk)
    want = direct_perplexity(net.parameters(), tokens, rows, steps)
    assert got == pytest.approx(want, rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # nothing changed


def test_val_fraction_is_checked():
    assert TrainConfig(val_fraction=0.1).replace().val_fraction == 0.1
    for bad in (-0.1, 0.5, float("nan")):
        with pytest.raises(ConfigError, match="val_fraction must be at least 0 and below 0.5"):
            TrainConfig().replace(val_fraction=bad)
    with pytest.raises(ConfigError, match="holds out 10, too few for one validation sequence"):
        TrainConfig().replace(max_tokens=1000, val_fraction=0.01)


def test_validation_leaves_training_as_it_was(timemachine_corpus):
    """Holding out the end trains exactly as a run on the shorter text: evaluation neither
    draws random numbers nor touches the parameters."""
    n_val = int(SMALL["max_tokens"] * 0.2)
    held = Trainer(TrainConfig(**SMALL, epochs=3, val_fraction=0.2),
                   corpus=timemachine_corpus).run()
    plain = Trainer(TrainConfig(**{**SMALL, "max_tokens": SMALL["max_tokens"] - n_val}, epochs=3),
                    corpus=timemachine_corpus).run()
    assert held.history == plain.history
    assert plain.val_history == () and plain.val_perplexity is None
    assert len(held.val_history) == 3 and held.val_perplexity == held.val_history[-1]
    assert all(v > 1 for v in held.val_history)


def test_val_perplexity_is_the_models_on_the_held_out_part(timemachine_corpus, tmp_path):
    config = TrainConfig(**SMALL, epochs=2, val_fraction=0.1)
    trainer = Trainer(config, corpus=timemachine_corpus)
    recorder = RunRecorder(trainer, run_dir=tmp_path / "run")
    snap = trainer.run()
    recorder.close()
    assert trainer.info.val_tokens == 300 and trainer.info.num_tokens == 3000
    direct = evaluate_perplexity(trainer.net, trainer.parts.val_tokens, 8, 10, "cpu")
    assert snap.val_perplexity == direct
    epochs = [e for e in trainer.events() if isinstance(e, EpochDone)]
    assert [e.val_perplexity for e in epochs] == list(snap.val_history)
    records = read_metrics(tmp_path / "run")
    assert [r["val_perplexity"] for r in records if r["type"] == "epoch"] == list(snap.val_history)
    assert records[0]["config"]["val_fraction"] == 0.1 and records[0]["val_tokens"] == 300


def test_resume_keeps_validation(timemachine_corpus, tmp_path):
    config = TrainConfig(**SMALL, epochs=4, val_fraction=0.1)
    whole = Trainer(config, corpus=timemachine_corpus).run()
    first = Trainer(config.replace(epochs=2), corpus=timemachine_corpus)
    first.run()
    ckpt = load_checkpoint(first.save(tmp_path / "c.pt"))
    with pytest.raises(ConfigError, match="val_fraction cannot change"):
        resume_config(ckpt, val_fraction=0.2)
    snap = Trainer(resume_config(ckpt, epochs=4), corpus=timemachine_corpus, resume=ckpt).run()
    assert snap.state == RunState.FINISHED
    assert snap.history == whole.history and snap.val_history == whole.val_history


def test_memorization_says_when_the_gap_opens():
    assert memorization([10, 5, 4], [10, 6, 5]) is None  # both still fall
    train = [10, 5, 3, 2, 1.5, 1.3, 1.2]
    val = [10, 6, 5, 5.2, 5.5, 6, 7]
    message = memorization(train, val, patience=4)
    assert message.startswith("memorizing: validation perplexity has not improved for 4 epochs")
    assert "best 5 at epoch 3" in message and "fell to 1.2" in message
    twice = message.replace("4 epochs", "8 epochs").replace("epoch 3", "epoch 5")
    assert memorization(train, val, stride=2, patience=8) == twice
    ratio = memorization([10, 2], [10, 3.2], patience=100)
    assert ratio == "memorizing: validation perplexity 3.2 is 1.6x training's 2"
    assert memorization([], []) is None
