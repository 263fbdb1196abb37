"""Start-up: the command answers and the app shows itself before PyTorch has loaded.

Importing torch takes seconds. `--help`, `--version`, `--print-config` and a bad flag never
import it; the app draws its first frame first, and its training thread imports torch.
These run in fresh interpreters, since this one has long imported torch.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]

# Runs main() with each argv in one interpreter and reports, after each, its exit status and
# whether torch (or textual) had been imported.
CLI_PROBE = """
import contextlib, io, json, sys
from tui.cli import main
report = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    report.append({"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue(),
                   "torch": "torch" in sys.modules, "textual": "textual" in sys.modules})
print(json.dumps(report))
"""


def run_python(code: str, *args: str, timeout: float = 120, env: dict | None = None):
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_help_version_print_config_and_bad_flags_never_import_torch(tmp_path):
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("hiden = 3\n")
    argvs = [["--help"], ["train", "--help"], ["generate", "--help"], ["--version"],
             ["--print-config"], ["--print-config", "--hidden", "64"],
             ["--hidden", "0"], ["--lr", "abc"], ["--no-such-flag"],
             ["--config", str(bad_config)], ["generate", "--temperature", "1000"]]
    result = run_python(CLI_PROBE, json.dumps(argvs))
    assert result.returncode == 0, result.stderr
    report = {tuple(r["argv"]): r for r in json.loads(result.stdout)}
    for argv, r in report.items():
        assert not r["torch"], f"rnn-tui {' '.join(argv)} imported torch"
        assert not r["textual"], f"rnn-tui {' '.join(argv)} imported textual"
    assert report[("--help",)]["code"] == 0 and "--hidden" in report[("--help",)]["out"]
    assert report[("--version",)]["out"].startswith("rnn-tui ")
    printed = report[("--print-config", "--hidden", "64")]
    assert printed["code"] == 0 and "64" in printed["out"]
    assert report[("--hidden", "0")]["code"] == 2
    assert "num_hiddens must be a positive integer" in report[("--hidden", "0")]["err"]
    assert report[("--no-such-flag",)]["code"] == 2
    assert "hiden: unknown setting" in report[("--config", str(bad_config))]["err"]
    assert "temperature must be between 0" in report[("generate", "--temperature", "1000")]["err"]


# The app in a fresh interpreter, with the import of torch held back until the test has
# looked at the screen: what it shows then was drawn before torch was there.
FIRST_FRAME_PROBE = """
import asyncio, json, sys, threading
go = threading.Event()
importer = []

class HoldTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not importer:
            importer.append(threading.current_thread())
            go.wait(60)
        return None

sys.meta_path.insert(0, HoldTorch())
from engine.config import TrainConfig
from tui.app import RnnTuiApp
from tui.widgets.status_bar import StatusBar
report = {"torch_after_app_import": "torch" in sys.modules}

async def main():
    app = RnnTuiApp(TrainConfig(num_hiddens=16, max_tokens=2000, batch_size=8, num_steps=10,
                                epochs=100000, threads=1))
    async with app.run_test(size=(100, 32)) as pilot:
        while not importer:
            await pilot.pause(0.02)
        await pilot.pause(0.2)
        report["while_loading"] = str(app.query_one("#status-run").render())
        report["torch_while_loading"] = "torch" in sys.modules
        report["devices_while_loading"] = app.query_one("#hyperparams").devices
        await pilot.press("question_mark")  # the UI answers while torch is held back
        report["help_while_loading"] = type(app.screen).__name__
        await pilot.press("escape")
        go.set()
        for _ in range(1200):
            if app.last_snapshot is not None and app.last_snapshot.epoch >= 1:
                break
            await pilot.pause(0.05)
        report["epoch"] = app.last_snapshot.epoch if app.last_snapshot else None
        from engine.devices import available_devices
        await pilot.pause(0.2)
        report["devices"] = app.query_one("#hyperparams").devices
        report["devices_found"] = ["auto", *available_devices()]
        report["imported_on_main_thread"] = importer[0] is threading.main_thread()
        report["imported_on_training_thread"] = importer[0] is app.trainer.thread
        await pilot.press("q")
    report["return_code"] = app.return_code

asyncio.run(main())
print(json.dumps(report))
"""


def test_the_first_frame_is_drawn_before_torch_loads_on_the_training_thread():
    result = run_python(FIRST_FRAME_PROBE, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["torch_after_app_import"] is False
    assert report["torch_while_loading"] is False
    assert "rnn-tui" in report["while_loading"] and "loading PyTorch…" in report["while_loading"]
    assert report["help_while_loading"] == "HelpScreen"
    # The device field offers what is certain until torch can say which devices there are.
    assert report["devices_while_loading"] == ["auto", "cpu"]
    assert report["devices"] == report["devices_found"]
    assert report["epoch"] is not None and report["epoch"] >= 1
    assert report["imported_on_main_thread"] is False
    assert report["imported_on_training_thread"] is True
    assert report["return_code"] == 0


class SlowTrainer:
    """Stands in for a trainer whose thread is still importing torch when the user quits."""

    read_only = False
    released = threading.Event()
    built: list["SlowTrainer"] = []

    def __init__(self, config, corpus=None):
        self.released.wait(30)
        self.config, self.info, self.ran = config, None, False
        self.built.append(self)

    def run(self, keep_alive: bool = False):
        self.ran = True


def test_quitting_while_torch_loads_ends_at_once_and_never_trains():
    from tui.app import RnnTuiApp

    async def scenario() -> RnnTuiApp:
        app = RnnTuiApp(TrainConfig(num_hiddens=16), trainer_factory=SlowTrainer)
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause(0.2)
            assert app.trainer is None  # still being built
            started = time.monotonic()
            await pilot.press("q")
            SlowTrainer.released.set()  # the import finishes after the app has quit
        assert time.monotonic() - started < 10
        return app

    app = asyncio.run(scenario())
    assert app.return_code == 0
    assert app.run_ended.wait(10)  # the worker ended, so the process can exit
    assert len(SlowTrainer.built) == 1 and not SlowTrainer.built[0].ran
    assert app.trainer is None and app.last_snapshot is None
