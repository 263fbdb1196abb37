"""The chapter's exercises as switches: each changes what it should, in both implementations."""

from __future__ import annotations

import math

import pytest
import torch

from engine.checkpoint import load_checkpoint, resume_config
from engine.config import ConfigError, TrainConfig
from engine.fast import fast_train_step
from engine.model import RNNModelScratch
from engine.optim import SGD, Adam, scheduled_lr
from engine.train import book_train_step
from engine.trainer import Trainer

SMALL = dict(num_hiddens=16, max_tokens=2000, batch_size=4, num_steps=8, threads=1,
             sample_every=1000, device="cpu")


def _batch(seed=0, vocab=7, batch=3, steps=5):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(vocab, (batch, steps), generator=g)
    Y = torch.randint(vocab, (batch, steps), generator=g)
    return X, Y


def _net(vocab=7, hidden=12, seed=0):
    return RNNModelScratch(vocab, hidden, "cpu", generator=torch.Generator().manual_seed(seed))


def _step_taken(step, clip, lr=1.0, optimizer=None):
    """The parameter change one step makes, and the gradient it saw."""
    net = _net()
    X, Y = _batch()
    before = [p.detach().clone() for p in net.params]
    ref = _net()
    y_hat, _ = ref(X, ref.begin_state(3))
    loss = torch.nn.functional.cross_entropy(y_hat, Y.T.reshape(-1))
    grads = torch.autograd.grad(loss, ref.params)
    step(net, X, Y, net.begin_state(3), lr, clip, optimizer)
    return [b - p.detach() for b, p in zip(before, net.params)], grads


@pytest.mark.parametrize("step", [book_train_step, fast_train_step])
def test_clip_0_leaves_gradients_untouched(step):
    moved, grads = _step_taken(step, clip=0.0)
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    assert norm > 1e-3  # a gradient that clip 1e-3 would have scaled
    for m, g in zip(moved, grads):
        torch.testing.assert_close(m, g, rtol=1e-5, atol=1e-7)  # lr 1: the step is the gradient
    clipped, _ = _step_taken(step, clip=1e-3)
    total = math.sqrt(sum(float((m ** 2).sum()) for m in clipped))
    assert total == pytest.approx(1e-3, rel=1e-4)


def test_clip_accepts_0_and_refuses_negative():
    assert TrainConfig().replace(clip=0).clip == 0
    with pytest.raises(ConfigError, match="clip must be 0 or more, got -1.0"):
        TrainConfig().replace(clip=-1.0)


def test_adam_book_and_fast_agree_over_steps():
    nets = {name: _net() for name in ("book", "fast")}
    opts = {name: Adam(net.params) for name, net in nets.items()}
    for i in range(4):
        X, Y = _batch(seed=i)
        book_train_step(nets["book"], X, Y, nets["book"].begin_state(3), 0.01, 1.0, opts["book"])
        fast_train_step(nets["fast"], X, Y, nets["fast"].begin_state(3), 0.01, 1.0, opts["fast"])
    for a, b in zip(nets["book"].params, nets["fast"].params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert float(opts["book"].t) == float(opts["fast"].t) == 5.0


def test_adam_is_not_sgd():
    sgd_moved, _ = _step_taken(fast_train_step, 1.0, lr=0.01, optimizer=None)
    net = _net()
    adam_moved, _ = _step_taken(fast_train_step, 1.0, lr=0.01, optimizer=Adam(net.params))
    assert not torch.allclose(sgd_moved[1], adam_moved[1])
    # Adam's first step moves every weight by about lr (bias-corrected m / sqrt(v) ~ sign)
    assert float(adam_moved[1].abs().max()) == pytest.approx(0.01, rel=1e-2)


def test_schedules():
    assert scheduled_lr(1.0, "none", 50, 100) == 1.0
    assert scheduled_lr(1.0, "cosine", 0, 100) == 1.0
    assert scheduled_lr(1.0, "cosine", 50, 100) == pytest.approx(0.5)
    assert scheduled_lr(1.0, "cosine", 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert [scheduled_lr(1.0, "step", e, 100) for e in (0, 24, 25, 50, 75, 99)] == \
        [1.0, 1.0, 0.5, 0.25, 0.125, 0.125]


def test_a_schedule_sets_each_epochs_rate(timemachine_corpus):
    lrs = []
    trainer = Trainer(TrainConfig(**SMALL, epochs=4, lr_schedule="cosine"),
                      corpus=timemachine_corpus)
    trainer.add_listener(lambda e: lrs.append(e.lr) if type(e).__name__ == "EpochDone" else None)
    trainer.run()
    assert lrs == pytest.approx([scheduled_lr(1.0, "cosine", e, 4) for e in range(4)])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_run_with_each_optimizer_resumes_exactly(timemachine_corpus, tmp_path, optimizer):
    config = TrainConfig(**SMALL, epochs=4, optimizer=optimizer,
                         lr=0.01 if optimizer == "adam" else 1.0)
    straight = Trainer(config, corpus=timemachine_corpus).run().history
    first = Trainer(config.replace(epochs=2), corpus=timemachine_corpus)
    first.run()
    path = first.save(tmp_path / "c.pt")
    ckpt = load_checkpoint(path)
    assert ckpt.optimizer["name"] == optimizer
    resumed = Trainer(resume_config(ckpt, epochs=4), corpus=timemachine_corpus, resume=ckpt)
    assert resumed.run().history == straight
    assert isinstance(resumed.optimizer, Adam if optimizer == "adam" else SGD)


class GradientRecorder:
    """An optimizer that only records the gradients it is given."""
    grads: list[torch.Tensor] = []

    def book_step(self, params, lr):
        self.grads = [p.grad.clone() for p in params]
        for p in params:
            p.grad.zero_()

    def fast_step(self, params, grads, lr, scale, apply):
        self.grads = [g.clone() for g in grads]


@pytest.mark.parametrize("step", [book_train_step, fast_train_step])
def test_no_detach_carries_the_graph_across_batches(step):
    """Batch 2's gradient through the carried graph is that of its loss on the unrolled
    two-batch sequence (the recorder never moves the parameters)."""
    from engine.train import CarriedGraph

    X, Y = _batch(seed=3, steps=10)
    X1, X2, Y2 = X[:, :5], X[:, 5:], Y[:, 5:]
    net = _net()
    carried, recorder = CarriedGraph(net), GradientRecorder()
    _, _, state = step(carried, X1, Y[:, :5], net.begin_state(3), 1.0, 0.0, recorder,
                       retain_graph=True)
    step(carried, X2, Y2, state, 1.0, 0.0, recorder, retain_graph=True)
    ref = _net()
    y_hat, _ = ref(X, ref.begin_state(3))
    loss = torch.nn.functional.cross_entropy(y_hat[15:], Y2.T.reshape(-1))  # batch 2's loss
    want = torch.autograd.grad(loss, ref.params)
    for got, w in zip(recorder.grads, want):
        torch.testing.assert_close(got, w, rtol=1e-5, atol=1e-7)
    # ... and that differs from the detached gradient (which cannot see the earlier steps)
    ref2 = _net()
    y2, _ = ref2(X2, tuple(s.detach() for s in state))
    cut = torch.autograd.grad(torch.nn.functional.cross_entropy(y2, Y2.T.reshape(-1)), ref2.params)
    assert not torch.allclose(cut[1], want[1])


def test_no_detach_trains_otherwise_and_says_so(timemachine_corpus):
    notices = []
    config = TrainConfig(**SMALL, epochs=2, detach="no")
    trainer = Trainer(config, corpus=timemachine_corpus)
    trainer.add_listener(lambda e: notices.append(e.message) if type(e).__name__ == "Notice"
                         else None)
    carried = trainer.run().history
    assert any("backpropagates through up to 15 batches" in n for n in notices)
    detached = Trainer(config.replace(detach="yes"), corpus=timemachine_corpus).run().history
    assert carried[0] != detached[0] and all(math.isfinite(p) for p in carried)


def test_the_settings_name_every_registered_cell():
    from engine import config
    from engine.cells import CELLS
    from engine.model import INPUTS
    assert config.CELLS == tuple(CELLS) and config.INPUTS == INPUTS


@pytest.mark.parametrize("settings", [
    dict(cell="gru"), dict(cell="lstm"), dict(cell="lstm", num_layers=2),
    dict(input="embedding", embed_size=8), dict(activation="relu", lr=0.1),
])
def test_every_cell_and_switch_trains_saves_resumes_exactly_and_generates(
        timemachine_corpus, tmp_path, settings):
    from engine.checkpoint import model_from_checkpoint
    from engine.generate import predict
    from engine.model import param_names
    config = TrainConfig(**SMALL, epochs=3, **settings)
    straight = Trainer(config, corpus=timemachine_corpus).run().history
    first = Trainer(config.replace(epochs=2), corpus=timemachine_corpus)
    first.run()
    ckpt = load_checkpoint(first.save(tmp_path / "c.pt"))
    assert tuple(ckpt.params) == param_names(first.spec)
    resumed = Trainer(resume_config(ckpt, epochs=3), corpus=timemachine_corpus, resume=ckpt)
    assert resumed.run().history == straight
    net, vocab = model_from_checkpoint(ckpt)
    assert len(predict("the time", 20, net, vocab, "cpu").text) == 20


def test_a_relu_gru_is_refused_with_a_message():
    with pytest.raises(ConfigError, match="activation relu is for the rnn cell; the gru cell"):
        TrainConfig(cell="gru").replace(activation="relu")
