"""Images of what engine.inspect computes: a text coloured by surprise, a heatmap of units over
time, curves on a log axis. SVG is written here, with no dependency; PNG needs matplotlib
(`pip install "rnn-tui[plot]"`).

Every text in a figure comes from a corpus, a checkpoint or a user: it is escaped for XML and
control characters are drawn as visible symbols.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

from .format import visible

SURPRISE_MAX = 5.0   # nats: the colour scale's top (a uniform guess over 28 characters: 3.3)
DIFFERENCE_MAX = 3.0  # nats: the ends of the diverging scale of one model's loss minus another's
NO_VALUE, UNKNOWN = "#dddddd", "#bbbbbb"   # cells with no loss; cells not compared
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"

# (position, (r, g, b)) stops: dark and calm for low values, bright for high ones (viridis-like).
SEQUENTIAL = ((0.0, (68, 1, 84)), (0.5, (33, 145, 140)), (1.0, (253, 231, 37)))
DIVERGING = ((0.0, (49, 54, 149)), (0.5, (247, 247, 247)), (1.0, (165, 0, 38)))
CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


class FigureError(ValueError):
    """An image that cannot be written; the message says why."""


def ramp(x: float, stops=SEQUENTIAL) -> tuple[int, int, int]:
    """The colour at x (0 to 1, clamped) along the stops."""
    x = min(1.0, max(0.0, x)) if math.isfinite(x) else 1.0
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if x <= b:
            f = (x - a) / (b - a)
            r, g, b = (round(u + (v - u) * f) for u, v in zip(ca, cb))
            return r, g, b
    return stops[-1][1]


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def image_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in (".svg", ".png"):
        raise FigureError(f"cannot write {str(path)!r}: the image must end in .svg or .png")
    return suffix[1:]


def _svg(width: float, height: float, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "start", fill="#222",
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{extra}>{escape(s)}</text>')


def _legend(x: float, y: float, width: float, low: str, high: str, stops=SEQUENTIAL) -> list[str]:
    body = []
    n = 40
    for i in range(n):
        body.append(f'<rect x="{x + i * width / n:.1f}" y="{y:.1f}" width="{width / n + 0.5:.1f}" '
                    f'height="10" fill="{hex_colour(ramp(i / (n - 1), stops))}"/>')
    body.append(_text(x, y + 24, low, 11))
    body.append(_text(x + width, y + 24, high, 11, "end"))
    return body


def _write(path: str | Path, content: str) -> Path:
    path = Path(path)
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as e:
        raise FigureError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    return path


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FigureError('PNG images need matplotlib: pip install "rnn-tui[plot]" (or write '
                          'an .svg)') from None
    return plt


def _save_png(fig, path: str | Path) -> Path:
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as e:
        raise FigureError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    finally:
        fig.clf()
        import matplotlib.pyplot as plt
        plt.close(fig)
    return Path(path)


# ---- a text coloured by surprise ---------------------------------------------------------------

def surprise_image(path: str | Path, text: str, losses: Sequence[float], title: str = "",
                   columns: int = 64) -> Path:
    """Each character on a background coloured by the loss of predicting it (the first
    character has none: grey)."""
    cells = []
    for i, ch in enumerate(text):
        if i == 0:
            cells.append((visible(ch), NO_VALUE, "#222", ""))
            continue
        frac = losses[i - 1] / SURPRISE_MAX
        cells.append((visible(ch), hex_colour(ramp(frac)), "white" if frac < 0.45 else "#111",
                      f"{losses[i - 1]:.2f} nats"))
    return _text_image(path, cells, title, columns, SEQUENTIAL, "0 nats (expected)",
                       f"{SURPRISE_MAX:g}+ nats (surprising)",
                       f"loss per character: 0 (dark) to {SURPRISE_MAX:g}+ nats (bright)")


def difference_colour(delta: float) -> tuple[int, int, int]:
    """Blue where B is less surprised than A, white where they agree, red where B is more."""
    return ramp((delta + DIFFERENCE_MAX) / (2 * DIFFERENCE_MAX), DIVERGING)


def difference_mark(delta: float, known: bool = True) -> str:
    """One character for B's loss minus A's, for text without colour: '.' within half a nat,
    '+' / '-' up to 2 nats (B more / less surprised), '▲' / '▼' beyond, '?' not compared."""
    if not known:
        return "?"
    if abs(delta) < 0.5:
        return "."
    if abs(delta) < 2:
        return "+" if delta > 0 else "-"
    return "▲" if delta > 0 else "▼"


DIFFERENCE_MARKS = ("'.' within half a nat, '+' / '-' B more / less surprised by up to 2 nats, "
                    "'▲' / '▼' by more, '?' not in both vocabularies")


def difference_image(path: str | Path, text: str, differences: Sequence[float],
                     known: Sequence[bool], title: str = "", columns: int = 64) -> Path:
    """Each character on a background coloured by B's loss minus A's on it (diverging: blue,
    B less surprised; red, B more). Grey: the first character, and characters one of the
    two vocabularies lacks (marked ?; not compared)."""
    cells = []
    for i, ch in enumerate(text):
        if i == 0:
            cells.append((visible(ch), NO_VALUE, "#222", ""))
        elif not known[i - 1]:
            cells.append((visible(ch), UNKNOWN, "#222", "not in both vocabularies"))
        else:
            d = differences[i - 1]
            ink = "white" if abs(d) / DIFFERENCE_MAX > 0.6 else "#111"
            cells.append((visible(ch), hex_colour(difference_colour(d)), ink,
                          f"B - A: {d:+.2f} nats"))
    caption = "B's loss minus A's: blue, B less surprised; red, more; grey ?: not compared"
    return _text_image(path, cells, title, columns, DIVERGING,
                       f"-{DIFFERENCE_MAX:g} nats: B better",
                       f"+{DIFFERENCE_MAX:g} nats: B worse", caption,
                       marks={UNKNOWN: "?"})


def _text_image(path: str | Path, cells: Sequence[tuple[str, str, str, str]], title: str,
                columns: int, stops, low: str, high: str, caption: str,
                marks: dict[str, str] | None = None) -> Path:
    """A text on coloured cells, with a colour legend: cells are (character, fill, ink,
    tooltip); a cell whose fill is in `marks` also carries that mark in its corner."""
    marks = marks or {}
    rows = [cells[i:i + columns] for i in range(0, len(cells), columns)] or [[]]
    if image_format(path) == "png":
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(columns * 0.16 + 1, len(rows) * 0.28 + 1.2))
        for r, row in enumerate(rows):
            for c, (ch, fill, ink, _) in enumerate(row):
                ax.add_patch(plt.Rectangle((c, -r - 1), 1, 1, color=fill))
                ax.text(c + 0.5, -r - 0.5, ch, ha="center", va="center", family="monospace",
                        fontsize=9, color=ink)
                if fill in marks:
                    ax.text(c + 0.95, -r - 0.05, marks[fill], ha="right", va="top",
                            fontsize=5, color="#c00")
        ax.set_xlim(0, columns)
        ax.set_ylim(-len(rows), 0)
        ax.set_aspect(1.75)  # a terminal's cell: about 1.75 times as high as it is wide
        ax.axis("off")
        ax.set_title(f"{title}\n{caption}", fontsize=9)
        return _save_png(fig, path)
    cw, ch_h, left, top = 11.0, 18.0, 12.0, 40.0
    body = [_text(left, 22, title, 13)]
    for r, row in enumerate(rows):
        for c, (ch, fill, ink, tip) in enumerate(row):
            x, y = left + c * cw, top + r * ch_h
            tip = f"<title>{escape(tip)}</title>" if tip else ""
            body.append(f'<g><rect x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch_h:.1f}" '
                        f'fill="{fill}"/>{tip}</g>')
            body.append(_text(x + cw / 2, y + 13, ch, 13, "middle", ink))
            if fill in marks:
                body.append(_text(x + cw - 0.5, y + 7, marks[fill], 9, "end", "#c00",
                                  extra=' font-weight="bold"'))
    width = left * 2 + columns * cw
    y = top + len(rows) * ch_h + 14
    body += _legend(left, y, min(300, width - 2 * left), low, high, stops)
    if marks:
        body.append(_text(left, y + 40, caption, 11))
    return _write(path, _svg(max(width, 2 * left + 300), y + (52 if marks else 36), body))


# ---- a heatmap: units over time ----------------------------------------------------------------

def heatmap_image(path: str | Path, values: Sequence[Sequence[float]], text: str,
                  title: str = "", unit_labels: Sequence[str] | None = None,
                  low: float = -1.0, high: float = 1.0) -> Path:
    """values[u][t]: unit u after character t (rows: units, columns: the text's characters)."""
    n_units, n_steps = len(values), len(text)
    labels = list(unit_labels) if unit_labels is not None else [str(u) for u in range(n_units)]
    span = (high - low) or 1.0
    if image_format(path) == "png":
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(min(40, 1.5 + n_steps * 0.18), 1.2 + n_units * 0.18))
        ax.imshow([list(row) for row in values], aspect="auto", cmap="RdYlBu_r", vmin=low,
                  vmax=high, interpolation="nearest")
        ax.set_xticks(range(n_steps), [visible(c) for c in text], family="monospace", fontsize=7)
        ax.set_yticks(range(n_units), labels, fontsize=7)
        ax.set_xlabel("the text, one character per column")
        ax.set_ylabel("unit")
        ax.set_title(title, fontsize=9)
        return _save_png(fig, path)
    cw, rh, left, top = 10.0, 10.0, 54.0, 40.0
    body = [_text(8, 22, title, 13)]
    for u, row in enumerate(values):
        y = top + u * rh
        body.append(_text(left - 4, y + rh - 1.5, labels[u], 9, "end"))
        for t, v in enumerate(row):
            colour = hex_colour(ramp((v - low) / span, DIVERGING))
            body.append(f'<rect x="{left + t * cw:.1f}" y="{y:.1f}" width="{cw:.1f}" '
                        f'height="{rh:.1f}" fill="{colour}"><title>unit {escape(labels[u])}, '
                        f'{escape(visible(text[t]))}: {v:.3f}</title></rect>')
    y = top + n_units * rh + 12
    for t, c in enumerate(text):
        body.append(_text(left + t * cw + cw / 2, y, visible(c), 10, "middle"))
    width = left + n_steps * cw + 12
    body += _legend(left, y + 14, min(240, max(120, width - left - 12)), f"{low:g}",
                    f"{high:g}", DIVERGING)
    return _write(path, _svg(max(width, 320), y + 50, body))


# ---- curves on a log axis ---------------------------------------------------------------------

def curves_image(path: str | Path, series: dict[str, Sequence[float]], title: str = "",
                 xlabel: str = "time step", ylabel: str = "norm", log: bool = True) -> Path:
    """One line per series against 1..n; a log y axis by default (zeros are left out)."""
    if image_format(path) == "png":
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (name, ys) in enumerate(series.items()):
            pts = [(x + 1, y) for x, y in enumerate(ys) if not log or y > 0]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name,
                    color=CURVE_COLOURS[i % len(CURVE_COLOURS)])
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        return _save_png(fig, path)
    values = [y for ys in series.values() for y in ys if math.isfinite(y) and (y > 0 or not log)]
    n = max((len(ys) for ys in series.values()), default=1)
    if not values:
        values = [1.0]
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    lo, hi = f(min(values)), f(max(values))
    if log:
        lo, hi = math.floor(lo), math.ceil(hi)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    right = max(150.0, 40.0 + 7.0 * max((len(name) for name in series), default=0))
    W, H, left, top, bottom = 490.0 + right, 360.0, 70.0, 36.0, 46.0
    pw, ph = W - left - right, H - top - bottom

    def px(x: float) -> float:
        return left + (x - 1) / max(1, n - 1) * pw

    def py(v: float) -> float:
        return top + ph - (f(v) - lo) / (hi - lo) * ph

    body = [_text(8, 22, title, 13),
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
    ticks = [10.0 ** e for e in range(int(lo), int(hi) + 1)] if log else \
        [lo + (hi - lo) * i / 4 for i in range(5)]
    for v in ticks:
        y = py(v)
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(_text(left - 6, y + 4, f"{v:.0e}" if log else f"{v:.3g}", 10, "end"))
    for x in sorted({1, n, *(round(1 + (n - 1) * i / 4) for i in range(5))}):
        body.append(_text(px(x), top + ph + 16, str(x), 10, "middle"))
    body.append(_text(left + pw / 2, H - 8, xlabel, 11, "middle"))
    body.append(_text(14, top + ph / 2, ylabel, 11, "middle",
                      extra=f' transform="rotate(-90 14 {top + ph / 2:.1f})"'))
    for i, (name, ys) in enumerate(series.items()):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        pts = [(px(x + 1), py(y)) for x, y in enumerate(ys)
               if math.isfinite(y) and (y > 0 or not log)]
        if pts:
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="'
                        + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        ly = top + 14 + i * 18
        body.append(f'<line x1="{left + pw + 10}" x2="{left + pw + 30}" y1="{ly - 4}" '
                    f'y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        body.append(_text(left + pw + 34, ly, name, 11))
    return _write(path, _svg(W, H, body))
