"""Comparing the live model's gradients through time with another run's checkpoint (c in the
gradients screen), driven by the pilot with the real trainer at 80x24 and 160x48: what it
shows is what engine.inspect.compare_gradients computes on the two models, on the same
batch, and b moves both to the next batch."""

from __future__ import annotations

import pytest

from engine.checkpoint import load_checkpoint, model_from_checkpoint
from engine.inspect import GradientsComparison, GradientsView, compare_gradients
from tests.test_app import epochs_done, pause, run_async, wait_for
from tests.test_app import _keys_without_idle_wait  # noqa: F401 - the fixture, used by name
from tests.test_inspect_screens import app, on_trainer, text_of  # noqa: F401 - fixture by name
from tests.test_surprise_compare_screen import NAME, other_checkpoint, pick  # noqa: F401
from tui.screens.gradients import GradientsScreen
from tui.widgets.gradient_plot import GradientPlot

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])


@SIZES
@run_async
async def test_gradients_of_two_runs_on_the_same_batch(app, other_checkpoint, size):
    net_b, vocab_b = model_from_checkpoint(load_checkpoint(other_checkpoint))
    async with app.run_test(size=size) as pilot:
        await epochs_done(pilot, app, 1)
        await pause(pilot, app)
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, GradientsScreen)
        await wait_for(pilot, lambda: screen.result is not None and not screen.pending)
        await pick(pilot, screen, other_checkpoint)
        await wait_for(pilot, lambda: isinstance(screen.result, GradientsComparison)
                       and not screen.pending, what="the comparison")

        def expected(index):
            return on_trainer(app, lambda t: compare_gradients(
                t.net, t.vocab, net_b, vocab_b, "".join(t.vocab.to_tokens(t.loader.corpus)),
                t.config.batch_size, t.config.num_steps, t.snapshot().clip, index))
        want = expected(0)
        result = screen.result
        assert result.a.gradients.H == want.a.gradients.H
        assert result.b.gradients.last_norms == want.b.gradients.last_norms
        assert set(result.b.gradients.state_norms) == {"H", "C"}   # B is an LSTM
        assert result.missing_b == want.missing_b != ""
        series = dict(screen.query_one(GradientPlot).series)
        assert series["A dL/dH"] == want.a.gradients.H
        assert series["B dL_T/dH (last step's loss)"] == want.b.gradients.last_norms["H"]
        summary = " ".join(text_of(screen.query_one("#gradients-summary")).split())
        decay = want.b.gradients.decay_per_step()
        assert f"B ({NAME}: lstm, 12 hidden units, epoch 1)" in summary  # literally, not markup
        assert f"dL_T/dH x{decay:.3g} a step back" in summary
        assert f"B reads {len(want.missing_b)} character(s) it does not know as <unk>" in summary
        table = text_of(screen.query_one("#gradients-table")).splitlines()
        assert table[2].split() == ["1"] + [f"{v:.2e}" for v in (
            want.a.gradients.H[0], want.b.gradients.H[0], want.a.gradients.last_norms["H"][0],
            want.b.gradients.last_norms["H"][0])]
        assert "x alone" in screen.query_one(".inspect-dialog").border_subtitle
        # b: the next batch, for both.
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(screen.result, GradientsComparison)
                       and screen.result.a.index == 1 and not screen.pending, what="batch 2")
        assert screen.result.b.gradients.H == expected(1).b.gradients.H
        assert "batch 2 of" in text_of(screen.query_one("#gradients-summary"))
        # x: this run alone again, on the batch shown.
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(screen.result, GradientsView)
                       and not screen.pending, what="the model alone")
        assert screen.result.index == 1 and "dL/dH" in dict(screen.query_one(GradientPlot).series)
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_four_curves_each_show_in_the_plot():
    """Comparing puts four curves on the plot, A's an order of magnitude or two above B's,
    B's last-step curve down to 1e-15 (an LSTM): each is drawn somewhere, none wholly under
    another (at a fixed height, B's dL/dH covered A's; the numbers are from such a run)."""
    from textual.app import App

    from tui.app import RnnTuiApp
    from tui.widgets.gradient_plot import MARKERS

    series = (("A dL/dH", tuple(6e-2 - 1e-4 * t for t in range(35))),
              ("A dL_T/dH (last step's loss)", tuple(1.66e-3 / 0.937 ** t for t in range(35))),
              ("B dL/dH", tuple(7e-4 + 1e-5 * (t % 3) for t in range(35))),
              ("B dL_T/dH (last step's loss)", tuple(2.7e-15 / 0.461 ** t for t in range(35))))

    class PlotApp(App):
        CSS_PATH = RnnTuiApp.CSS_PATH  # the plot's height is the stylesheet's

        def compose(self):
            yield GradientPlot()

    app = PlotApp()
    async with app.run_test(size=(80, 40)) as pilot:
        plot = app.query_one(GradientPlot)
        plot.markers = True
        plot.series = series[:2]
        await pilot.pause(0.1)
        two = plot.outer_size.height
        plot.series = series
        await pilot.pause(0.2)
        assert plot.outer_size.height > two
        drawn = [line for line in str(plot.render()).splitlines() if "dL" not in line]
        for (name, _), marker in zip(series, MARKERS):
            assert sum(line.count(marker) for line in drawn) >= 10, name
