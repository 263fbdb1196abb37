"""Comparing the live model with another run's checkpoint in the Surprise screen (c), driven
by the pilot with the real trainer at 80x24 and 160x48: what it shows is what
engine.inspect.compare_surprise computes on the two models, the other checkpoint's forward
pass runs on the trainer's thread, and a damaged checkpoint gets a one-line note."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Input, Static

from engine.checkpoint import load_checkpoint, model_from_checkpoint
from engine.config import TrainConfig
from engine.corpus import Corpus
from engine.inspect import SurpriseComparison, compare_surprise
from engine.trainer import Trainer
from tests.test_app import epochs_done, pause, run_async, wait_for
from tests.test_app import _keys_without_idle_wait  # noqa: F401 - the fixture, used by name
from tests.test_inspect_screens import app, on_trainer, text_of  # noqa: F401 - fixture by name
from tui.figures import difference_mark
from tui.format import signed
from tui.screens.checkpoints import CheckpointPicker
from tui.screens.surprise import SurpriseScreen
from tui.widgets.surprise_difference import SurpriseDifference
from tui.widgets.surprise_sides import SurpriseSides

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
# B learns from a text without most of the alphabet: its vocabulary lacks what the live
# model's training text (The Time Machine) holds, so those characters cannot be compared.
SMALL_TEXT = "the time traveller met the maiden at the mill " * 40
NAME = "[red]other[b] run"   # a directory name that looks like markup


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory):
    config = TrainConfig(num_hiddens=12, batch_size=4, num_steps=8, epochs=1, threads=1,
                         cell="lstm", sample_every=1)
    trainer = Trainer(config, corpus=Corpus("mill", SMALL_TEXT, "0" * 40))
    trainer.run()
    path = tmp_path_factory.mktemp("runs") / NAME / "checkpoint.pt"
    path.parent.mkdir()
    trainer.save(path)
    return path


async def pick(pilot, screen, path) -> None:
    """c, then the path typed in the picker's field, as a person who knows it would."""
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CheckpointPicker),
                   what="the picker")
    picker = pilot.app.screen
    assert "Compare" in picker.query_one("#picker-dialog").border_title
    picker.query_one("#picker-path", Input).value = str(path)
    picker.query_one("#picker-path", Input).focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.screen is screen, what="the picker to close")


@SIZES
@run_async
async def test_compare_with_another_runs_checkpoint(app, other_checkpoint, size):
    async with app.run_test(size=size) as pilot:
        await epochs_done(pilot, app, 2)
        await pause(pilot, app)
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, SurpriseScreen)
        await wait_for(pilot, lambda: screen.result is not None and not screen.pending)
        # Record which thread computes: the other model's forward pass is the trainer's work.
        net_b, vocab_b = model_from_checkpoint(load_checkpoint(other_checkpoint))
        threads = []
        trainer_thread = on_trainer(app, lambda t: threading.current_thread())
        original = screen.ask

        def ask(work, what="computing"):
            return original(lambda t: (threads.append(threading.current_thread()), work(t))[1],
                            what)
        screen.ask = ask
        await pick(pilot, screen, other_checkpoint)
        await wait_for(pilot, lambda: isinstance(screen.result, SurpriseComparison)
                       and not screen.pending, what="the comparison")
        assert threads and set(threads) == {trainer_thread}
        result = screen.result
        expected = on_trainer(app, lambda t: compare_surprise(
            t.net, t.vocab, net_b, vocab_b,
            "".join(t.vocab.to_tokens(t.loader.corpus[:2000])), t.config.preprocess, top=10))
        assert result.losses_a == expected.losses_a
        assert result.losses_b == pytest.approx(expected.losses_b, rel=1e-5)
        assert result.missing_b == expected.missing_b != ""   # 'b', 'y', 'w', ... unknown to B
        summary = text_of(screen.query_one("#surprise-summary"))
        assert (f"perplexity A {expected.perplexity_a:.3f} (this run) · B "
                f"{expected.perplexity_b:.3f} ({NAME}: lstm, 12 hidden units, epoch 1) · "
                f"B - A {signed(expected.mean_difference)} nats per character, on "
                f"{expected.compared:,} characters") in summary
        assert f"B lacks {expected.missing_b!r}: grey, not compared" in summary
        most = text_of(screen.query_one("#surprise-hardest"))
        assert "where they differ most" in most
        assert f"{expected.most[0].delta:+5.2f}  A {expected.most[0].loss_a:4.2f}" in most
        # The difference, in colour, with its legend.
        difference = screen.query_one(SurpriseDifference)
        assert difference.display and difference.result is result
        assert "B - A per character" in text_of(screen.query_one("#surprise-legend"))
        assert not screen.query_one("#surprise-text").display
        # d: side by side, each model's own surprise.
        await pilot.press("d")
        assert screen.query_one("#surprise-sides").display and not difference.display
        sides = screen.query_one(SurpriseSides)
        assert sides.result is result
        # Shown just now: its width is known once the screen is laid out again.
        await wait_for(pilot, lambda: sides.content_size.width > 40, what="the sides laid out")
        lines = text_of(sides).splitlines()
        col = sides.column(sides.content_size.width)
        assert lines[0].startswith(f"A: this run · perplexity {result.perplexity_a:.3f}")
        assert f"B: {NAME}"[:col - 1] in lines[0]  # literally, not as markup
        # Line by line, the same characters on both sides.
        for n, line in enumerate(lines[1:4]):
            part = result.text[n * col:(n + 1) * col]
            assert line[:col].rstrip() == part.rstrip() and line[col + 3:].rstrip() == part.rstrip()
        # m: without colour; back to the difference with d, its marks under the text.
        await pilot.press("m", "d")
        assert difference.markers and difference.display
        lines = text_of(difference).splitlines()
        width = len(lines[0])
        assert lines[0] == result.text[:width]
        assert lines[1] == " " + "".join(difference_mark(d, k) for d, k in zip(
            result.differences[:width - 1], result.known[:width - 1]))
        assert "?" in "".join(text_of(difference).splitlines()[1::2])
        assert "? not compared" in text_of(screen.query_one("#surprise-legend"))
        # x: the live model alone again.
        await pilot.press("x")
        await wait_for(pilot, lambda: not isinstance(screen.result, SurpriseComparison)
                       and not screen.pending, what="the model alone")
        assert screen.query_one("#surprise-text").display and not difference.display
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_a_damaged_checkpoint_gets_a_one_line_note(app, tmp_path):
    bad = tmp_path / "damaged.pt"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    async with app.run_test(size=(80, 24)) as pilot:
        await epochs_done(pilot, app, 1)
        await pause(pilot, app)
        await pilot.press("i")
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None and not screen.pending)
        await pick(pilot, screen, bad)
        note = screen.query_one(".inspect-note", Static)
        await wait_for(pilot, lambda: note.has_class("-error"), what="the note")
        assert "is incomplete or damaged" in text_of(note) and "\n" not in text_of(note)
        assert screen.other is None and not isinstance(screen.result, SurpriseComparison)
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0
