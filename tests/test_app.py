"""The app, driven by Textual's pilot with the real trainer on a tiny, fast configuration."""

from __future__ import annotations

import asyncio
import functools
import re
import threading
import time
from concurrent.futures import Future

import pytest
from textual import events
from textual.widgets import DataTable, Input, Sparkline, Static

from engine.config import TrainConfig
from engine.corpus import Corpus
from engine.trainer import RunState, Trainer
from tui.app import RnnTuiApp
from tui.bindings import KEYS, parse_keymap
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.widgets.hyperparam_form import HyperparamForm
from tui.widgets.prompt_panel import PromptPanel
from tui.widgets.status_bar import StatusBar

# 2,000 tokens in batches of 8 x 10: 24 batches an epoch, a few milliseconds each.
SMALL = TrainConfig(num_hiddens=32, max_tokens=2000, batch_size=8, num_steps=10, epochs=10_000,
                    sample_every=2, threads=1)
SIZE = (100, 32)


def run_async(test):
    """Run an async test in its own event loop (the project has no pytest async plugin)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return run


async def wait_for(pilot, condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def state(app: RnnTuiApp) -> RunState:
    """The trainer's state; READY while the training thread is still building it."""
    return app.trainer.snapshot().state if app.trainer is not None else RunState.READY


async def epochs_done(pilot, app: RnnTuiApp, epochs: int = 1) -> None:
    await wait_for(pilot, lambda: app.last_snapshot and app.last_snapshot.epoch >= epochs,
                   what=f"{epochs} epoch(s) shown")


async def pause(pilot, app: RnnTuiApp) -> None:
    """Space, as a person would press it, then wait until the trainer has paused."""
    await pilot.press("space")
    await wait_for(pilot, lambda: state(app) is RunState.PAUSED, what="paused")


def text_of(app: RnnTuiApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def notifications(app: RnnTuiApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


@pytest.fixture(autouse=True)
def _keys_without_idle_wait(monkeypatch):
    """Pilot waits, after every key, for the process to go idle (CPU time to stop advancing),
    up to a second; a training thread never lets it. The pilot still waits for every message
    to be processed, which is what the tests rely on."""
    async def no_idle_wait(*args, **kwargs) -> None:
        for _ in range(20):  # let a key hop from the app to the focused widget
            await asyncio.sleep(0)
        await asyncio.sleep(0.005)
    monkeypatch.setattr("textual.app.wait_for_idle", no_idle_wait)
    monkeypatch.setattr("textual.pilot.wait_for_idle", no_idle_wait)


@pytest.fixture
def make_app(timemachine_corpus):
    def make(config: TrainConfig = SMALL, corpus: Corpus | None = None) -> RnnTuiApp:
        return RnnTuiApp(config, corpus or timemachine_corpus)
    return make


@run_async
async def test_training_starts_and_the_sparkline_grows(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        sparkline = app.query_one("#sparkline", Sparkline)
        await wait_for(pilot, lambda: len(sparkline.data or []) >= 2, what="two epochs")
        first = len(sparkline.data)
        await wait_for(pilot, lambda: len(sparkline.data) >= first + 3, what="more epochs")
        assert app.query_one(StatusBar).state is RunState.TRAINING
        assert "training" in text_of(app, "#status-state")
        await pilot.pause(0.3)  # the numbers redraw at most 5 times a second
        stats = text_of(app, "#stats")
        shown = re.search(r"epoch (\d+)/(\d+)", stats)
        assert shown and 1 <= int(shown.group(1)) <= app.last_snapshot.epoch
        assert int(shown.group(2)) == SMALL.epochs
        assert "tokens/s" in stats and "grad norm" in stats and "perplexity" in stats
        assert app.info is not None and app.info.vocab_size == 28
        assert "vocab 28" in text_of(app, "#status-run")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_space_pauses_and_resumes(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        await pause(pilot, app)
        await wait_for(pilot, lambda: app.query_one(StatusBar).state is RunState.PAUSED)
        paused_at = app.trainer.snapshot().epoch
        await pilot.pause(0.6)
        assert app.trainer.snapshot().epoch == paused_at
        assert "paused" in text_of(app, "#status-state")
        await pilot.press("space")
        await wait_for(pilot, lambda: app.trainer.snapshot().epoch > paused_at + 1,
                       what="epochs after resume")
        assert state(app) is RunState.TRAINING
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_n_trains_one_batch_while_paused(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        await pause(pilot, app)

        def batches():
            s = app.trainer.snapshot()
            return s.epoch * s.batches_per_epoch + s.batch

        # The trainer publishes batch numbers at most every 0.1 s and not on pausing, so the
        # count shown can lag; a step taken 0.1 s after the last publication publishes it.
        await pilot.pause(0.3)
        await pilot.press("n")
        await pilot.pause(0.3)
        before = batches()
        await pilot.press("n")
        await wait_for(pilot, lambda: batches() == before + 1, what="one batch")
        await pilot.pause(0.4)
        assert batches() == before + 1 and state(app) is RunState.PAUSED
        snap = app.trainer.snapshot()  # the stats say where the next step goes
        where = f"batch {snap.batch}/{snap.batches_per_epoch} of epoch {snap.epoch + 1}"
        await wait_for(pilot, lambda: where in text_of(app, "#stats"), what=where)
        await pilot.press("q")


@run_async
async def test_a_live_learning_rate_reaches_the_trainer(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        await pilot.press("e")
        assert app.focused is app.query_one("#hp-lr", Input)
        await pilot.press(*"0.5", "enter")  # the old value is selected on focus
        await wait_for(pilot, lambda: app.trainer.snapshot().lr == 0.5, what="lr 0.5 applied")
        await wait_for(pilot, lambda: any("learning rate: 1 → 0.5" in n
                                          for n in notifications(app)), what="notification")
        assert app.query_one(HyperparamForm).live["lr"] == 0.5
        await pilot.press("escape")
        assert app.focused is None
        assert app.query_one("#hp-lr", Input).value == "0.5"
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.parametrize("typed, message", [
    ("-1", "learning rate must be greater than 0, got -1.0"),
    ("abc", "learning rate: 'abc' is not a number"),
])
@run_async
async def test_an_invalid_field_is_refused_with_a_message(make_app, typed, message):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        await pilot.press("e", *typed)
        form = app.query_one(HyperparamForm)
        assert form.error("lr") == message  # as it is typed, before enter
        assert text_of(app, "#hp-lr-error") == message
        assert app.query_one("#hp-lr-row").has_class("-invalid")
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.trainer.snapshot().lr == SMALL.lr
        assert form.live["lr"] == SMALL.lr
        # escape puts the value in force back
        await pilot.press("escape")
        assert app.query_one("#hp-lr", Input).value == "1"
        assert form.error("lr") == ""
        await pilot.press("q")


@run_async
async def test_restart_field_validates_as_typed(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = app.query_one(HyperparamForm)
        app.query_one("#hp-num_hiddens", Input).focus()
        await pilot.press("ctrl+a", "ctrl+k", "0")
        assert form.error("num_hiddens") == "hidden size must be a positive integer, got 0"
        app.query_one("#hp-corpus", Input).focus()
        await pilot.press(*str(tmp_path / "missing.txt"))
        assert form.error("corpus").startswith("corpus: no file")
        await pilot.press("escape", "r")  # r refuses to restart with invalid settings
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("Cannot restart" in n for n in notifications(app))
        await pilot.press("q")


@run_async
async def test_typing_a_prefix_shows_a_continuation(make_app):
    app = make_app(SMALL.replace(lr=2.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        prompt = app.query_one(PromptPanel)
        assert app.focused is app.query_one("#prompt-input", Input)
        await pilot.press(*"time", "space")
        assert prompt.prefix == "time "  # space typed into the prompt, not a pause
        await wait_for(pilot, lambda: prompt.prediction is not None
                       and prompt.prediction.prefix == "time ", what="a prediction")
        p = prompt.prediction
        assert len(p.text) == 50 and not p.unknown
        assert len(p.top) == 5 and abs(sum(q for _, q in p.top)) <= 1.0 + 1e-6
        assert text_of(app, "#prompt-output") == "time " + p.text
        assert state(app) is RunState.TRAINING
        # the length control changes the next request
        app.query_one("#prompt-length", Input).value = "7"
        await wait_for(pilot, lambda: len(prompt.prediction.text) == 7, what="7 characters")
        # the engine's rule and words for the sampling
        app.query_one("#prompt-sampling", Input).value = "temperature -1"
        await pilot.pause(0.05)
        assert prompt.error == "temperature must be between 0 (greedy) and 100, got -1"
        app.query_one("#prompt-sampling", Input).value = "greedy"
        await pilot.pause(0.05)
        assert prompt.error == ""
        await pilot.press("q")  # typed into the prompt: the app goes on
        assert app.is_running and prompt.prefix == "time q"
        await pilot.press("escape", "q")
    assert app.return_code == 0


@run_async
async def test_a_long_prefix_shows_its_end_and_the_continuation(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        await pilot.press("g")
        prompt = app.query_one(PromptPanel)
        ask = app.trainer.request_prediction
        app.trainer.request_prediction = lambda *args, **kwargs: Future()  # no answer yet
        long = "x" * 2990 + " the time traveller"
        app.query_one("#prompt-input", Input).value = long  # as a paste puts it
        await pilot.pause(0.3)
        shown = text_of(app, "#prompt-output")  # before the answer: the prefix, not the hint
        assert prompt.prediction is None
        assert shown.startswith("…") and shown.endswith("the time traveller…")
        app.trainer.request_prediction = ask
        await pilot.press("enter")  # asks again
        await wait_for(pilot, lambda: prompt.prediction is not None, what="an answer")
        await pilot.pause(0.1)
        p = prompt.prediction
        shown = text_of(app, "#prompt-output")
        assert shown.startswith("…") and shown.endswith("the time traveller" + p.text)
        width = app.query_one("#prompt-output").content_size.width
        assert len(shown) <= 1 + 2 * width + len(p.text)  # two lines of prefix at most
        assert f"only the last {len(p.prefix):,} characters were read" in text_of(
            app, "#prompt-unknown")
        await pilot.press("escape", "q")
    assert app.return_code == 0


@run_async
async def test_the_prompt_answers_for_the_model_as_it_is_now(make_app):
    """The answer follows the model: after a step while paused, and at the end of a run."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        await pause(pilot, app)
        await pilot.press("g", *"time")
        prompt = app.query_one(PromptPanel)
        await wait_for(pilot, lambda: prompt.prediction is not None
                       and prompt.prediction.prefix == "time", what="an answer")
        await pilot.pause(0.3)
        before = prompt.prediction
        await pilot.press("escape", "n")  # one batch: new weights, a new answer
        await wait_for(pilot, lambda: prompt.prediction is not before, what="a new answer")
        assert prompt.prediction.top != before.top
        last = app.trainer.snapshot().epoch + 1
        app.trainer.set_epochs(last)
        await pilot.press("space")
        await wait_for(pilot, lambda: state(app) is RunState.FINISHED, what="finished")
        await wait_for(pilot, lambda: prompt.epoch == last, what="the answer of the last epoch")
        assert f"epoch {last}" in str(prompt.border_subtitle)
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_keys_that_arrive_together_follow_g_into_the_prompt(make_app):
    """A terminal delivers a fast typist's (or a paste's) keys in one read: every key after
    g must reach the prompt, not the app's bindings (e, space, r would edit, pause, restart)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) is RunState.TRAINING, what="training")
        for key, char in [("g", "g"), *[(c if c != " " else "space", c) for c in "time traveller"]]:
            app.post_message(events.Key(key, char))
        await wait_for(pilot, lambda: app.query_one(PromptPanel).prefix == "time traveller",
                       what="the prefix typed in one burst")
        assert app.focused is app.query_one("#prompt-input", Input)
        assert state(app) is RunState.TRAINING and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape", "q")
    assert app.return_code == 0


@run_async
async def test_editing_keys_in_a_burst_apply_in_order(make_app):
    """Keys typed into a field in one read apply in the order typed: home and ctrl+k (bound
    keys) before the digits that follow them, then enter. (Textual runs a widget's bindings
    only after the key has bubbled up to the app, while it inserts characters at once.)"""
    app = make_app(SMALL.replace(epochs=3))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) is RunState.FINISHED, what="finished")
        await pilot.press("e", "tab", "tab", "tab")
        field = app.query_one("#hp-epochs", Input)
        assert app.focused is field
        for key, char in [("ctrl+a", None), ("ctrl+k", None), ("5", "5"), ("backspace", None),
                          ("6", "6"), ("left", None), ("1", "1"), ("enter", None)]:
            app.post_message(events.Key(key, char))
        await wait_for(pilot, lambda: app.trainer.snapshot().epochs == 16, what="16 epochs")
        assert field.value == "16"
        await pilot.press("escape", "q")
    assert app.return_code == 0


@run_async
async def test_raising_epochs_after_the_end_trains_on(make_app):
    app = make_app(SMALL.replace(epochs=2))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) is RunState.FINISHED, what="finished")
        await pilot.pause(0.3)
        assert "e: +epochs" in str(app.query_one("#training").border_subtitle)
        await pilot.press("space")  # says how to go on
        assert any("raise epochs (e) to train on" in n for n in notifications(app))
        await pilot.press("h")  # the learning rate of the epochs to come
        await wait_for(pilot, lambda: app.trainer.snapshot().lr == SMALL.lr / 2, what="lr halved")
        await pilot.press("e", "tab", "tab", "tab", *"4", "enter")
        await wait_for(pilot, lambda: app.last_snapshot.epoch == 4
                       and state(app) is RunState.FINISHED, what="4 epochs, finished again")
        assert any("Training goes on from epoch 2 to 4" in n for n in notifications(app))
        assert len(app.trainer.snapshot().history) == 4
        await pilot.press("escape", "q")
    assert app.return_code == 0


@run_async
async def test_unknown_characters_are_marked_and_reported(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"Tim3")
        prompt = app.query_one(PromptPanel)
        # The book's corpus is lower case: the prefix is read so (and says so), as by
        # `rnn-tui generate`; the digit stays unknown.
        await wait_for(pilot, lambda: prompt.prediction is not None
                       and prompt.prediction.prefix == "tim3", what="a prediction")
        assert prompt.prediction.unknown == ((3, "3"),)
        report = app.query_one("#prompt-unknown", Static)
        assert report.display
        assert str(report.render()) == ("⚠ 1 unknown character, read as <unk>: '3' at 4 · "
                                        "the prefix was lower-cased, as the model's corpus was")
        # the prefix is shown as the model read it, the unknown character marked
        output = app.query_one("#prompt-output", Static).render()
        assert str(output).startswith("tim3")
        marked = {span.start for span in output.spans if "reverse" in str(span.style)}
        assert marked == {3}
        assert app.query_one("#prompt-input", Input).value == "Tim3"  # what was typed stays
        await pilot.press("escape", "q")


@run_async
async def test_a_raw_corpus_keeps_capitals(make_app):
    app = make_app(SMALL.replace(preprocess="raw"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"Th")
        prompt = app.query_one(PromptPanel)
        await wait_for(pilot, lambda: prompt.prediction is not None
                       and prompt.prediction.prefix == "Th", what="a prediction")
        assert prompt.prediction.unknown == () and prompt.prediction.note == ""
        assert not app.query_one("#prompt-unknown", Static).display
        await pilot.press("escape", "q")


@run_async
async def test_restart_with_a_new_hidden_size_rebuilds_the_model(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        old_trainer, old_ended = app.trainer, app.run_ended
        app.query_one("#hp-num_hiddens", Input).focus()
        await pilot.press("ctrl+a", "ctrl+k", *"48")
        assert app.query_one("#hp-num_hiddens-row").has_class("-changed")
        await pilot.press("escape")  # leaves the field; the draft stays
        assert app.query_one("#hp-num_hiddens", Input).value == "48"
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        assert "hidden size: 32 → 48" in str(app.screen.query_one("#confirm-details").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: app.trainer is not old_trainer and app.info is not None,
                       what="the new run")
        assert old_ended.is_set() and old_trainer.snapshot().state is RunState.STOPPED
        v = app.info.vocab_size
        assert app.trainer.config.num_hiddens == 48 and app.config.num_hiddens == 48
        assert app.info.num_params == 48 * 48 + 2 * 48 * v + 48 + v
        await wait_for(pilot, lambda: app.trainer.snapshot().epoch >= 1, what="new epochs")
        assert not app.query_one("#hp-num_hiddens-row").has_class("-changed")
        await pilot.press("q")
    assert app.return_code == 0 and app.run_ended.is_set()


@run_async
async def test_restart_refuses_an_invalid_live_field(make_app):
    """A learning rate typed wrong and left (tab) is not silently replaced by the one in force."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        trainer = app.trainer
        await pilot.press("e", "0", "tab")
        assert app.query_one("#hp-lr", Input).value == "0"
        await pilot.press("escape", "r")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen) and app.trainer is trainer
        assert any("Cannot restart" in n and "learning rate must be greater than 0" in n
                   and "escape puts back 1" in n for n in notifications(app))
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_restart_can_be_cancelled(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        trainer = app.trainer
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.trainer is trainer and state(app) is RunState.TRAINING
        await pilot.press("q")


@run_async
async def test_q_exits_with_0_and_the_worker_thread_ends(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        worker = app.train_worker
        assert worker.name == "train" and worker.group == "train" and worker.is_running
        await pilot.press("q")
    assert app.return_code == 0
    assert app.run_ended.is_set()  # Trainer.run returned, not just the worker cancelled
    assert app.trainer.snapshot().state is RunState.STOPPED


@pytest.mark.parametrize("field", ["#prompt-input", "#hp-lr"])
@run_async
async def test_ctrl_c_quits_from_a_field_too(make_app, field):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        await pilot.press("g" if field == "#prompt-input" else "e")
        assert app.focused is app.query_one(field, Input)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.is_running, what="the app to quit")
    assert app.return_code == 0 and app.run_ended.is_set()


@run_async
async def test_escape_leaves_an_input_and_the_keys_work_again(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        await pilot.press("g", "x", "p", "space")
        assert app.query_one(PromptPanel).prefix == "xp "
        assert not app.show_plot and state(app) is not RunState.PAUSED
        await pilot.press("escape")
        assert app.focused is None
        await pilot.press("p")
        assert app.plot_maximized and app.query_one("#plot").display
        await pilot.press("p")
        assert not app.plot_maximized
        await pause(pilot, app)
        await pilot.press("q")


@run_async
async def test_help_lists_every_key(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            assert isinstance(app.screen, HelpScreen)
            shown = [str(w.render()) for w in app.screen.query(".help-key, .help-text")]
            for spec in KEYS:
                assert spec.help in shown
            for key in ("space", "n", "r", "g", "esc", "e", "p", "? or f1", "s", "o", "q", "^c"):
                assert key in shown
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")


@run_async
async def test_the_command_palette_runs_the_actions(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Pause")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: state(app) is RunState.PAUSED, what="paused from the palette")
        await pilot.press("q")


@run_async
async def test_keys_can_be_remapped_by_id(make_app):
    assert parse_keymap("pause=x; quit=ctrl+q") == {"pause": "x", "quit": "ctrl+q"}
    with pytest.raises(ValueError, match="unknown key id 'nope'"):
        parse_keymap("nope=x")
    app = make_app()
    app.set_keymap({"pause": "x"})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        await pilot.press("x")
        await wait_for(pilot, lambda: state(app) is RunState.PAUSED)
        await pilot.press("q")


@run_async
async def test_a_diverged_run_is_shown_and_resumes_after_a_lower_lr(make_app):
    app = make_app(SMALL.replace(lr=1e6, clip=1e6))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) is RunState.DIVERGED, what="divergence")
        await wait_for(pilot, lambda: any(n.startswith("Training diverged") for n in
                                          notifications(app)), what="notification")
        await wait_for(pilot, lambda: "diverged" in text_of(app, "#status-state"))
        assert "training diverged" in text_of(app, "#training-message")
        # still usable: the prompt is answered by the restored parameters
        await pilot.press("g", *"time")
        prompt = app.query_one(PromptPanel)
        await wait_for(pilot, lambda: prompt.prediction is not None, what="a prediction")
        await pilot.press("escape", "e", *"0.5", "enter", "escape", "space")
        await wait_for(pilot, lambda: state(app) is RunState.TRAINING and
                       app.trainer.snapshot().lr == 0.5, what="resumed")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_an_error_in_the_worker_is_shown_and_the_app_stays_usable(make_app, tmp_path):
    app = make_app(SMALL.replace(corpus=str(tmp_path / "gone.txt")), corpus=None)
    app.corpus = None
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) is RunState.ERROR, what="the error")
        await wait_for(pilot, lambda: any(n.startswith("Training stopped with an error")
                                          for n in notifications(app)))
        assert "does not exist" in text_of(app, "#training-message")
        await wait_for(pilot, lambda: "the run could not start" in text_of(app, "#status-run"),
                       what="the header")
        assert "loading" not in text_of(app, "#status-run")
        await pilot.press("g", "a")
        prompt = app.query_one(PromptPanel)
        await wait_for(pilot, lambda: prompt.error != "", what="the prompt's answer")
        assert prompt.error.startswith("no model to ask")
        # fix the corpus and restart
        app.query_one("#hp-corpus", Input).focus()
        await pilot.press("ctrl+a", "ctrl+k", *"pydoc", "escape", "r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.info is not None and app.info.corpus == "pydoc",
                       what="a run on pydoc")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_a_corpus_notice_stays_in_the_status_bar(make_app, timemachine_corpus):
    corpus = Corpus("pydoc", timemachine_corpus.text, timemachine_corpus.sha1,
                    notice="Something about this corpus that the user should know.")
    app = make_app(corpus=corpus)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "⚠ Something about this corpus that the user should know."
                       in text_of(app, "#status-notes"), what="the notice")
        await epochs_done(pilot, app)
        assert not notifications(app)  # not a toast over the panels
        await pilot.press("q")


@run_async
async def test_ui_handlers_never_wait_for_the_trainer(make_app, monkeypatch):
    """The prompt's question is answered on the trainer's thread; the UI goes on meanwhile.

    The trainer is held inside its answer until the test lets it go: keys and timers must
    keep working all that time, and the answer must arrive once it is free. (An order of
    events, not a time limit: on a loaded machine any limit would be a guess.)"""
    gate, busy = threading.Event(), threading.Event()
    real_predict = Trainer.predict

    def held_predict(self, prefix, *args, **kwargs):
        if prefix.startswith("the"):  # the prompt's; the trainer's own samples go on
            busy.set()
            gate.wait(timeout=60)
        return real_predict(self, prefix, *args, **kwargs)

    monkeypatch.setattr(Trainer, "predict", held_predict)
    app = make_app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.info is not None)
            await pause(pilot, app)
            await pilot.press("g")
            # As a paste: typed key by key, a loaded machine may ask for "th" first.
            app.query_one("#prompt-input", Input).value = "the"
            prompt = app.query_one(PromptPanel)
            await wait_for(pilot, busy.is_set, what="the trainer busy with the question")
            await pilot.press(*" time")
            assert app.query_one("#prompt-input", Input).value == "the time"
            ticks = []
            timer = app.set_interval(0.01, lambda: ticks.append(1))
            await wait_for(pilot, lambda: len(ticks) >= 5, what="timer ticks, the trainer busy")
            timer.stop()
            assert prompt.prediction is None  # the trainer has answered nothing yet
            gate.set()
            await wait_for(pilot, lambda: prompt.prediction is not None
                           and prompt.prediction.prefix == "the time", what="the answer")
            await pilot.press("escape", "q")
    finally:
        gate.set()  # never leave the training thread waiting


@run_async
async def test_a_recorded_run_is_saved_on_quit_and_resumes(make_app, tmp_path, timemachine_corpus):
    from engine.checkpoint import load_checkpoint
    from engine.trainer import resume_config

    run_dir = tmp_path / "run"
    app = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(run_dir),
                    autosave_every=1000)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.last_snapshot and app.last_snapshot.epoch >= 3)
        await wait_for(pilot, lambda: f"recording to {run_dir}" in text_of(app, "#status-notes"))
        await pilot.press("q")  # saving works, so nothing to ask
    assert app.return_code == 0
    assert (run_dir / "metrics.jsonl").is_file()
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt.epoch >= 3

    resumed = RnnTuiApp(resume_config(ckpt), timemachine_corpus, resume=ckpt)
    async with resumed.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: f"resumed at epoch {ckpt.epoch}" in text_of(
            resumed, "#status-notes"))
        assert resumed.trainer.snapshot().epoch >= ckpt.epoch
        await pilot.press("q")
    assert resumed.return_code == 0


@run_async
async def test_a_restart_says_where_the_recorded_run_is_kept(tmp_path, timemachine_corpus):
    from engine.checkpoint import load_checkpoint

    run_dir = tmp_path / "run"
    app = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(run_dir),
                    autosave_every=1000)
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app, 2)
        first = app.trainer
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"is saved in {run_dir}." in app.screen.body
        await pilot.press("y")
        await wait_for(pilot, lambda: app.trainer is not first and app.recorder is not None
                       and app.recorder.run_dir not in (None, run_dir),
                       what="a new run in a directory of its own")
        assert load_checkpoint(run_dir / "checkpoint.pt").epoch >= 2
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_an_unrecorded_restart_says_its_progress_is_dropped(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.body.endswith("is dropped.")
        await pilot.press("n", "q")
    assert app.return_code == 0


@run_async
async def test_quit_asks_when_progress_could_not_be_saved(make_app, tmp_path, timemachine_corpus):
    app = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(tmp_path / "run"))
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        await pause(pilot, app)  # so no autosave succeeds in between and clears it
        app.recorder.save_error = "disk full"  # as RunRecorder.save reports a failed write
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "disk full" in str(app.screen.query_one("#confirm-body").render())
        await pilot.press("n")
        await pilot.pause(0.2)
        assert app.is_running and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
    assert app.return_code == 0 and app.run_ended.is_set()


@run_async
async def test_s_saves_and_o_opens_a_checkpoint_to_continue(tmp_path, timemachine_corpus,
                                                            monkeypatch):
    from engine.checkpoint import load_checkpoint
    from tui.screens.checkpoints import CheckpointPicker
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    run_dir = tmp_path / "share" / "rnn-tui" / "runs" / "first"
    app = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(run_dir),
                    autosave_every=100_000)
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app, 2)
        await pause(pilot, app)
        await pilot.press("s")
        await wait_for(pilot, lambda: any("Checkpoint saved" in n for n in notifications(app)),
                       what="the saved notification")
        saved = load_checkpoint(run_dir / "checkpoint.pt")
        assert saved.epoch == app.last_snapshot.epoch >= 2
        # o lists it; enter, then y, continues it in a new run.
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointPicker))
        await wait_for(pilot, lambda: app.screen.paths, what="the list of checkpoints")
        assert app.screen.paths[0] == run_dir / "checkpoint.pt"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        # app.recorder is None while the new run's thread builds it
        await wait_for(pilot, lambda: app.recorder is not None and app.recorder.run_dir != run_dir
                       and app.last_snapshot is not None and app.last_snapshot.epoch > saved.epoch,
                       what="the resumed run")
        assert app.last_snapshot.history[:saved.epoch] == tuple(saved.history)
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_h_halves_the_learning_rate_and_resumes_after_divergence(make_app):
    app = make_app(SMALL.replace(lr=1e6))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: state(app) is RunState.DIVERGED, what="divergence")
        await wait_for(pilot, lambda: any("Press h to halve" in n for n in notifications(app)),
                       what="the offer")
        await pilot.press("h")
        await wait_for(pilot, lambda: app.trainer.snapshot().lr == 5e5, what="the halved lr")
        await wait_for(pilot, lambda: any("learning rate:" in n and "500000" in n
                                          for n in notifications(app)), what="the change shown")
        await pilot.pause(0.3)
        # One notification for the change (the trainer's), one for what happens next.
        changes = [n for n in notifications(app) if "learning rate: 1e+06 → 500000" in n.lower()]
        assert len(changes) == 1 and changes[0].startswith("Applied at epoch")
        assert any("Resuming from the last good epoch." in n for n in notifications(app))
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_resized_to_20x5_and_back(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        await pilot.resize_terminal(20, 5)
        await pilot.pause(0.5)
        assert app.is_running and app.size == (20, 5)
        epoch = app.last_snapshot.epoch
        await pilot.resize_terminal(*SIZE)
        await wait_for(pilot, lambda: app.last_snapshot.epoch > epoch, what="training on")
        assert app.size == SIZE and app.screen.size == SIZE
        await pilot.press("q")
    assert app.return_code == 0


def test_the_plot_is_labelled_in_round_perplexities_on_a_log_axis():
    from tui.widgets.perplexity_plot import log_ticks
    assert log_ticks(28) == [1, 2, 5, 10, 28]
    assert log_ticks(1.1) == [1, 1.1]
    huge = log_ticks(8e12)  # a blown-up epoch does not flatten the rest: 1e3 and 1e6 get ticks
    assert huge[0] == 1 and huge[-1] == 8e12 and len(huge) == 5 and huge == sorted(huge)
    # A short plot: labels two rows apart at least, or plotext draws one over the other.
    assert log_ticks(28, rows=4) == [1, 28] and log_ticks(28, rows=6) == [1, 5, 28]


@run_async
async def test_the_header_says_the_thread_count_and_a_change_is_notified(make_app):
    app = make_app()   # SMALL: --threads 1
    async with app.run_test(size=(120, 32)) as pilot:
        await epochs_done(pilot, app)
        await wait_for(pilot, lambda: "cpu · 1 thread" in text_of(app, "#status-run"),
                       what="the thread count in the header")
        assert "1 thread (--threads 1)" in str(app.query_one("#status-run").tooltip)
        from engine.events import Notice
        app.on_engine_event(Notice("training with 1 thread instead of 2: fewer threads run "
                                   "faster [not markup]", "threads"))
        await pilot.pause(0.1)
        assert any(n.startswith("Threads: training with 1 thread instead of 2")
                   and n.endswith("[not markup]") for n in notifications(app))
def footer(app: RnnTuiApp) -> dict[str, str]:
    """The footer's keys as shown: description -> key."""
    from textual.widgets._footer import FooterKey
    return {k.description: k.key_display for k in app.screen.query(FooterKey)}


@run_async
async def test_the_footer_says_resume_while_paused(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        await wait_for(pilot, lambda: footer(app).get("Pause") == "space", what="space Pause")
        assert "Resume" not in footer(app)
        await pause(pilot, app)
        await wait_for(pilot, lambda: footer(app).get("Resume") == "space", what="space Resume")
        assert "Pause" not in footer(app)
        await pilot.press("space")  # the footer's key does what it says
        await wait_for(pilot, lambda: state(app) is RunState.TRAINING, what="training again")
        await wait_for(pilot, lambda: footer(app).get("Pause") == "space", what="space Pause")
        await pilot.press("q")


@run_async
async def test_in_a_field_the_footer_shows_keys_that_work_there(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: footer(app).get("Help") == "?", what="? Help")
        await pilot.press("g")
        await wait_for(pilot, lambda: footer(app).get("Help") == "f1", what="f1 Help in a field")
        assert "Pause" not in footer(app) and "Quit" not in footer(app)  # typed there
        await pilot.press("question_mark")
        assert app.query_one(PromptPanel).prefix == "?" and not isinstance(app.screen, HelpScreen)
        await pilot.press(footer(app)["Help"])
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: footer(app).get("Help") == "?", what="? Help again")
        await pilot.press("q")


def test_a_clashing_keymap_is_refused_with_a_message(tmp_path):
    import os
    import subprocess
    import sys
    with pytest.raises(ValueError, match="pause=p: p is already the key of toggle-plot"):
        parse_keymap("pause=p")
    with pytest.raises(ValueError, match="x would be the key of both pause and toggle-plot"):
        parse_keymap("pause=x;toggle-plot=x")
    with pytest.raises(ValueError, match="tab moves between fields"):
        parse_keymap("edit=tab")
    assert parse_keymap("pause=p;toggle-plot=v") == {"pause": "p", "toggle-plot": "v"}
    with pytest.raises(ValueError, match="already the key of"):
        RnnTuiApp(SMALL).set_keymap({"help": "h"})
    # The command refuses it before anything starts.
    out = subprocess.run([sys.executable, "-m", "tui.cli"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=120, cwd=str(tmp_path),
                         env={**os.environ, "RNN_TUI_KEYMAP": "pause=p",
                              "PYTHONPATH": os.path.dirname(os.path.dirname(
                                  os.path.abspath(__file__)))})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == ("rnn-tui: error: RNN_TUI_KEYMAP: pause=p: p is already the key "
                                  "of toggle-plot; choose another key, or move toggle-plot too")


@run_async
async def test_hints_follow_the_keymap(make_app):
    app = make_app()
    app.set_keymap(parse_keymap("pause=x;step=m;edit=v;restart=ctrl+r;focus-prompt=y"))
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app)
        assert "y, then type" in text_of(app, "#prompt-output")
        assert app.query_one(HyperparamForm).border_subtitle == "enter applies · ^r restarts"
        await pilot.press("x")
        await wait_for(pilot, lambda: state(app) is RunState.PAUSED, what="paused by x")
        await wait_for(pilot, lambda: app.query_one("#training").border_subtitle
                       == "paused · x resumes · m steps", what="the paused hint")
        await wait_for(pilot, lambda: footer(app).get("Resume") == "x", what="x Resume")
        await pilot.press("question_mark")
        shown = [str(w.render()) for w in app.screen.query(".help-key")]
        assert "x" in shown and "m" in shown and "space" not in shown
        await pilot.press("escape", "q")


@run_async
async def test_start_up_facts_are_a_line_under_the_header_not_toasts(tmp_path, timemachine_corpus):
    run_dir = tmp_path / "run"
    app = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(run_dir),
                    autosave_every=1000)
    async with app.run_test(size=(80, 24)) as pilot:
        await epochs_done(pilot, app)
        await pilot.pause(0.2)
        notes = app.query_one("#status-notes")
        assert notes.display and notes.region.height == 1 and notes.region.y == 1
        assert text_of(app, "#status-notes") == f"recording to {run_dir}"
        assert not notifications(app)
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_notifications_are_short_and_never_over_the_help_or_a_dialog(make_app):
    from textual.widgets._toast import Toast
    app = make_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await epochs_done(pilot, app)
        await pilot.press("n")  # "n trains one batch while paused; space pauses first."
        await wait_for(pilot, lambda: any(t.display for t in app.screen.query(Toast)),
                       what="a toast")
        assert all(n.timeout <= 6 for n in app._notifications)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause(0.2)
        toasts = app.screen.query(Toast)
        assert toasts and not any(t.display for t in toasts)  # there, but hidden
        app.notify("arrives while the help is open")
        await pilot.pause(0.3)
        assert not any(t.region for t in app.screen.query(Toast))
        await pilot.press("escape")
        await wait_for(pilot, lambda: any(t.display and t.region
                                          for t in app.screen.query(Toast)), what="toasts back")
        await pilot.press("r")  # the restart dialog
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause(0.2)
        assert not any(t.region for t in app.screen.query(Toast))
        await pilot.press("escape", "q")


@pytest.mark.parametrize("key", ["end", "pagedown", "down", "tab"])
@run_async
async def test_the_help_scrolls_at_80x24(make_app, key):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        dialog = app.screen.query_one("#help-dialog")
        assert dialog.max_scroll_y > 0  # it does not fit: the last rows are below
        assert dialog.scroll_y == 0
        await pilot.press(key)
        await pilot.pause(0.3)
        assert dialog.scroll_y > 0
        if key in ("end", "pagedown", "tab"):
            await pilot.press("end")
            await pilot.pause(0.3)
            assert dialog.scroll_y == dialog.max_scroll_y
            last = app.screen.query_one("#help-remap")
            assert dialog.region.contains_region(last.region)  # the last line is in view
        await pilot.press("escape", "q")


@run_async
async def test_an_invalid_fields_message_is_scrolled_into_view_at_80x24(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        form = app.query_one(HyperparamForm)
        for field in ("#hp-epochs", "#hp-seed", "#hp-corpus"):
            app.query_one(field, Input).focus()
            await pilot.pause(0.1)
            await pilot.press("ctrl+a", "ctrl+k", *"-x")
            error = app.query_one(field + "-error")
            await wait_for(pilot, lambda: error.display and str(error.render()), what="the error")
            await wait_for(pilot, lambda: form.content_region.contains_region(error.region),
                           timeout=3, what=f"{field}'s message in view")
        await pilot.press("escape", "q")


@pytest.mark.parametrize("field", ["#hp-lr", "#hp-corpus"])
@run_async
async def test_a_huge_paste_is_quoted_short_in_the_message(make_app, field):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        app.query_one(field, Input).focus()
        await pilot.press("ctrl+a", "ctrl+k")
        pasted = "learning rate of one " * 720  # 15,120 characters
        app.query_one(field, Input).post_message(events.Paste(pasted))
        await pilot.pause(0.3)
        assert app.query_one(field, Input).value == pasted
        message = app.query_one(HyperparamForm).error(field[4:])
        assert "'learning rate of one learning rate of …" in message
        assert len(message) < 100
        await pilot.press("escape", "q")


@run_async
async def test_p_gives_the_full_plot_the_whole_screen_with_a_y_range_from_the_data(make_app):
    from tui.widgets.perplexity_plot import PerplexityPlot
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await epochs_done(pilot, app, 4)
        await pilot.press("p")
        plot = app.query_one(PerplexityPlot)
        await pilot.pause(0.3)
        assert plot.region.height >= 22 and plot.region.width == 80  # all but the footer
        history = plot.history
        assert len(history) >= 4 and plot.y_ticks
        assert plot.y_ticks[0] <= min(history) < plot.y_ticks[0] * 1.1  # not 1: the data's
        assert plot.y_ticks[-1] >= max(history) * 0.95
        assert len(plot.y_ticks) >= 3  # room for labels
        # the y axis, named apart from the x label; the way back
        assert plot.border_title == "Perplexity (log scale) · p or escape goes back"
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert not app.plot_maximized and not plot.display  # as it was at 80x24
        await pilot.press("p", "g")  # a field to type in: back from the plot to the panels
        assert not app.plot_maximized
        assert app.focused is app.query_one("#prompt-input", Input)
        await pilot.press("escape", "q")


@run_async
async def test_letters_dropped_by_the_preprocessing_are_reported(make_app, tmp_path):
    corpus = tmp_path / "cafe.txt"
    corpus.write_text("the naïve café owner said hello to the time traveller\n" * 100,
                      encoding="utf-8")
    app = make_app(SMALL.replace(corpus=str(corpus), max_tokens=0))
    app.corpus = None
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        assert app.info.dropped.startswith("the book's preprocessing dropped 200 letters")
        await wait_for(pilot, lambda: "⚠ the book's preprocessing dropped 200 letters outside "
                       "a-z (ï é); --preprocess raw keeps every character"
                       in text_of(app, "#status-notes"), what="the note")
        await pilot.press("q")


def picker_rows(app) -> dict[str, list[str]]:
    table = app.screen.query_one("#picker-table")
    return {str(p): [str(c) for c in table.get_row(str(p))] for p in app.screen.paths}


@run_async
async def test_the_checkpoint_list_marks_this_run_with_its_live_epoch(tmp_path,
                                                                      timemachine_corpus):
    from tui.screens.checkpoints import CheckpointPicker
    from engine.runlog import default_runs_dir
    run_dir = default_runs_dir() / "this-run"
    app = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(run_dir),
                    autosave_every=100_000)
    async with app.run_test(size=(80, 24)) as pilot:
        await epochs_done(pilot, app, 1)
        await pilot.press("s")
        await wait_for(pilot, lambda: (run_dir / "checkpoint.pt").is_file(), what="a save")
        from engine.checkpoint import load_checkpoint
        saved = load_checkpoint(run_dir / "checkpoint.pt").epoch
        await epochs_done(pilot, app, saved + 2)
        await pause(pilot, app)
        live = app.last_snapshot.epoch
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointPicker) and app.screen.paths,
                       what="the list")
        row = picker_rows(app)[str(run_dir / "checkpoint.pt")]
        assert row[0] == "●" and row[4] == "this-run (this run)"
        # The run trains on while the list is read: its live epoch, at least the one seen.
        shown, rest = str(row[1]).split("/", 1)
        assert int(shown) >= live and rest == f"{SMALL.epochs}, saved {saved}"
        assert "● marks the run training now" in str(app.screen.query_one("#picker-note").render())
        await pilot.press("escape", "q")


@run_async
async def test_the_checkpoint_list_finds_runs_written_with_run_dir(make_app, tmp_path,
                                                                   timemachine_path):
    from tui.cli import main
    from tui.screens.checkpoints import CheckpointPicker
    elsewhere = tmp_path / "my runs" / "[b]first"
    assert main(["train", "--headless", "--run-dir", str(elsewhere), "--epochs", "1",
                 "--corpus", str(timemachine_path), "--hidden", "16", "--max-tokens", "2000",
                 "--batch-size", "8", "--num-steps", "10", "--threads", "1"]) == 0
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointPicker) and app.screen.paths,
                       what="the list")
        rows = picker_rows(app)
        row = rows[str(elsewhere / "checkpoint.pt")]
        assert [row[1], row[4], row[5]] == ["1/1", "[b]first", "timemachine.txt"]
        assert "and 1 other run directory" in str(app.screen.query_one("#picker-note").render())
        # Tab and shift+tab move between the list and the path field, over the app's keys
        # (which wait while a dialog is open: p here is typed, not the plot).
        path = app.screen.query_one("#picker-path", Input)
        await pilot.press("tab")
        assert app.focused is path
        await pilot.press("p")
        assert path.value == "p" and isinstance(app.screen, CheckpointPicker)
        await pilot.press("shift+tab")
        assert isinstance(app.focused, DataTable)
        await pilot.press("escape", "q")


@run_async
async def test_a_checkpoint_can_be_opened_by_a_typed_path(make_app, tmp_path, timemachine_corpus):
    from tui.screens.checkpoints import CheckpointPicker
    run_dir = tmp_path / "typed"
    first = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(run_dir))
    async with first.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, first, 1)
        await pilot.press("q")
    (tmp_path / "run-dirs.txt").write_text("")  # not through the index: typed
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointPicker))
        app.screen.query_one("#picker-path", Input).focus()
        await pilot.press(*str(tmp_path / "nothing-here"), "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, CheckpointPicker)
        assert str(app.screen.query_one("#picker-error").render()).startswith("no file '")
        app.screen.query_one("#picker-path", Input).value = str(run_dir)  # a run directory
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert str(run_dir / "checkpoint.pt") in app.screen.body
        await pilot.press("escape", "q")


@run_async
async def test_elapsed_goes_on_from_the_checkpoint_in_the_app(tmp_path, timemachine_corpus):
    import dataclasses

    from engine.checkpoint import load_checkpoint, save_checkpoint
    from engine.trainer import resume_config
    run_dir = tmp_path / "run"
    app = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(run_dir))
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app, 1)
        await pilot.press("q")
    ckpt = dataclasses.replace(load_checkpoint(run_dir / "checkpoint.pt"), elapsed=3725.0)
    resumed = RnnTuiApp(resume_config(ckpt), timemachine_corpus, resume=ckpt)
    async with resumed.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: resumed.last_snapshot is not None
                       and resumed.last_snapshot.epoch >= ckpt.epoch, what="the resumed run")
        await pilot.pause(0.3)
        assert re.search(r"elapsed\s+1:02:", text_of(resumed, "#stats"))
        await pilot.press("q")


@run_async
async def test_a_long_generation_scrolls_in_the_prompt_panel(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.info is not None)
        app.query_one("#prompt-length", Input).value = "500"
        # Sampled, not greedy: an early greedy model may write 500 spaces, which wrap to nothing.
        app.query_one("#prompt-sampling", Input).value = "temperature 1"
        await pilot.press("g", *"time")
        prompt = app.query_one(PromptPanel)
        await wait_for(pilot, lambda: prompt.prediction is not None
                       and len(prompt.prediction.text) == 500, what="500 characters")
        await pilot.pause(0.3)
        output, scroll = app.query_one("#prompt-output"), app.query_one("#prompt-scroll")
        needed = -(-len("time" + prompt.prediction.text) // output.content_size.width)
        assert output.size.height >= needed - 2 > 6  # nothing cut off (wraps drop spaces)...
        assert scroll.region.height <= 6 and scroll.max_scroll_y > 0  # ...it scrolls
        scroll.scroll_end(animate=False)
        await pilot.pause(0.2)
        assert scroll.scroll_y == scroll.max_scroll_y == output.size.height - scroll.region.height
        await pilot.press("escape", "q")


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (50, 16)])
@run_async
async def test_every_footer_key_is_inside_the_screen(make_app, size):
    from textual.widgets._footer import FooterKey
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await epochs_done(pilot, app)
        await wait_for(pilot, lambda: "Quit" in footer(app) and all(
            k.region.width for k in app.screen.query(FooterKey)), what="the footer laid out")
        keys = list(app.screen.query(FooterKey))
        assert {"Pause", "Help", "Quit"} <= {k.description for k in keys}
        for key in keys:
            assert key.region.width and key.region.right <= size[0], (key.description, key.region)
        if size == (80, 24):  # everything fits there
            assert {"Restart", "Save", "Plot", "palette"} <= {k.description for k in keys}
        await pilot.resize_terminal(100, 30)
        await wait_for(pilot, lambda: "palette" in footer(app), what="the wider footer")
        await pilot.press("q")


@run_async
async def test_a_failed_write_pauses_with_a_message_and_space_tries_again(
        tmp_path, timemachine_corpus, monkeypatch):
    """A full disk mid-run: the app pauses and says why and what is kept; once there is room
    again, space goes on and the next epoch writes again."""
    import errno
    import os

    import engine.checkpoint
    from engine.checkpoint import load_checkpoint

    real = engine.checkpoint._atomic_torch_save
    disk = {"full": False}

    def save(record, path):
        if disk["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(record, path)

    monkeypatch.setattr(engine.checkpoint, "_atomic_torch_save", save)
    run_dir = tmp_path / "run"
    app = RnnTuiApp(SMALL, timemachine_corpus, record=True, run_dir=str(run_dir),
                    autosave_every=1)
    async with app.run_test(size=SIZE) as pilot:
        await epochs_done(pilot, app, 2)
        disk["full"] = True
        await wait_for(pilot, lambda: state(app) is RunState.PAUSED, what="paused by the failure")
        await wait_for(pilot, lambda: any(n.startswith("The run cannot be saved:")
                                          for n in notifications(app)), what="the message")
        shown = next(n for n in notifications(app) if n.startswith("The run cannot be saved:"))
        kept = app.recorder.saved_epoch
        path = str(run_dir / "checkpoint.pt")
        assert f"cannot save checkpoint {path!r}: No space left on device" in shown
        assert f"holds epoch {kept}" in shown and "space goes on" in shown
        assert load_checkpoint(run_dir / "checkpoint.pt").epoch == kept
        # q would lose the epochs since: it asks first.
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        disk["full"] = False
        await pilot.press("space")
        await wait_for(pilot, lambda: app.recorder.failure is None
                       and (app.recorder.saved_epoch or 0) > kept, what="writing again")
        await pilot.press("q")
    assert app.return_code == 0
    assert load_checkpoint(run_dir / "checkpoint.pt").epoch > kept


@run_async
async def test_k_shades_the_continuation_by_each_characters_probability(make_app, monkeypatch):
    from tui.widgets.prompt_panel import confidence_style
    monkeypatch.setenv("COLORTERM", "truecolor")
    app = make_app(SMALL.replace(lr=2.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"the ")
        prompt = app.query_one(PromptPanel)
        await wait_for(pilot, lambda: prompt.prediction is not None
                       and prompt.prediction.prefix == "the ", what="a prediction")
        p = prompt.prediction
        assert len(p.probs) == len(p.text) and all(0 < q <= 1 for q in p.probs)
        assert "probability of each character" not in text_of(app, "#prompt-unknown")
        await pilot.press("escape", "k")
        assert prompt.shade
        await pilot.pause(0.05)
        assert "probability of each character when chosen" in text_of(app, "#prompt-unknown")
        # Training goes on and the prompt answers again each epoch: read the answer shown now.
        p = prompt.prediction
        assert text_of(app, "#prompt-output") == "the " + p.text  # the same text, shaded
        shaded = PromptPanel.render_prediction(p, shade=True)
        styles = [str(s.style) for s in shaded.spans][-len(p.text):]
        assert styles == [confidence_style(q) for q in p.probs]
        await pilot.press("k")
        assert not prompt.shade
        await pilot.press("q")
    assert app.return_code == 0


def decile(q: float) -> str:
    """The probability's tenths as one digit: 0.07 -> 0, 0.5 -> 5, 0.93 and 1.0 -> 9."""
    tenths = 0
    while tenths < 9 and q >= (tenths + 1) / 10:
        tenths += 1
    return str(tenths)


@pytest.mark.parametrize("env", [{"COLORTERM": ""}, {"TERM": "xterm-256color"},
                                 {"COLORTERM": "truecolor", "NO_COLOR": "1"}],
                         ids=["16 colours", "256 colours", "NO_COLOR"])
@run_async
async def test_without_truecolour_k_writes_each_characters_probability_under_it(
        make_app, monkeypatch, env):
    """The shading's text fallback: a row of digits (tenths) under each row of the text."""
    monkeypatch.delenv("COLORTERM", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = make_app(SMALL.replace(lr=2.0))
    async with app.run_test(size=(80, 24)) as pilot:
        await epochs_done(pilot, app, 1)
        await pause(pilot, app)  # the model holds still: one answer to read
        await pilot.press("g", *"the ")
        prompt = app.query_one(PromptPanel)
        await wait_for(pilot, lambda: prompt.prediction is not None
                       and prompt.prediction.prefix == "the ", what="a prediction")
        await pilot.press("escape", "k")
        await pilot.pause(0.05)
        p = prompt.prediction
        assert prompt.shade and prompt.digits
        legend = text_of(app, "#prompt-unknown")
        assert "under each character: its probability when chosen, in tenths" in legend
        assert "probability of each character when chosen" not in legend  # the colour legend
        rows = text_of(app, "#prompt-output").split("\n")
        width = app.query_one("#prompt-output").content_size.width
        assert len(rows) % 2 == 0 and len(rows) >= 4  # 50 characters: more than one row
        texts, marks = rows[0::2], rows[1::2]
        assert all(0 < len(t) <= width for t in texts)
        assert all(set(m) <= set(" 0123456789") and len(m) <= len(t)
                   for t, m in zip(texts, marks))
        assert "".join(texts) == "the " + p.text
        shown = "".join(m.ljust(len(t)) for t, m in zip(texts, marks))
        assert shown == "    " + "".join(decile(q) for q in p.probs)
        await pilot.press("k")
        await pilot.pause(0.05)
        assert text_of(app, "#prompt-output") == "the " + p.text
        assert not app.query_one("#prompt-unknown").display  # nor its legend
        await pilot.press("q")
    assert app.return_code == 0
