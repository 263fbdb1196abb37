"""Where the app's files are, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path


def styles_dir() -> Path:
    """The stylesheets: `tui/styles` in an installed wheel (pyproject force-includes
    assets/styles there), else `assets/styles` of the source checkout (editable installs)."""
    packaged = Path(__file__).parent / "styles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / "assets" / "styles"


STYLESHEET = styles_dir() / "app.tcss"


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name the same file or directory (links and `..` resolved)."""
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
