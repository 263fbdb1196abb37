"""The engine never imports the UI; the app's files are where the package expects them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_importing_the_engine_pulls_in_no_textual():
    code = ("import engine, engine.trainer, engine.fast, engine.generate, engine.corpus, "
            "engine.data, engine.config; import sys; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'tui')); "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_stylesheet_is_found_from_a_source_checkout():
    from tui.paths import STYLESHEET, styles_dir
    assert styles_dir() == REPO / "assets" / "styles"
    assert STYLESHEET.is_file()


def test_every_widget_and_screen_has_its_own_module():
    import importlib
    for package in ("tui.widgets", "tui.screens"):
        folder = REPO / package.replace(".", "/")
        for path in folder.glob("*.py"):
            if path.name != "__init__.py":
                importlib.import_module(f"{package}.{path.stem}")
    from tui.app import RnnTuiApp
    assert RnnTuiApp.CSS_PATH.suffix == ".tcss"
