"""report.html: parses, shows every metric beside its reference, embeds pictures that decode back
to what was given, draws one polyline point per data point, escapes text, needs no network."""

import base64
import re
import subprocess
import sys
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.report import (
    Curve,
    Figure,
    Histogram,
    Report,
    condition_grid,
    curves_from_metrics_csv,
    format_value,
    slice_montage,
    write_report,
)
from synthscape.core.evaluation.svg_plots import histogram_chart, nice_ticks
from synthscape.core.evaluation.verdicts import MetricRow
from synthscape.core.files.grids import three_planes, to_uint8


class Page(HTMLParser):
    """Collects what the tests look at: metric rows, images, SVG polylines, every src/href."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.rows, self.images, self.svgs, self.links = [], [], [], [], []
        self._cell, self._in_tbody = None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.rows.append([])
        elif tag == "td" and self._in_tbody:
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "svg":
            self.svgs.append([])
        elif tag == "polyline":
            self.svgs[-1].append(len(attrs["points"].split()))

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def decode(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return cv2.imdecode(np.frombuffer(base64.b64decode(uri[len(prefix):]), np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.fixture
def report():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    metrics = [
        MetricRow("label fidelity", "nodule accuracy", 0.812345, 0.9, "higher"),  # within 10% -> ok
        MetricRow("fidelity", "Frechet distance", 31.4159, 2.5, "lower"),  # far above -> check
        MetricRow("memorisation", "DCR ratio", 1.05, None, "closer-to-1"),  # ok
        MetricRow("fidelity", "<script>alert(1)</script>", None, 0.5, "higher", note="a & b"),  # n/a
        MetricRow("utility", "TSTR / TRTR", 0.4, 1.0, "closer-to-1", verdict="caller says"),
    ]
    curve = Curve("Losses", {"loss_d": ([0, 5, 10, 15, 20], [1.0, 0.8, 0.7, float("nan"), 0.6]),
                             "loss_g": ([0, 10, 20], [2.0, 1.5, 1.2])})
    edges = np.linspace(-1024, 600, 9)
    histogram = Histogram("HU", edges, {"real": np.arange(8), "generated": np.ones(8, dtype=int)}, "HU")
    return Report("lung-ct <run>", {"domain": "lung-ct", "model": "gan", "samples": "64", "time": "3 min"}, metrics,
                  [("Samples", [Figure("grey", grey, "caption"), Figure("colour", rgb)]),
                   ("Training", [curve]), ("Intensities", [histogram])]), (grey, rgb)


def test_report_is_written_and_shows_every_metric_picture_and_chart(tmp_path, report):
    report, (grey, rgb) = report
    path = write_report(tmp_path / "out", report)
    assert path == tmp_path / "out" / "report.html"
    text = path.read_text(encoding="ascii")
    page = Page(text)

    assert [row[:6] for row in page.rows] == [
        ["label fidelity", "nodule accuracy", "0.8123", "0.9", "higher; ok if ≥ reference − 10%", "ok"],
        ["fidelity", "Frechet distance", "31.42", "2.5", "lower; ok if ≤ reference + 10%", "check"],
        ["memorisation", "DCR ratio", "1.05", "—", "closer to 1; ok if |v−1| ≤ |ref−1| + 0.1", "ok"],
        ["fidelity", "<script>alert(1)</script>", "—", "0.5", "higher; ok if ≥ reference − 10%", "n/a"],
        ["utility", "TSTR / TRTR", "0.4", "1", "closer to 1", "caller says"],
    ]
    assert page.rows[3][6] == "a & b"
    assert page.tags.index("table") < page.tags.index("img") < page.tags.index("svg")  # metrics first

    assert len(page.images) == 2
    assert np.array_equal(decode(page.images[0]), grey)
    assert np.array_equal(cv2.cvtColor(decode(page.images[1]), cv2.COLOR_BGR2RGB), rgb)

    # the NaN point is left out of loss_d; a histogram bin is two points of its step line
    assert page.svgs == [[4, 3], [16, 16]]


def test_text_is_escaped_and_nothing_is_fetched_from_the_network(tmp_path, report):
    text = write_report(tmp_path, report[0]).read_text()
    page = Page(text)
    assert "script" not in page.tags
    assert "&lt;script&gt;" in text and "lung-ct &lt;run&gt;" in text
    assert not [link for link in page.links if not link.startswith("data:")]
    assert not re.search(r"https?://", text)


def test_histogram_is_normalised_per_series():
    """Both series cover the same share axis: 10 and 1000 samples in the same bins draw the same line."""
    svg = histogram_chart("h", np.array([0.0, 1.0, 2.0]), {"a": np.array([5, 5]), "b": np.array([500, 500])}, "x")
    lines = re.findall(r'points="([^"]+)"', svg)
    assert len(lines) == 2 and lines[0] == lines[1]


@pytest.mark.parametrize("value, text", [(None, "—"), (0, "0"), (0.123456, "0.1235"), (1234.5, "1234"),
                                         (123456.7, "123457"), (1.5e-5, "1.500e-05"), (float("nan"), "nan")])
def test_numbers_keep_four_significant_digits(value, text):
    assert format_value(value) == text


def test_nice_ticks():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3, 97) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(-0.3, 0.7) == [-0.4, -0.2, 0, 0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(5, 5) == [4.4, 4.6, 4.8, 5.0, 5.2, 5.4, 5.6]  # a flat series gets +-10%


def test_curves_from_metrics_csv_groups_losses_and_skips_blanks(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss_d,loss_g,d_real,d_fake,r1\n"
                    "5,1.2,0.7,0.5,-0.5,0.01\n10,1.1,0.8,0.6,-0.4,\n15,1.0,0.9,0.7,-0.3,0.02\n")
    curves = curves_from_metrics_csv(path)
    assert [c.title for c in curves] == ["Losses", "d_real, d_fake", "r1"]
    assert curves[0].series["loss_g"] == ([5, 10, 15], [0.7, 0.8, 0.9])
    assert curves[2].series["r1"] == ([5, 15], [0.01, 0.02])

    path.write_text("step,loss\n5,oops\n")
    with pytest.raises(SynthscapeError, match="not a number"):
        curves_from_metrics_csv(path)
    with pytest.raises(SynthscapeError, match="no metrics file"):
        curves_from_metrics_csv(tmp_path / "missing.csv")


def test_slice_montage_shows_three_planes_at_several_depths():
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, 16),) * 3, indexing="ij")
    volume = (x * 0.3 + y * 0.2 + z * 0.5)[None].astype(np.float32)  # every slice differs
    picture = slice_montage(volume, slices=5)
    # 16^3 tiles enlarged 4x to 64 px; 3 rows x 5 columns with 2 px gaps
    assert picture.shape == (3 * 66 - 2, 5 * 66 - 2)
    assert np.array_equal(slice_montage(volume[0], slices=5), picture)

    def tile(row, column):
        return picture[row * 66: row * 66 + 64: 4, column * 66: column * 66 + 64: 4]

    # the middle column cuts slice 8 of each axis: three_planes' axial (z 8) and coronal (y 8) planes,
    # and its sagittal plane once x is mirrored (it shows x 16 - 1 - 8 = 7 of a volume, 8 of the mirror)
    middle = to_uint8(three_planes(volume))[0]
    mirrored = to_uint8(three_planes(volume[:, ::-1]))[0]
    assert np.array_equal(tile(0, 2), middle[:, :16])
    assert np.array_equal(tile(1, 2), middle[:, 16:32])
    assert np.array_equal(tile(2, 2), mirrored[:, 32:])
    for row in range(3):
        assert not np.array_equal(tile(row, 0), tile(row, 4))
    with pytest.raises(SynthscapeError, match="slice montage"):
        slice_montage(np.zeros((16, 16)))


def test_condition_grid_makes_one_figure_per_condition():
    images = np.stack([np.full((1, 8, 8), v, np.float32) for v in (-1, 1, -1, 1, -1)])
    conditions = [{"nodule": "absent"}, {"nodule": "present"}] * 2 + [{"nodule": "absent"}]
    figures = condition_grid(images, conditions, per_condition=2)
    assert [f.title for f in figures] == ["nodule=absent", "nodule=present"]
    assert figures[0].caption == "2 of 3 samples"
    assert figures[0].picture.max() == 0 and figures[1].picture.max() == 255


@pytest.mark.parametrize("make, message", [
    (lambda: Figure("f", np.zeros((4, 4), np.float32)), "uint8"),
    (lambda: Histogram("h", np.arange(4), {"a": np.ones(4)}, "x"), "expected 3"),
    (lambda: Curve("c", {"a": ([1, 2], [1])}), "2 x values but 1 y values"),
])
def test_bad_input_is_one_clear_error(make, message):
    with pytest.raises(SynthscapeError, match=message):
        make()


TORCH_FREE = """
import sys
sys.modules["torch"] = None  # importing torch fails, as where only the edge install is
import synthscape.core.evaluation.report, synthscape.core.evaluation.svg_plots, synthscape.core.evaluation.verdicts
print(sorted(name for name, module in sys.modules.items() if module is not None and name.split(".")[0] in
             ("torch", "monai", "safetensors", "onnx")))
"""


def test_renderer_and_verdicts_import_no_torch():
    """The report is rendered where torch may be missing: report, svg_plots and verdicts import no
    torch, directly or through what they import (suite.py and the metric modules may)."""
    result = subprocess.run([sys.executable, "-c", TORCH_FREE], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
