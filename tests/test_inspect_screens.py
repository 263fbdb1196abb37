"""The looking-inside screens, driven by the pilot with the real trainer on a tiny model, at
80x24 and 160x48: what they show is what engine.inspect computes on the trainer's model."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static

from engine.inspect import find_unit, gradients_view, hidden_states, surprise
from engine.events import RunState
from tests.test_app import SMALL, epochs_done, pause, run_async, wait_for
from tests.test_app import _keys_without_idle_wait  # noqa: F401 - the fixture, used by name
from tui.app import RnnTuiApp
from tui.commands import TrainingCommands
from tui.screens.gradients import GradientsScreen
from tui.screens.help import HelpScreen
from tui.screens.hidden_units import HiddenUnitsScreen
from tui.screens.surprise import SurpriseScreen
from tui.widgets.gradient_plot import MARKERS, GradientPlot
from tui.widgets.surprise_text import SurpriseText
from tui.widgets.unit_heatmap import BLOCKS, UnitHeatmap

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
HOSTILE = 'the "time\x1b[2J traveller" said. then \u202eit was'


@pytest.fixture
def app(timemachine_corpus, monkeypatch):
    monkeypatch.setenv("COLORTERM", "truecolor")
    return RnnTuiApp(SMALL, timemachine_corpus)


def on_trainer(app, work):
    """Run work(trainer) where the model lives, as the screens do, and wait for it."""
    trainer = app.trainer
    return trainer.request(lambda: work(trainer)).result(timeout=30)


def text_of(widget) -> str:
    return str(widget.render())


async def answered(pilot, screen) -> None:
    await wait_for(pilot, lambda: screen.result is not None and not screen.pending,
                   what="the trainer's answer")
    await pilot.pause(0.1)


@SIZES
@run_async
async def test_surprise_screen_shows_the_models_loss_on_a_text(app, size):
    async with app.run_test(size=size) as pilot:
        await epochs_done(pilot, app, 2)
        await pause(pilot, app)  # the model holds still, so the test can compare
        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, SurpriseScreen)
        await answered(pilot, screen)
        # The default text: the start of the training text.
        expected = on_trainer(app, lambda t: surprise(
            t.net, t.vocab, "".join(t.vocab.to_tokens(t.loader.corpus[:2000])),
            t.config.preprocess, top=10))
        assert screen.result.losses == expected.losses
        summary = text_of(screen.query_one("#surprise-summary"))
        assert f"perplexity {expected.perplexity:.3f} on {len(expected.losses):,}" in summary
        hardest = text_of(screen.query_one("#surprise-hardest"))
        assert f"{expected.hardest[0].loss:5.2f} nats" in hardest
        # A typed text, with characters a terminal would obey.
        await pilot.press("slash")
        assert isinstance(screen.focused, Input)
        screen.query_one(Input).value = HOSTILE
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.result.text != expected.text and not screen.pending)
        typed = on_trainer(app, lambda t: surprise(t.net, t.vocab, HOSTILE, t.config.preprocess))
        assert screen.result.losses == typed.losses
        shown = text_of(screen.query_one(SurpriseText))
        assert "\x1b" not in shown and "\u202e" not in shown
        # Without colour: a row of loss levels under the text.
        await pilot.press("m")
        view = screen.query_one(SurpriseText)
        assert view.markers
        lines = text_of(view).splitlines()
        assert lines[0].startswith(typed.text[:10])
        assert set(lines[1]) <= set(" .0123456789")
        assert "whole nats" in text_of(screen.query_one("#surprise-legend"))
        await pilot.press("escape")
        assert not isinstance(app.screen, SurpriseScreen)
        await pilot.press("q")
    assert app.return_code == 0


@SIZES
@run_async
async def test_hidden_units_screen_finds_the_unit(app, size):
    async with app.run_test(size=size) as pilot:
        await epochs_done(pilot, app, 2)
        await pause(pilot, app)
        await pilot.press("u")
        screen = app.screen
        assert isinstance(screen, HiddenUnitsScreen)
        await answered(pilot, screen)
        assert screen.result.char_class == "space"
        assert "by height and colour" in text_of(screen.query_one("#units-legend"))
        await pilot.press("2")  # vowels
        await wait_for(pilot, lambda: screen.result.char_class == "vowel" and not screen.pending)
        text = screen.result.text
        ranked = on_trainer(app, lambda t: find_unit(
            hidden_states(t.net, t.vocab, text, t.config.preprocess).H, text, "vowel", 12))
        assert screen.result.ranked == ranked
        ranking = text_of(screen.query_one("#units-ranking"))
        assert f"unit {ranked[0][0]:<5} r = {ranked[0][1]:+.3f}" in ranking
        heatmap = text_of(screen.query_one(UnitHeatmap)).splitlines()
        assert len(heatmap) == 2 + 12 and heatmap[0].endswith(text)
        assert f"H {ranked[0][0]}" in heatmap[2]
        # The book's preprocessing has no quotes: the screen says so instead of ranking.
        await pilot.press("3")
        await wait_for(pilot, lambda: screen.result.char_class == "quote" and not screen.pending)
        assert "never changes" in text_of(screen.query_one("#units-ranking"))
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


@SIZES
@run_async
async def test_gradients_screen_draws_the_norms_through_time(app, size):
    async with app.run_test(size=size) as pilot:
        await epochs_done(pilot, app, 1)
        await pause(pilot, app)
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, GradientsScreen)
        await answered(pilot, screen)
        expected = on_trainer(app, lambda t: gradients_view(
            t.net, t.loader.corpus, SMALL.batch_size, SMALL.num_steps, t.snapshot().clip, 0))
        assert screen.result.gradients.H == expected.gradients.H
        plot = screen.query_one(GradientPlot)
        assert dict(plot.series)["dL/dH"] == expected.gradients.H
        assert not plot.markers  # in truecolour, the colours tell the curves apart
        summary = text_of(screen.query_one("#gradients-summary"))
        assert f"batch 1 of {expected.batches}" in summary
        table = text_of(screen.query_one("#gradients-table")).splitlines()
        assert "W_hh" in table[1] and len(table) == 2 + SMALL.num_steps
        await pilot.press("b")
        await wait_for(pilot, lambda: screen.result.index == 1 and not screen.pending)
        assert "batch 2 of" in text_of(screen.query_one("#gradients-summary"))
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_without_truecolour_each_view_says_in_text_what_its_colours_say(
        timemachine_corpus, monkeypatch):
    monkeypatch.delenv("COLORTERM", raising=False)  # 16 colours: the ramps run together
    app = RnnTuiApp(SMALL, timemachine_corpus)
    async with app.run_test(size=(80, 24)) as pilot:
        await epochs_done(pilot, app, 1)
        await pause(pilot, app)
        # Surprise: the loss as a digit under each character, from the start.
        await pilot.press("i")
        screen = app.screen
        await answered(pilot, screen)
        assert screen.query_one(SurpriseText).markers
        assert "in whole nats" in text_of(screen.query_one("#surprise-legend"))
        await pilot.press("escape")
        # Hidden units: the legend speaks of heights alone, and the heights follow the values.
        await pilot.press("u")
        screen = app.screen
        await answered(pilot, screen)
        legend = text_of(screen.query_one("#units-legend"))
        assert legend == f"cell: value by height, -1 (empty) {BLOCKS[1:]} +1"
        rows = text_of(screen.query_one(UnitHeatmap)).splitlines()[2:]
        for row, values in zip(rows, screen.result.rows):
            glyphs = row.split("│", 1)[1]
            heights = [BLOCKS.index(g) for _, g in sorted(zip(values, glyphs))]
            assert heights == sorted(heights) and len(glyphs) == len(values)
        await pilot.press("escape")
        # Gradients: each curve its own marker, shown beside its name in the legend.
        await pilot.press("t")
        screen = app.screen
        await answered(pilot, screen)
        plot = screen.query_one(GradientPlot)
        await pilot.pause(0.1)
        assert plot.markers
        drawn = str(plot.render())
        for (name, _), marker in zip(plot.series, MARKERS):
            assert f"{marker}{marker} {name}" in drawn
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_the_screens_say_when_there_is_no_model(tmp_path):
    app = RnnTuiApp(SMALL.replace(corpus=str(tmp_path / "missing.txt")))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.last_snapshot is not None
                       and app.last_snapshot.state is RunState.ERROR, what="the error")
        for key, kind in (("i", SurpriseScreen), ("u", HiddenUnitsScreen), ("t", GradientsScreen)):
            await pilot.press(key)
            assert isinstance(app.screen, kind)
            note = app.screen.query_one(".inspect-note", Static)
            assert "No model to look at now (training is error)" in text_of(note)
            assert note.has_class("-error")
            await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_palette_and_help_list_the_screens(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await epochs_done(pilot, app, 1)
        names = [name for name, _, _ in TrainingCommands(app.screen)._commands()]
        assert {"Surprise", "Hidden units", "Gradients"} <= set(names)
        await app.run_palette_action("gradients")
        assert isinstance(app.screen, GradientsScreen)
        await pilot.press("escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Gradients through time" in app.screen.text()
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0
