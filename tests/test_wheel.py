"""The package as people install it: `python -m build`, the wheel in a fresh venv, run from
a folder with no checkout in sight.

The fresh venv holds only rnn-tui (installed from the wheel with --no-deps); its
dependencies (torch, textual, ...) come from this interpreter's site-packages through a
.pth file, so the test needs no network and no second copy of torch. The wheel's own files
come first on sys.path, and the test checks that engine and tui are imported from the venv:
the book's corpus and the stylesheets must be inside the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--max-tokens", "2000", "--hidden", "16", "--batch-size", "8",
        "--num-steps", "10", "--threads", "1"]

# The installed app, driven for a moment by Textual's pilot; prints what it saw as JSON.
APP_SMOKE = """
import asyncio, json, sys
import engine, tui
from engine.config import TrainConfig
from tui.app import RnnTuiApp
from tui.paths import STYLESHEET

async def main():
    app = RnnTuiApp(TrainConfig(num_hiddens=16, max_tokens=2000, batch_size=8, num_steps=10,
                                epochs=100000, threads=1))
    async with app.run_test(size=(100, 32)) as pilot:
        for _ in range(1200):
            if app.last_snapshot is not None and app.last_snapshot.epoch >= 1:
                break
            await pilot.pause(0.05)
        status = str(app.query_one("#status-run").render())
        await pilot.press("q")
    print(json.dumps({"engine": engine.__file__, "tui": tui.__file__,
                      "stylesheet": str(STYLESHEET), "stylesheet_found": STYLESHEET.is_file(),
                      "epoch": app.last_snapshot.epoch if app.last_snapshot else None,
                      "status": status, "return_code": app.return_code}))

asyncio.run(main())
"""


def run(argv, cwd: Path, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_the_wheel_installs_and_runs_with_no_checkout_beside_it(tmp_path):
    pytest.importorskip("build", reason="`build` comes with the dev extra: pip install '.[dev]'")
    pytest.importorskip("hatchling", reason="`hatchling` comes with the dev extra")
    dist = tmp_path / "dist"
    # sdist, then the wheel built from the sdist (so the sdist is proven complete too);
    # --no-isolation uses the dev extra's hatchling instead of downloading one.
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)],
        cwd=tmp_path, env=dict(os.environ))
    wheel = next(dist.glob("rnn_tui-*.whl"))
    sdist = next(dist.glob("rnn_tui-*.tar.gz"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"engine/corpora/timemachine.txt", "tui/styles/app.tcss"} <= names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        assert f"{top}/engine/corpora/timemachine.txt" in tar.getnames()

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=tmp_path, env={}).stdout.strip())
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)], cwd=tmp_path, env=dict(os.environ))
    # The dependencies: this interpreter's site-packages, after the venv's own.
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz_test_dependencies.pth").write_text("\n".join(deps) + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "LANG": "C.UTF-8"}
    rnn_tui = str(env_dir / "bin" / "rnn-tui")

    assert "--hidden" in run([rnn_tui, "--help"], cwd=work, env=env).stdout
    assert run([rnn_tui, "--version"], cwd=work, env=env).stdout.startswith("rnn-tui ")

    headless = run([rnn_tui, "train", "--headless", *TINY], cwd=work, env=env).stdout
    assert "corpus timemachine: 178,979 characters" in headless
    assert "vocabulary 28" in headless and "tokens/sec" in headless
    assert list((tmp_path / "data" / "rnn-tui" / "runs").glob("*/checkpoint.pt"))

    smoke = json.loads(run([str(python), "-c", APP_SMOKE], cwd=work, env=env)
                       .stdout.strip().splitlines()[-1])
    for module in ("engine", "tui", "stylesheet"):
        assert Path(smoke[module]).is_relative_to(site), f"{module} came from {smoke[module]}"
    assert smoke["stylesheet_found"] and smoke["epoch"] >= 1 and smoke["return_code"] == 0
    assert "timemachine" in smoke["status"] and "vocab 28" in smoke["status"]
