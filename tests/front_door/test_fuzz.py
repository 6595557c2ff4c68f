"""Property-based tests (hypothesis): on any input, the condition schema, the labels.csv readers
and the DICOM series reader give a valid result or our one-line ``SynthscapeError``, never another
exception (issue 8). Derandomized, so a CI run tries the same examples every time.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.conditions import ConditionSchema
from synthscape.domains.driving.dataset import DrivingDataset
from synthscape.domains.driving.schema import SCHEMA as DRIVING
from synthscape.domains.lung_ct.dataset import FILE_COLUMNS, LungCTDataset
from synthscape.domains.lung_ct.dicom import read_dicom_series, write_dicom_series
from synthscape.domains.lung_ct.schema import SCHEMA as LUNG
from synthscape.synthetic_dataset import parse_condition

FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns on every odd element it meets


def one_line(error: SynthscapeError) -> None:
    """A refusal a user can read: one line, not a screenful. (Its kind shows in --hypothesis-show-statistics.)"""
    message = str(error)
    assert message and "\n" not in message and len(message) < 600
    event("refused: " + re.sub(r"\d+", "N", re.split(r"['\"(]", " ".join(w for w in message.split() if "/" not in w))[0])[:48])


# ---------------------------------------------------------------- condition schema

# Text that comes close to the real thing: the separators, spaces, names and values of a schema.
PIECES = st.sampled_from(["=", ",", " ", "", "\t", "\n", "\x00", "é", "weather", "fog", "time", "night", "colour"])
NEAR_TEXT = st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=6).map("".join)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | NEAR_TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NEAR_TEXT, inner, max_size=4), max_leaves=12)
NAMES = st.sampled_from(["weather", "time", "view", "ground glass", "x=y", " pad", "ümlaut"])
VALUES = st.sampled_from(["fog", "day", "night", "clear", "a=b", "a,b", "pad ", "3"])
SCHEMA_DATA = st.one_of(  # any JSON; then near misses: lists of values of names, valid or nearly
    JSON, st.dictionaries(NEAR_TEXT, st.lists(st.one_of(NEAR_TEXT, st.integers()), max_size=4), max_size=4),
    st.dictionaries(NAMES | NEAR_TEXT, st.lists(VALUES | NEAR_TEXT | st.integers(0, 9), min_size=1, max_size=4, unique_by=str),
                    min_size=1, max_size=3),
    st.dictionaries(NAMES, st.lists(VALUES, min_size=1, max_size=4, unique=True), min_size=1, max_size=3))


@settings(FUZZ, max_examples=400)
@given(data=SCHEMA_DATA)
def test_schema_from_any_json_is_usable_or_refused(data):
    """A schema read from any JSON (config.json, ONNX metadata) works for every value it lists: each
    can be asked for on the command line and in ``SyntheticDataset``'s "a=v,b=w", and encodes and
    decodes to itself."""
    try:
        schema = ConditionSchema.from_dict(data)
    except SynthscapeError as error:
        return one_line(error)
    event("valid schema")
    assert schema.describe().count("\n") == len(schema) - 1
    for name, values in schema.attributes:
        for value in values:
            condition = schema.validate(ConditionSchema.parse([f"{name}={value}"]))
            assert condition == {name: value}
    last = {name: values[-1] for name, values in schema.attributes}
    assert schema.validate(parse_condition(",".join(f"{name}={value}" for name, value in last.items()))) == last
    assert schema.decode(schema.encode([last])) == [last]


@settings(FUZZ, max_examples=300)
@given(pairs=st.one_of(st.lists(NEAR_TEXT, max_size=4), NEAR_TEXT, st.lists(st.one_of(
    st.sampled_from([f"{name}={value}" for name, values in DRIVING.attributes for value in values]),
    st.builds("{}{}{}".format, st.sampled_from(DRIVING.names) | NEAR_TEXT, st.sampled_from(["=", " = ", "==", ""]),
              st.sampled_from([v for _, values in DRIVING.attributes for v in values]) | NEAR_TEXT)), max_size=3)))
def test_condition_text_parses_to_valid_values_or_is_refused(pairs):
    """``--condition`` text: every attribute and value kept is the schema's, or a clear refusal."""
    try:
        condition = DRIVING.validate(ConditionSchema.parse(pairs))
    except SynthscapeError as error:
        return one_line(error)
    event("valid condition")
    assert all(value in DRIVING.values(name) for name, value in condition.items())


# ---------------------------------------------------------------- labels.csv

@pytest.fixture(scope="module")
def data_sets(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """A driving (8 images, 32x32, no COCO JSON) and a lung-ct (4 NIfTI volumes, 16^3) data set,
    each with the text of its labels.csv as written (each example overwrites the file)."""
    root = tmp_path_factory.mktemp("fuzz-data")
    for domain, count, size in (("driving", 8, 32), ("lung-ct", 4, 16)):
        assert main(["-q", "simulate", domain, "--out", str(root / domain), "--count", str(count), "--size", str(size)]) == 0
    (root / "driving" / "annotations.json").unlink()  # labels.csv alone says what the data set holds
    return {name: (root / name, (root / name / "labels.csv").read_text()) for name in ("driving", "lung-ct")}


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def as_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


CELL = st.one_of(NEAR_TEXT, st.sampled_from(["", "present", "absent", "none", "clear", "day", "normal", "images/x.png",
                                             "/etc/passwd", "../labels.csv", ".", "a" * 300, "volumes\x00.nii.gz"]))
EDIT = st.one_of(
    st.tuples(st.just("cell"), st.integers(0, 99), st.integers(0, 99), CELL),  # replace one cell
    st.tuples(st.just("drop row"), st.integers(0, 99)),
    st.tuples(st.just("repeat row"), st.integers(0, 99)),
    st.tuples(st.just("drop cell"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("add cell"), st.integers(0, 99), CELL),
    st.tuples(st.just("text"), st.integers(0, 9999), NEAR_TEXT),  # raw text anywhere: quotes, separators, NULs
    st.tuples(st.just("cut"), st.integers(0, 9999)),
)


def edited(text: str, edits) -> str:
    """Apply ``edits`` to a real labels.csv, cell by cell or character by character."""
    for edit in edits:
        rows = rows_of(text)
        kind, where = edit[0], edit[1] if len(edit) > 1 else 0
        if kind in ("text", "cut"):
            where %= len(text) + 1
            text = text[:where] + edit[2] + text[where:] if kind == "text" else text[:where]
            continue
        if not rows:
            continue
        row = rows[where % len(rows)]
        if kind == "cell" and row:
            row[edit[2] % len(row)] = edit[3]
        elif kind == "drop row":
            rows.remove(row)
        elif kind == "repeat row":
            rows.append(list(row))
        elif kind == "drop cell" and row:
            del row[edit[2] % len(row)]
        elif kind == "add cell":
            row.append(edit[2])
        text = as_csv(rows)
    return text


LABELS_TEXT = st.one_of(st.lists(EDIT, min_size=1, max_size=4), st.text(max_size=200), st.binary(max_size=200))


def write_labels_file(folder: Path, original: str, labels) -> list[dict[str, str]]:
    """Write the fuzzed labels.csv; return its rows as the csv module reads them (if it can)."""
    if isinstance(labels, bytes):
        (folder / "labels.csv").write_bytes(labels)
    else:
        (folder / "labels.csv").write_text(labels if isinstance(labels, str) else edited(original, labels), encoding="utf-8")
    try:
        return list(csv.DictReader(io.StringIO((folder / "labels.csv").read_text(encoding="utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error):
        return []


@settings(FUZZ, max_examples=400)
@given(labels=LABELS_TEXT)
def test_driving_reader_on_mutated_labels(data_sets, labels):
    folder, original = data_sets["driving"]
    rows = write_labels_file(folder, original, labels)
    try:
        dataset = DrivingDataset(folder, size=8, progress=False)
    except SynthscapeError as error:
        return one_line(error)
    event("read")
    assert len(dataset) == len(rows) == len({row["path"] for row in rows})
    assert DRIVING.decode(dataset.conditions) == [{name: row[name] for name in DRIVING.names} for row in rows]
    image, _ = dataset[0]
    assert image.shape == (3, 8, 8) and -1 <= float(image.min()) and float(image.max()) <= 1


@settings(FUZZ, max_examples=120)
@given(labels=LABELS_TEXT)
def test_lung_reader_on_mutated_labels(data_sets, labels):
    folder, original = data_sets["lung-ct"]
    rows = write_labels_file(folder, original, labels)
    try:
        dataset = LungCTDataset(folder, size=8, progress=False)
    except SynthscapeError as error:
        return one_line(error)
    event("read")
    assert len(dataset) == len(rows) and all((folder / row[c]).exists() for row in rows for c in FILE_COLUMNS if row.get(c))
    image, condition = dataset[len(dataset) - 1]
    assert image.shape == (1, 8, 8, 8) and LUNG.decode(condition[None].numpy())[0] == {n: rows[-1][n] for n in LUNG.names}


# ---------------------------------------------------------------- DICOM reader

SLICES = 4


@pytest.fixture(scope="module")
def series_bytes(tmp_path_factory) -> list[tuple[str, bytes]]:
    """A real written CT series, 8x6 pixels by 4 slices: (file name, bytes) per slice."""
    hu = np.random.default_rng(3).integers(-1000, 1500, size=(8, 6, SLICES)).astype(np.float32)
    files = write_dicom_series(tmp_path_factory.mktemp("fuzz-dicom") / "series", hu, np.diag([0.7, 0.8, 2.5, 1.0]),
                               series_description="fuzz", derivation="tests/front_door/test_fuzz.py")
    return [(path.name, path.read_bytes()) for path in files]


POSITION = st.integers(0, 2**20)
MUTATION = st.one_of(
    st.tuples(st.just("set"), POSITION, st.binary(min_size=1, max_size=4)),  # overwrite bytes in place
    st.tuples(st.just("insert"), POSITION, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), POSITION, st.integers(1, 16)),
    st.tuples(st.just("truncate"), POSITION),
    st.tuples(st.just("splice"), st.integers(0, SLICES - 1), POSITION, POSITION, st.integers(1, 64)),  # from another slice
)


def mutate(data: bytes, mutation, others: list[bytes]) -> bytes:
    """Apply one MUTATION; positions wrap around the file's length."""
    data = bytearray(data)
    kind = mutation[0]
    at = (mutation[2] if kind == "splice" else mutation[1]) % (len(data) + 1)
    if kind == "set":
        data[at: at + len(mutation[2])] = mutation[2]
    elif kind == "insert":
        data[at:at] = mutation[2]
    elif kind == "delete":
        del data[at: at + mutation[2]]
    elif kind == "truncate":
        del data[at:]
    else:
        source = others[mutation[1]]
        start = mutation[3] % len(source)
        data[at: at + mutation[4]] = source[start: start + mutation[4]]
    return bytes(data)


@settings(FUZZ, max_examples=800)
@given(mutations=st.lists(st.tuples(st.integers(0, SLICES - 1), MUTATION), min_size=1, max_size=4))
def test_dicom_reader_on_mutated_bytes(series_bytes, mutations):
    """Flipped, inserted, deleted, truncated or spliced bytes in one or more slice files: the series
    reads as a whole, finite volume, or is refused naming the folder; no slice is silently dropped."""
    contents = [data for _, data in series_bytes]
    for index, mutation in mutations:
        contents[index] = mutate(contents[index], mutation, [data for _, data in series_bytes])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        folder.mkdir()
        for (name, _), data in zip(series_bytes, contents):
            (folder / name).write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                volume, affine = read_dicom_series(folder)
        except SynthscapeError as error:
            one_line(error)
            assert str(folder) in str(error)
            return
    event("read")
    assert volume.dtype == np.float32 and volume.ndim == 3 and sorted(volume.shape) == [4, 6, 8]
    assert np.isfinite(volume).all() and np.isfinite(affine).all() and abs(np.linalg.det(affine[:3, :3])) > 0
