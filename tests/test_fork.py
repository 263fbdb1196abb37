"""Fork: from epoch 0 with the same seed, or a branch from the current weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from textual.widgets import Input

from engine.config import ConfigError, TrainConfig
from engine.fork import branch_checkpoint
from engine.checkpoint import resume_config
from engine.events import RunState
from engine.trainer import Trainer
from tui.screens.fork import ForkScreen

from test_app import (SIZE, _keys_without_idle_wait, epochs_done,  # noqa: F401
                      make_app, notifications, pause, run_async, wait_for)

SMALL = TrainConfig(num_hiddens=32, max_tokens=2000, batch_size=8, num_steps=10, epochs=4,
                    sample_every=100, threads=1, impl="book")


def test_a_branch_carries_the_weights_and_history_on(timemachine_corpus):
    parent = Trainer(SMALL.replace(epochs=2), corpus=timemachine_corpus)
    done = parent.run()
    ckpt = parent.checkpoint()
    for bad, message in (({"num_hiddens": 48}, "num_hiddens cannot change in a branch"),
                         ({"val_fraction": 0.1}, "val_fraction cannot change in a branch"),
                         ({"epochs": 2}, "epochs must be above 2")):
        with pytest.raises(ConfigError, match=message):
            branch_checkpoint(ckpt, SMALL.replace(**bad))
    config = SMALL.replace(batch_size=16, lr=0.5, epochs=3)
    branch = branch_checkpoint(ckpt, config)
    assert resume_config(branch) == config
    child = Trainer(resume_config(branch), corpus=timemachine_corpus, resume=branch)
    child.setup()
    assert all(torch.equal(a, b) for a, b in zip(child.net.parameters(), parent.net.parameters()))
    snap = child.run()
    assert snap.state is RunState.FINISHED and snap.epoch == 3 and snap.lr == 0.5
    assert snap.history[:2] == done.history and len(snap.history) == 3
    assert dataclasses.replace(ckpt).config == parent.config.to_dict()  # the parent's unchanged


async def set_field(pilot, app, name: str, value: str) -> None:
    app.query_one(f"#hp-{name}", Input).focus()
    await pilot.press("ctrl+a", "ctrl+k", *value)
    await pilot.press("escape")


@run_async
async def test_fork_a_branch_from_the_current_weights(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app, 2)
        await pause(pilot, app)
        old = app.trainer
        await set_field(pilot, app, "batch_size", "16")
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ForkScreen), what="the fork dialog")
        text = str(app.screen.query_one("#fork-changes").render())
        assert "batch size: 8 → 16" in text
        assert "One run trains at a time" in str(app.screen.query_one("#fork-note").render())
        await pilot.press("w")
        await wait_for(pilot, lambda: app.trainer is not old and app.info is not None,
                       what="the branch")
        start = old.snapshot().epoch
        assert old.snapshot().state is RunState.STOPPED
        assert app.trainer.config.batch_size == 16
        await wait_for(pilot, lambda: app.trainer.snapshot().epoch > start, what="a new epoch")
        assert app.trainer.snapshot().history[:start] == old.snapshot().history[:start]
        assert any(f"trains from epoch {start}" in n for n in notifications(app))
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_fork_from_epoch_0_with_the_same_seed(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app, 1)
        old = app.trainer
        await set_field(pilot, app, "num_hiddens", "48")
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ForkScreen), what="the fork dialog")
        await pilot.press("0")
        await wait_for(pilot, lambda: app.trainer is not old and app.info is not None,
                       what="the fork")
        assert app.trainer.config.num_hiddens == 48 and app.trainer.config.seed == old.config.seed
        assert any("trains from epoch 0" in n for n in notifications(app))
        # A branch cannot change the hidden size: it says so, and nothing restarts.
        await epochs_done(pilot, app, 1)
        current = app.trainer
        await set_field(pilot, app, "num_hiddens", "64")
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ForkScreen), what="the fork dialog")
        await pilot.press("w")
        await wait_for(pilot, lambda: any("num_hiddens cannot change in a branch" in n
                                          for n in notifications(app)), what="the refusal")
        assert app.trainer is current and app.resume is None
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_a_branch_of_a_finished_run_says_to_raise_epochs_first(make_app):
    app = make_app(SMALL.replace(epochs=2))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.last_snapshot is not None
                       and app.last_snapshot.state is RunState.FINISHED, what="the end")
        current = app.trainer
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ForkScreen), what="the fork dialog")
        await pilot.press("w")
        await wait_for(pilot, lambda: any(
            "This run has trained 2 of its 2 epochs: raise epochs in the panel (e) first, or "
            "fork from epoch 0." in n for n in notifications(app)), what="the way on")
        assert app.trainer is current and app.resume is None
        await pilot.press("q")
    assert app.return_code == 0
