"""The run browser (b) and the overlay, driven by the pilot at 80x24 and 160x48."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Static

from engine.config import TrainConfig
from engine.recorder import RunRecorder
from engine.runlog import RunLog, default_runs_dir
from engine.trainer import Trainer
from engine.watch import LogFollower
from tui.app import RnnTuiApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.overlay import OverlayPlot, OverlayScreen
from tui.screens.runs import RunsScreen
from tui.screens.text_prompt import TextPrompt

from test_app import _keys_without_idle_wait, notifications, run_async, wait_for  # noqa: F401
from test_runs import fake_run

SIZES = [(80, 24), (160, 48)]


def watched_app(tmp_path) -> RnnTuiApp:
    """An app on a finished log: no training thread to compete with the test."""
    run = tmp_path / "watched"
    with RunLog(run) as log:
        log.write({"type": "start", "epoch": 0, "config": {"epochs": 1}})
        log.write({"type": "end", "epoch": 0})
    follower = LogFollower(run, poll_s=0.05)
    return RnnTuiApp(TrainConfig(), trainer_factory=lambda *a, **k: follower, record=False)


def three_runs():
    root = default_runs_dir()
    fake_run(root, "20260101-000000-[b]bold[i]", [20.0, 9.0, 5.0], [21.0, 10.0, 8.0],
             config={"num_hiddens": 256})
    fake_run(root, "20260102-000000-plain", [18.0, 7.0, 4.0], [19.0, 9.0, 9.5])
    fake_run(root, "20260103-000000-fast", [15.0, 6.0], [16.0, 8.0], end=None, speed=9000.0)
    return root


def rows(screen: RunsScreen) -> list[str]:
    return [r.name for r in screen.shown]


async def open_browser(pilot, app) -> RunsScreen:
    await wait_for(pilot, lambda: app.info is not None, what="the app")
    await pilot.press("b")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.runs,
                   what="the run browser")
    return app.screen


@pytest.mark.parametrize("size", SIZES)
@run_async
async def test_browser_lists_sorts_filters_and_overlays(tmp_path, size, monkeypatch):
    monkeypatch.setenv("COLORTERM", "truecolor")
    three_runs()
    app = watched_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await open_browser(pilot, app)
        assert rows(screen) == ["20260103-000000-fast", "20260102-000000-plain",
                                "20260101-000000-[b]bold[i]"]  # newest first
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        # A name is shown literally; the settings that differ are highlighted.
        name = table.get_cell_at((2, 1))
        assert name.plain == "20260101-000000-[b]bold[i]" and not name.spans
        settings = table.get_cell_at((2, 8))
        assert "h=256" in settings.plain
        highlighted = {settings.plain[s.start:s.end] for s in settings.spans
                       if "bold" in str(s.style)}
        assert highlighted == {"h=256", "epochs=3"}
        assert "3 of 3 runs" in str(screen.query_one("#runs-note", Static).render())
        # Type to filter.
        await pilot.press("2", "5", "6")
        assert screen.query_one(Input).value == "256"
        assert rows(screen) == ["20260101-000000-[b]bold[i]"]
        await pilot.press("escape")  # back to the table, the filter kept
        assert table.has_focus and table.row_count == 1
        screen.query_one(Input).value = ""
        await pilot.pause()
        await pilot.press("s", "s")  # date -> name -> best train
        assert "sorted by best train" in str(screen.query_one("#runs-note", Static).render())
        assert rows(screen)[0] == "20260102-000000-plain"
        assert screen.current().name == "20260101-000000-[b]bold[i]"  # the cursor stayed on it
        table.move_cursor(row=0)
        await pilot.press("space", "down", "space")
        assert len(screen.marked) == 2 and table.get_cell_at((0, 0)).plain == "✓"
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen), what="the overlay")
        overlay = app.screen
        assert [r.name for r in overlay.runs] == ["20260102-000000-plain",
                                                  "20260101-000000-[b]bold[i]"]
        legend = overlay.query_one("#overlay-legend", Static).render()
        assert "[b]bold[i]" in str(legend) and "1 ━━" in str(legend)
        plot = overlay.query_one(OverlayPlot)
        assert plot.log and plot.x == "epochs"
        await pilot.press("l", "x")
        assert not plot.log and plot.x == "seconds"
        await pilot.pause()
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, RunsScreen)


@run_async
async def test_without_truecolour_the_overlay_marks_each_run(tmp_path, monkeypatch):
    """Colours may run together (or be grey): each run's curves carry its number (train) and
    letter (validation), in the plot and in the legend."""
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    three_runs()
    app = watched_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot, app)
        await pilot.press("space", "down", "space", "v")
        await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen), what="the overlay")
        legend = str(app.screen.query_one("#overlay-legend", Static).render())
        assert "1 11 " in legend and "2 22 " in legend and "aa" in legend and "bb" in legend
        plot = app.screen.query_one(OverlayPlot)
        assert plot.markers
        await pilot.pause()
        assert "a" in plot.plt.build() and "b" in plot.plt.build()  # the validation curves
        plot.markers = False
        await pilot.pause()
        assert "a" not in plot.plt.build() and "b" not in plot.plt.build()
        assert "━" not in legend


@run_async
async def test_rename_delete_and_add_a_directory(tmp_path):
    root = three_runs()
    other = tmp_path / "elsewhere"
    fake_run(other, "20250101-000000-old", [30.0, 12.0])
    app = watched_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot, app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the rename prompt")
        app.screen.query_one(Input).value = "renamed-run"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "renamed-run" in rows(screen), what="the new name")
        assert (root / "renamed-run" / "metrics.jsonl").is_file()
        assert not (root / "20260103-000000-fast").exists()
        # Delete asks first; n keeps the run.
        target = screen.current()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("n")
        assert target.path.exists()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: len(screen.runs) == 2, what="one run fewer")
        assert not target.path.exists()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the add prompt")
        app.screen.query_one(Input).value = str(other)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.runs) == 3, what="the added directory's run")
        assert "20250101-000000-old" in rows(screen) and app.run_roots == [other]


@run_async
async def test_open_resumes_a_runs_checkpoint(tmp_path, timemachine_corpus):
    config = TrainConfig(num_hiddens=32, max_tokens=2000, batch_size=8, num_steps=10, epochs=2,
                         sample_every=100, threads=1)
    trainer = Trainer(config, corpus=timemachine_corpus)
    recorder = RunRecorder(trainer, runs_root=default_runs_dir())
    trainer.run()
    recorder.close()
    app = RnnTuiApp(config.replace(epochs=10_000), timemachine_corpus)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_browser(pilot, app)
        assert rows(screen) == [recorder.run_dir.name]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.last_snapshot is not None
                       and app.last_snapshot.epoch >= 2
                       and "resumed at epoch 2" in str(app.query_one("#status-notes").render()),
                       what="the resumed run")
        await pilot.press("q")
    assert app.return_code == 0


@run_async
async def test_watching_cannot_open_a_run(tmp_path):
    three_runs()
    app = watched_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot, app)
        await pilot.press("o", "z")  # not commands of the browser: they start the filter
        assert screen.query_one(Input).value == "oz" and rows(screen) == []
        await pilot.press("escape", "escape")
        assert not isinstance(app.screen, RunsScreen)
        await pilot.press("o")
        await pilot.pause(0.1)
        assert any(n.startswith("Read-only") for n in notifications(app))


@run_async
async def test_marks_outlive_the_browser_and_come_first_in_the_pickers(tmp_path):
    """Runs marked in the browser stay marked when it opens again, and the checkpoint
    pickers (open, and the surprise view's compare) list them first, with a ✓."""
    from tui.screens.checkpoints import CheckpointPicker
    from tui.screens.comparing import ComparePicker

    root = default_runs_dir()
    for name in ("20260101-000000-older", "20260102-000000-newer"):
        trainer = Trainer(TrainConfig(num_hiddens=8, max_tokens=500, batch_size=4, num_steps=5,
                                      epochs=1, threads=1, sample_every=100))
        trainer.run()
        (root / name).mkdir(parents=True)
        trainer.save(root / name / "checkpoint.pt")
        fake_run(root, name, [20.0, 9.0])
    older = root / "20260101-000000-older"
    app = watched_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot, app)
        assert rows(screen) == ["20260102-000000-newer", "20260101-000000-older"]
        await pilot.press("down", "space", "escape")
        assert app.marked_runs == {older}
        screen = await open_browser(pilot, app)
        assert screen.marked == {older} and "1 marked" in str(screen.query_one("#runs-note")
                                                              .render())
        await pilot.press("escape")
        for kind in (CheckpointPicker, ComparePicker):
            app.push_screen(app.checkpoint_picker(kind))
            await wait_for(pilot, lambda: isinstance(app.screen, kind) and app.screen.paths,
                           what="the picker's list")
            picker = app.screen
            assert picker.paths == [older / "checkpoint.pt", root / "20260102-000000-newer"
                                    / "checkpoint.pt"]
            table = picker.query_one(DataTable)
            first, second = table.get_row_at(0), table.get_row_at(1)
            assert first[0] == "✓" and str(first[4]) == "20260101-000000-older"
            assert second[0] == "" and str(second[4]) == "20260102-000000-newer"
            note = str(picker.query_one("#picker-note").render())
            assert "✓ the runs marked in the run browser" in note
            assert "other run director" not in note  # the marked runs are in the runs dir
            await pilot.press("escape")
        # Unmarking is kept too.
        await open_browser(pilot, app)
        await pilot.press("down", "space", "escape")
        assert app.marked_runs == frozenset()


@run_async
async def test_control_characters_in_a_runs_name_are_shown_never_sent(tmp_path, monkeypatch):
    """A directory named with an escape sequence and a tab: the table, the overlay's legend
    and the rename prompt show them as symbols; no cell holds a character a terminal obeys."""
    monkeypatch.setenv("COLORTERM", "truecolor")
    fake_run(default_runs_dir(), "[b]evil x\x1b[31mred\ty", [20.0, 9.0],
             config={"corpus": "c\x1b]0;title\x07.txt"})
    fake_run(default_runs_dir(), "plain", [20.0, 8.0])
    app = watched_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot, app)
        row = [r.name for r in screen.shown].index("[b]evil x\x1b[31mred\ty")
        table = screen.query_one(DataTable)
        table.move_cursor(row=row)
        cells = table.get_row_at(row)
        assert cells[1].plain == "[b]evil x␛[31mred⇥y"
        assert not any(ch in c.plain for c in cells for ch in "\x1b\x07\t")
        assert "c␛]0;title␇.txt" in cells[-3].plain  # the corpus differs: in the settings
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen), what="the overlay")
        legend = app.screen.query_one("#overlay-legend", Static).render()
        assert "[b]evil x␛[31mred⇥y" in str(legend) and "\x1b" not in str(legend)
        await pilot.press("escape", "n")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the rename prompt")
        body = str(app.screen.query_one("#text-prompt-body", Static).render())
        assert "[b]evil x␛[31mred⇥y" in body and "\x1b" not in body
        assert "\x1b" not in app.screen.query_one(Input).value
        await pilot.press("escape", "escape")


@run_async
async def test_the_browser_says_why_an_action_failed_on_its_own_line(tmp_path):
    """Toasts never show over a dialog, and the browser is one: what went wrong (a name that
    cannot be used, a directory that is not there) is a line of the browser's."""
    three_runs()
    app = watched_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot, app)
        line = screen.query_one("#runs-message", Static)
        assert not line.display
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the rename prompt")
        app.screen.query_one(Input).value = "a/b"
        await pilot.press("enter")
        await wait_for(pilot, lambda: line.display and line.region.height, what="the message line")
        assert str(line.render()).startswith("Not renamed: 'a/b' is not a usable name")
        assert line.has_class("-error")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the add prompt")
        app.screen.query_one(Input).value = str(tmp_path / "nowhere")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Not added" in str(line.render()), what="the message")
        assert f"{tmp_path / 'nowhere'} is not a directory." in str(line.render())
        # Once an action works, an earlier message that it failed goes.
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the rename prompt")
        app.screen.query_one(Input).value = "renamed-run"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "renamed-run" in rows(screen), what="the new name")
        assert not line.display
        await pilot.press("escape")


@run_async
async def test_a_run_still_being_written_is_neither_renamed_nor_deleted(tmp_path):
    """The app's own run, or one whose lock a live process holds: its writer would go on in
    the old place (a renamed run came back as a directory holding only a checkpoint)."""
    from engine.rundir import RunLock

    root = three_runs()
    locked = root / "20260102-000000-plain"
    lock = RunLock(locked).acquire()   # as a run writing there holds it
    own = root / "20260103-000000-fast"
    app = watched_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.info is not None, what="the app")
        screen = RunsScreen([root], None, frozenset(), own)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.runs, what="the run browser")
        line = screen.query_one("#runs-message", Static)
        for path, whose in ((own, "this app records to it"),
                            (locked, "a running rnn-tui writes to it")):
            screen.query_one(DataTable).move_cursor(row=rows(screen).index(path.name))
            for key, doing in (("n", "renamed"), ("d", "deleted")):
                await pilot.press(key)
                await wait_for(pilot, lambda: f"Not {doing}" in str(line.render()),
                               what=f"not {doing}")
                assert app.screen is screen and whose in str(line.render())
                assert (path / "metrics.jsonl").is_file()
        # Once the lock is let go, the run can be renamed.
        lock.release()
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), what="the rename prompt")
        await pilot.press("escape", "escape")
