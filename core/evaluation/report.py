"""report.html: one self-contained page that says whether synthetic data is any good.

Every metric sits beside its real-vs-real reference (real train against real held-out), since
"FD = 12.3" means nothing alone; a verdict cell reads the two together by a rule the table itself
states. Pictures are embedded as base64 PNG and charts as inline SVG (core/evaluation/svg_plots.py), so the
file opens from a folder, e-mail or archive with no network and nothing beside it. No JavaScript.

numpy + OpenCV + stdlib only, like core/files/grids.py, whose pictures this page shows.
"""

from __future__ import annotations

import base64
import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.svg_plots import histogram_chart, line_chart
from synthscape.core.evaluation.verdicts import MetricRow, judge, rule_text
from synthscape.core.files.atomic import write_text
from synthscape.core.files.grids import encode_png, grid, three_planes


@dataclass
class Figure:
    """A uint8 picture, grey ``[H, W]`` or RGB ``[H, W, 3]`` (as core.grids.grid makes them)."""

    title: str
    picture: np.ndarray
    caption: str = ""

    def __post_init__(self) -> None:
        p = np.asarray(self.picture)
        if p.dtype != np.uint8 or not (p.ndim == 2 or (p.ndim == 3 and p.shape[2] == 3)) or 0 in p.shape:
            raise SynthscapeError(f"figure {self.title!r} needs a uint8 [H, W] or [H, W, 3] picture, "
                                  f"got {p.dtype} {list(p.shape)}")
        self.picture = p


@dataclass
class Curve:
    """Named ``(x, y)`` series drawn as lines on one chart (e.g. both GAN losses over steps)."""

    title: str
    series: dict[str, tuple[Sequence[float], Sequence[float]]]
    x_label: str = "step"
    y_label: str = ""

    def __post_init__(self) -> None:
        for name, (xs, ys) in self.series.items():
            if len(xs) != len(ys):
                raise SynthscapeError(f"curve {self.title!r}, series {name!r}: {len(xs)} x values but {len(ys)} y values")


@dataclass
class Histogram:
    """Counts per bin for several sets over shared ``edges`` (N + 1 edges for N counts)."""

    title: str
    edges: np.ndarray
    series: dict[str, np.ndarray]
    x_label: str

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, dtype=np.float64)
        if self.edges.ndim != 1 or self.edges.size < 2 or np.any(np.diff(self.edges) <= 0):
            raise SynthscapeError(f"histogram {self.title!r} needs increasing 1D edges, got {self.edges.tolist()}")
        for name, counts in self.series.items():
            counts = np.asarray(counts)
            if counts.shape != (self.edges.size - 1,) or np.any(counts < 0):
                raise SynthscapeError(f"histogram {self.title!r}, series {name!r}: expected {self.edges.size - 1} "
                                      f"non-negative counts, got shape {list(counts.shape)}")


Item = Figure | Curve | Histogram


@dataclass
class Report:
    """What ``render`` puts on the page: a title, ``summary`` as key/value lines (domain, model,
    run time ...), the metrics table, then named sections of pictures and charts, in order."""

    title: str
    summary: dict[str, str]
    metrics: list[MetricRow]
    sections: list[tuple[str, list[Item]]] = field(default_factory=list)


# -- numbers ---------------------------------------------------------------------------------------

def format_value(value: float | None) -> str:
    """Four significant digits: enough to compare with the reference, few enough to read."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    if 1e4 <= abs(value) < 1e7:
        return f"{value:.0f}"
    return f"{value:.3e}"


# -- pictures made for the report ------------------------------------------------------------------

def slice_montage(volume: np.ndarray, slices: int = 5, min_side: int = 64) -> np.ndarray:
    """``[1, X, Y, Z]`` or ``[X, Y, Z]`` in [-1, 1] -> uint8 picture: one row per plane (axial,
    coronal, sagittal), ``slices`` evenly spaced interior slices each, so a lesion away from the
    middle planes (which is all core.grids.three_planes shows) is still seen.

    Each slice is cut by three_planes itself, from the volume with that one slice repeated along
    its axis (so whichever index three_planes takes, it is this slice): orientation and padding
    are exactly those of every other view in synthscape.
    """
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim == 3:
        volume = volume[None]
    if volume.ndim != 4 or volume.shape[0] not in (1, 3) or slices < 1:
        raise SynthscapeError(f"a slice montage needs a [1, X, Y, Z] or [X, Y, Z] volume and slices >= 1, "
                              f"got shape {list(volume.shape)} and slices={slices}")
    tiles = []
    for axis, third in ((3, 0), (2, 1), (1, 2)):  # z -> axial, y -> coronal, x -> sagittal
        n = volume.shape[axis]
        for index in np.round(np.linspace(0, n - 1, slices + 2)[1:-1]).astype(int):
            strip = three_planes(np.repeat(np.take(volume, [index], axis=axis), n, axis=axis))
            side = strip.shape[2] // 3
            tiles.append(strip[:, :, third * side:(third + 1) * side])
    return grid(np.stack(tiles), columns=slices, min_side=min_side)


def condition_grid(images: np.ndarray, conditions: Sequence[Mapping[str, str]], per_condition: int = 8,
                   columns: int | None = None) -> list[Figure]:
    """One sample grid (core.grids.grid) per distinct condition, titled ``attr=value, ...``, in
    the order conditions first appear: a reader compares conditions side by side, not samples."""
    images = np.asarray(images)
    if len(images) != len(conditions):
        raise SynthscapeError(f"{len(images)} images but {len(conditions)} conditions")
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for i, condition in enumerate(conditions):
        groups.setdefault(tuple((str(k), str(v)) for k, v in condition.items()), []).append(i)
    return [Figure(", ".join(f"{k}={v}" for k, v in key) or "unconditional",
                   grid(images[members[:per_condition]], columns=columns),
                   f"{min(len(members), per_condition)} of {len(members)} samples")
            for key, members in groups.items()]


def curves_from_metrics_csv(path: str | Path) -> list[Curve]:
    """Training curves from a run's metrics.csv (core/training/metrics_log.py: ``step`` then one column per
    objective metric, blank where not measured). Columns with ``loss`` in the name share one
    "Losses" chart; the rest are grouped by the prefix before ``_`` (``d_real`` with ``d_fake``),
    since those share a scale. Columns never measured are left out."""
    path = Path(path)
    if not path.is_file():
        raise SynthscapeError(f"no metrics file at {path}")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or rows[0][:1] != ["step"]:
        raise SynthscapeError(f"{path} should start with a 'step' column, got header {rows[0] if rows else []}")
    header, body = rows[0], [r for r in rows[1:] if r]
    try:
        table = np.array([[float(v) if v.strip() else np.nan for v in r] for r in body], dtype=np.float64)
    except ValueError as error:
        raise SynthscapeError(f"{path}: a value is not a number ({error})") from None
    table = table.reshape(len(body), len(header))
    groups: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for column, name in enumerate(header[1:], start=1):
        keep = np.isfinite(table[:, column])
        if keep.any():
            key = "Losses" if "loss" in name else name.split("_")[0]
            groups.setdefault(key, {})[name] = (table[keep, 0].tolist(), table[keep, column].tolist())
    return [Curve(key if key == "Losses" else ", ".join(series), series) for key, series in groups.items()]


# -- HTML ------------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .2em 1.2em; }
dl.summary dt { font-weight: 600; } dl.summary dd { margin: 0; }
table.metrics { border-collapse: collapse; width: 100%; font-size: .92em; }
table.metrics th, table.metrics td { border-bottom: 1px solid #e2e2e2; padding: .3em .6em; text-align: left; }
table.metrics td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.verdict-ok { color: #1a7f37; font-weight: 600; } td.verdict-check { color: #b35900; font-weight: 600; }
p.rule { color: #555; font-size: .88em; }
figure { display: inline-block; vertical-align: top; margin: .6em 1.2em .6em 0; }
figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #444; max-width: 640px; }
"""


def png_data_uri(picture: np.ndarray) -> str:
    """A uint8 grey or RGB picture as a ``data:image/png;base64,...`` URI (lossless)."""
    png = encode_png(picture, f"a {list(picture.shape)} picture as PNG")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _metrics_table(rows: Sequence[MetricRow]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("Group", "Metric", "Value", "Real reference", "Better", "Verdict", "Note"))
    body = []
    for row in rows:
        verdict = judge(row)
        body.append(
            f"<tr><td>{escape(row.group)}</td><td>{escape(row.name)}</td>"
            f'<td class="num">{format_value(row.value)}</td><td class="num">{format_value(row.reference)}</td>'
            f"<td>{escape(rule_text(row))}</td>"
            f'<td class="verdict-{escape(verdict.replace("/", ""))}">{escape(verdict)}</td>'
            f"<td>{escape(row.note)}</td></tr>")
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _item(item: Item) -> str:
    if isinstance(item, Figure):
        h, w = item.picture.shape[:2]
        body = f'<img src="{png_data_uri(item.picture)}" width="{w}" height="{h}" alt="{escape(item.title)}">'
    elif isinstance(item, Curve):
        body = line_chart(item.title, item.series, item.x_label, item.y_label)
    elif isinstance(item, Histogram):
        body = histogram_chart(item.title, item.edges, item.series, item.x_label)
    else:
        raise SynthscapeError(f"a report section holds Figure, Curve or Histogram items, got {type(item).__name__}")
    caption = escape(getattr(item, "caption", ""))
    return f"<figure>{body}<figcaption><strong>{escape(item.title)}</strong> {caption}</figcaption></figure>"


def render(report: Report) -> str:
    """The whole page as one HTML string: summary, metrics table, then each section in order."""
    summary = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in report.summary.items())
    sections = "".join(f"<section><h2>{escape(name)}</h2>{''.join(_item(i) for i in items)}</section>"
                       for name, items in report.sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(report.title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{escape(report.title)}</h1>"
            f'<dl class="summary">{summary}</dl>'
            f"<section><h2>Metrics</h2>{_metrics_table(report.metrics)}"
            '<p class="rule">Reference: the same metric between real training and real held-out data. '
            "Verdict: <em>ok</em> when the value is as good as the reference within the stated tolerance, "
            "<em>check</em> otherwise; <em>n/a</em> when the metric could not be measured.</p></section>"
            f"{sections}</body></html>\n")


def write_report(out_dir: str | Path, report: Report) -> Path:
    """Write ``out_dir/report.html`` atomically and return its path. Non-ASCII characters are
    written as HTML character references, so the file reads the same whatever the locale."""
    html = render(report).encode("ascii", "xmlcharrefreplace").decode("ascii")
    return write_text(Path(out_dir) / "report.html", html)
