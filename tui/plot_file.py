"""Perplexity curves of several runs as an image file: SVG drawn here, PNG with matplotlib.

Training curves are solid, validation curves dashed, one colour per run, with a legend. Run
names are untrusted text: escaped in the SVG, passed as plain labels to matplotlib.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

from engine.files import atomic_write
from engine.runs import RunSummary

# Distinct colours (Tableau 10), the same order in the terminal overlay.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
X_AXES = ("epochs", "seconds")


class PlotError(ValueError):
    """An image that cannot be written; one line that says why."""


def series(run: RunSummary, x: str) -> list[tuple[str, list[tuple[float, float]]]]:
    """[("train", points), ("validation", points)] of a run, finite points only."""
    xs = run.curve.epochs if x == "epochs" else run.curve.seconds
    out = []
    for label, ys in (("train", run.curve.train), ("validation", run.curve.val)):
        points = [(float(a), float(b)) for a, b in zip(xs, ys)
                  if b is not None and math.isfinite(b) and b > 0]
        if points:
            out.append((label, points))
    return out


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round values between lo and hi, at most about `most` of them."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, most - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5, 10, 20, 50... between lo and hi (perplexities on a log axis)."""
    ticks = [m * 10.0 ** e for e in range(-1, 10) for m in (1, 2, 5)]
    inside = [t for t in ticks if lo <= t <= hi]
    return inside if len(inside) >= 2 else [lo, hi]


def svg(runs: Sequence[RunSummary], x: str = "epochs", log: bool = True,
        width: int = 860, height: int = 500) -> str:
    """The curves as an SVG document."""
    left, right, top, bottom = 64, 20, 30, 50
    legend_rows = sum(len(series(r, x)) for r in runs)
    height += 18 * legend_rows
    plot_h = height - top - bottom - 18 * legend_rows
    plot_w = width - left - right
    points = [p for r in runs for _, pts in series(r, x) for p in pts]
    if not points:
        raise PlotError("none of these runs has a finished epoch to plot")
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    if x == "epochs":
        x_lo = min(x_lo, 1.0)
    if x_hi <= x_lo:
        x_hi = x_lo + 1
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    if log:
        y_lo, y_hi = max(1.0, y_lo) / 1.05, y_hi * 1.05
        fy = math.log10
    else:
        y_lo, y_hi = max(0.0, y_lo - 0.05 * (y_hi - y_lo)), y_hi + 0.05 * (y_hi - y_lo) + 1e-9
        fy = float
    if fy(y_hi) <= fy(y_lo):
        y_hi = y_lo * 1.1 + 0.1

    def px(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * plot_w

    def py(v: float) -> float:
        return top + plot_h - (fy(max(v, y_lo)) - fy(y_lo)) / (fy(y_hi) - fy(y_lo)) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">perplexity'
           f'{" (log scale)" if log else ""}</text>']
    yt = log_ticks(y_lo, y_hi) if log else nice_ticks(y_lo, y_hi)
    for t in yt:
        y = py(t)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in nice_ticks(x_lo, x_hi):
        xv = px(t)
        out.append(f'<line x1="{xv:.1f}" y1="{top}" x2="{xv:.1f}" y2="{top + plot_h}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{xv:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{t:g}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
               'stroke="#444"/>')
    out.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 34}" text-anchor="middle">'
               f'{"epoch" if x == "epochs" else "training seconds"}</text>')
    legend_y = top + plot_h + 56
    for i, run in enumerate(runs):
        colour = PALETTE[i % len(PALETTE)]
        for label, pts in series(run, x):
            dash = ' stroke-dasharray="6 4"' if label == "validation" else ""
            path = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                       f'stroke-width="1.6"{dash}/>')
            out.append(f'<line x1="{left}" y1="{legend_y - 4}" x2="{left + 30}" '
                       f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"{dash}/>')
            out.append(f'<text x="{left + 38}" y="{legend_y}">{escape(run.name)} · {label}</text>')
            legend_y += 18
    out.append("</svg>")
    return "\n".join(out) + "\n"


def png(runs: Sequence[RunSummary], path: Path, x: str = "epochs", log: bool = True) -> None:
    """The curves as a PNG, with matplotlib (the optional `plot` extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        raise PlotError("writing PNG needs matplotlib (pip install 'rnn-tui[plot]'); "
                        "an .svg file needs nothing more") from None
    if not any(series(r, x) for r in runs):
        raise PlotError("none of these runs has a finished epoch to plot")
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=100)
    for i, run in enumerate(runs):
        for label, pts in series(run, x):
            ax.plot([a for a, _ in pts], [b for _, b in pts], color=PALETTE[i % len(PALETTE)],
                    linestyle="--" if label == "validation" else "-",
                    label=f"{run.name} · {label}".replace("$", r"\$"))  # no mathtext
    if log:  # ticks at 1, 2, 5, 10... written plainly (not 2x10^1)
        from matplotlib.ticker import FixedLocator, NullFormatter
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ticks = log_ticks(lo, hi)
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.set_yticklabels([f"{t:g}" for t in ticks])
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("epoch" if x == "epochs" else "training seconds")
    ax.set_ylabel("perplexity")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_plot(runs: Sequence[RunSummary], path: str | Path, x: str = "epochs",
               log: bool = True) -> Path:
    """Write an .svg or .png of the runs' curves. Raises PlotError."""
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise PlotError(f"{p.name!r}: the plot file must end in .svg or .png")
    try:
        if suffix == ".svg":
            data = svg(runs, x, log).encode("utf-8")
            atomic_write(p, lambda f: f.write(data))
        else:
            png(runs, p, x, log)
    except OSError as e:
        raise PlotError(f"cannot write {str(p)!r}: {e.strerror or e}") from None
    return p
