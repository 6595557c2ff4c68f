"""Line charts and histograms as inline SVG text, for a report that opens with no network.

matplotlib is not a dependency (and not worth one for two chart types); these charts are plain
SVG elements a browser draws itself: axes with "nice" ticks, light grid lines, one polyline per
series and a legend. stdlib + numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 12, 44  # margins; the right one holds the legend
# Colour-blind friendly (Okabe-Ito), in the order series are given.
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) that cover
    ``[low, high]``; the first and last tick become the axis limits, so data never touches a
    frame edge at an odd number."""
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    if high < low:
        low, high = high, low
    if high == low:  # a flat series still needs an axis
        pad = abs(low) * 0.1 or 0.5
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def _tick_label(value: float) -> str:
    return f"{value:.6g}"


class _Frame:
    """Maps data coordinates to SVG pixels inside the plot area and draws the axes."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray):
        # y spans whole ticks (room above and below the data); x spans the data exactly (steps
        # 0..1190 end at 1190, not at 1500), with the ticks that fall inside it
        self.y_ticks = nice_ticks(float(np.min(ys)), float(np.max(ys))) if ys.size else nice_ticks(0, 1)
        self.y0, self.y1 = self.y_ticks[0], self.y_ticks[-1]
        x0, x1 = (float(np.min(xs)), float(np.max(xs))) if xs.size else (0.0, 1.0)
        ticks = nice_ticks(x0, x1)
        if x1 > x0:
            ticks = [t for t in ticks if x0 - 1e-9 * (x1 - x0) <= t <= x1 + 1e-9 * (x1 - x0)]
        else:
            x0, x1 = ticks[0], ticks[-1]
        self.x_ticks, self.x0, self.x1 = ticks, x0, x1

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return HEIGHT - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str) -> list[str]:
        left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
        parts = []
        for y in self.y_ticks:
            p = self.py(y)
            parts.append(f'<line x1="{left}" y1="{p:.1f}" x2="{right}" y2="{p:.1f}" stroke="#e4e4e4"/>')
            parts.append(f'<text x="{left - 6}" y="{p + 4:.1f}" text-anchor="end">{_tick_label(y)}</text>')
        for x in self.x_ticks:
            p = self.px(x)
            parts.append(f'<line x1="{p:.1f}" y1="{bottom}" x2="{p:.1f}" y2="{bottom + 5}" stroke="#444"/>')
            parts.append(f'<text x="{p:.1f}" y="{bottom + 18}" text-anchor="middle">{_tick_label(x)}</text>')
        parts.append(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#444"/>')
        parts.append(f'<text x="{(left + right) / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>')
        parts.append(f'<text transform="translate(14 {(top + bottom) / 2:.1f}) rotate(-90)" text-anchor="middle">'
                     f'{escape(y_label)}</text>')
        return parts

    def polyline(self, xs: Sequence[float], ys: Sequence[float], colour: str) -> str:
        points = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in zip(xs, ys))
        return f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"/>'


def _legend(names: Sequence[str]) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        y = TOP + 14 + 18 * i
        x = WIDTH - RIGHT + 12
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="{colour}" stroke-width="2.5"/>')
        parts.append(f'<text x="{x + 24}" y="{y}">{escape(name)}</text>')
    return parts


def _svg(title: str, parts: list[str]) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'font-family="sans-serif" font-size="11" fill="#222"><title>{escape(title)}</title>'
            + "".join(parts) + "</svg>")


def line_chart(title: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
               x_label: str = "step", y_label: str = "") -> str:
    """One polyline per named series, through its finite ``(x, y)`` points only: a value that
    was not measured at some step (NaN) is left out rather than drawn as a drop to zero."""
    cleaned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (xs, ys) in series.items():
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        keep = np.isfinite(xs) & np.isfinite(ys)
        cleaned[name] = (xs[keep], ys[keep])
    frame = _Frame(np.concatenate([x for x, _ in cleaned.values()] or [np.zeros(0)]),
                   np.concatenate([y for _, y in cleaned.values()] or [np.zeros(0)]))
    parts = frame.axes(x_label, y_label)
    for i, (xs, ys) in enumerate(cleaned.values()):
        if xs.size:
            parts.append(frame.polyline(xs.tolist(), ys.tolist(), COLOURS[i % len(COLOURS)]))
    return _svg(title, parts + _legend(list(cleaned)))


def histogram_chart(title: str, edges: np.ndarray, series: Mapping[str, np.ndarray], x_label: str) -> str:
    """Step lines of each series' share of samples per bin (counts / total), so sets of
    different sizes (say 200 real and 1000 generated volumes) are drawn on one scale. A bin
    ``[e_i, e_i+1)`` is two points, ``(e_i, share)`` and ``(e_i+1, share)``."""
    edges = np.asarray(edges, dtype=np.float64)
    shares = {}
    for name, counts in series.items():
        counts = np.asarray(counts, dtype=np.float64)
        total = counts.sum()
        shares[name] = counts / total if total > 0 else np.zeros_like(counts)
    all_shares = np.concatenate([np.zeros(1), *shares.values()])
    frame = _Frame(edges, all_shares)
    parts = frame.axes(x_label, "share of samples")
    for i, share in enumerate(shares.values()):
        xs = np.stack([edges[:-1], edges[1:]], axis=1).ravel()
        ys = np.repeat(share, 2)
        parts.append(frame.polyline(xs.tolist(), ys.tolist(), COLOURS[i % len(COLOURS)]))
    return _svg(title, parts + _legend(list(shares)))
