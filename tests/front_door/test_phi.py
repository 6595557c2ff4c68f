"""Patient data never leaves the input: train on DICOM full of identifying headers, then search every
byte of every output for them.

The data set is the simulator's DICOM series with each file's header filled with distinctive
identifying values (names, IDs, birth date, addresses, institution, station, accession number,
physicians, study dates and times, descriptions, device serial number, UIDs under a made-up root, a
private block), plus an identifying extra column in labels.csv. ``synthscape run`` trains on it,
samples NIfTI and DICOM, evaluates and exports; then every file under the output folder is searched,
inside its containers too (gzip, zip members such as torch's state.pt, PNG text and image chunks,
base64 pictures in report.html), for every value as ASCII/UTF-8 and UTF-16-LE, case-insensitively,
and for person names also each ``^``-separated part.

Dates and times are searched only where no digit stands right before or after them: the outputs
are full of printed floats, and "0.1958030512..." must not count as the study date 19580305. With
that rule a date can only match as a number of its own, and our outputs' only dates are today's
(DICOM headers, file times) and 2020s timestamps, while these are 1931-1966. The scan of the real
outputs finding nothing is that check made every run: a chance match would fail the test, not hide.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gzip
import io
import logging
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pydicom
import pytest

from synthscape.cli import main

CASES = 16
UID_ROOT = "1.3.6.1.4.1.58219.90417."
PRIVATE_GROUP, PRIVATE_CREATOR = 0x0029, "QZMEDICA PRIVATE 7"
PRIVATE_VALUES = {0x10: ("LO", "QZPRIV-Ambervale-3391"), 0x11: ("OB", b"QZBLOB-Ferncastle-0042")}
LABEL_COLUMN = "referral_note"
PATIENT = {  # the same patient in every series
    "PatientName": "Quillbrook^Zephyrine^Marisol",
    "OtherPatientNames": "Marchbanks^Eudoxia",
    "PatientID": "QZPID-774411",
    "OtherPatientIDs": "QZALT-559302",
    "PatientBirthDate": "19310817",
    "PatientAddress": "42 Wrenfield Crescent, Hollowmere",
    "PatientTelephoneNumbers": "+44-7700-913582",
    "InstitutionName": "Saint Ignatius Fenwold Infirmary",
    "InstitutionAddress": "9 Brackenbury Lane, Ostrava-Quell",
    "InstitutionalDepartmentName": "Wrenfield Radiology Suite",
    "StationName": "CTSTN-KESTREL9",
    "ReferringPhysicianName": "Thackeray^Obadiah",
    "OperatorsName": "Vexleigh^Ingrith",
    "PerformingPhysicianName": "Draxmoor^Leopoldine",
    "DeviceSerialNumber": "SNQZ-66120587",
    "StudyDescription": "Fenwold low-dose chest protocol QZ",
    "SeriesDescription": "Kestrel lung recon QZ41",
    "ImageComments": "QZNOTE patient anxious about Yarrowdene",
    "StudyTime": "081523.417295", "SeriesTime": "091634.528306",
    "AcquisitionTime": "102745.639417", "ContentTime": "113856.740528",
}
FIRST_DATES = {"StudyDate": datetime.date(1958, 3, 1), "SeriesDate": datetime.date(1961, 5, 1),
               "AcquisitionDate": datetime.date(1963, 9, 1), "ContentDate": datetime.date(1966, 11, 1)}


def case_values(case: int) -> dict[str, str]:
    """The header values of series ``case``: the patient's, plus this study's own IDs, dates and UIDs."""
    dates = {k: (d + datetime.timedelta(days=case)).strftime("%Y%m%d") for k, d in FIRST_DATES.items()}
    return {**PATIENT, **dates, "AccessionNumber": f"ACQZ{case:02d}8831", "StudyID": f"STQZ{case:02d}77",
            "StudyInstanceUID": f"{UID_ROOT}1.{case}", "SeriesInstanceUID": f"{UID_ROOT}2.{case}",
            "FrameOfReferenceUID": f"{UID_ROOT}3.{case}", LABEL_COLUMN: f"QZLABEL-{case:02d}-Yarrowdene"}


def fill_headers(series: Path, case: int) -> None:
    """Write the identifying values into every file of one DICOM series folder, in place."""
    values = case_values(case)
    for k, path in enumerate(sorted(series.glob("*.dcm"))):
        ds = pydicom.dcmread(path)
        for keyword, value in values.items():
            if keyword != LABEL_COLUMN:
                setattr(ds, keyword, value)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}4.{case}.{k}"
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        for offset, (vr, value) in PRIVATE_VALUES.items():
            block.add_new(offset, vr, value)
        ds.save_as(path, enforce_file_format=True)


def build_dataset(root: Path) -> Path:
    """A lung-ct DICOM data set (16^3) whose headers and labels.csv name a patient."""
    assert main(["-q", "simulate", "lung-ct", "--out", str(root), "--count", str(CASES), "--size", "16",
                 "--format", "dicom"]) == 0
    lines = (root / "labels.csv").read_text().splitlines()
    rows = [f"{line},{case_values(i)[LABEL_COLUMN]}" for i, line in enumerate(lines[1:])]
    (root / "labels.csv").write_text("\n".join([f"{lines[0]},{LABEL_COLUMN}", *rows]) + "\n")
    for case in range(CASES):
        fill_headers(root / "dicom" / f"case-{case:05d}", case)
    return root


# ---------------------------------------------------------------- the scanner

def identifying_strings() -> dict[str, str]:
    """Every value to look for, named by where it came from; names also by their parts."""
    found: dict[str, str] = {"UID root": UID_ROOT.rstrip("."), "private creator": PRIVATE_CREATOR}
    found.update({f"private {offset:#x}": (v.decode() if isinstance(v, bytes) else v)
                  for offset, (_, v) in PRIVATE_VALUES.items()})
    for case in range(CASES):
        for keyword, value in case_values(case).items():
            found[f"{keyword} {value}"] = value
            if "^" in value:
                found.update({f"{keyword} part {part}": part for part in value.split("^")})
            if keyword.endswith("Date"):
                found[f"{keyword} {value} (ISO)"] = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return found


def needles(value: str) -> list[tuple[bytes, bytes | None]]:
    """``value`` in lower case as ASCII/UTF-8 and as UTF-16-LE, each with the digit that must not
    stand right before or after it (numbers only: a date inside a longer number is not the date)."""
    numeric = re.fullmatch(r"[0-9.\-]+", value) is not None
    return [(value.lower().encode(encoding), b"0123456789" if numeric else None) for encoding in ("utf-8", "utf-16-le")]


def occurs(needle: bytes, digits: bytes | None, data: bytes) -> bool:
    """``needle`` in ``data`` (bytes.find, fast on megabytes), standing alone if ``digits`` is given."""
    width = 2 if len(needle) > 1 and needle[1] == 0 else 1  # UTF-16-LE: a digit is two bytes
    start = data.find(needle)
    while start >= 0:
        before, after = data[max(0, start - width):start], data[start + len(needle):start + len(needle) + width]
        if digits is None or not any(len(side) == width and side[:1] in digits and side[1:] in (b"", b"\0")
                                     for side in (before, after)):
            return True
        start = data.find(needle, start + 1)
    return False


def png_chunks(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Text chunks (zTXt and compressed iTXt inflated) and the inflated image data of a PNG."""
    pos, idat = 8, b""
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT":
            idat += body
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, _, rest = body.partition(b"\0")
            if kind == b"zTXt":
                rest = zlib.decompress(rest[1:])
            elif kind == b"iTXt" and rest[0] == 1:
                rest = zlib.decompress(rest[2:].split(b"\0", 2)[2])
            yield kind.decode(), keyword + b" " + rest
    if idat:
        yield "IDAT", zlib.decompress(idat)


def layers(name: str, data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """``data`` itself, then whatever it contains: gunzipped, zip members, PNG chunks, base64 pictures."""
    yield name, data
    if depth > 4:
        return
    if data[:2] == b"\x1f\x8b":
        yield from layers(f"{name} (gunzipped)", gzip.decompress(data), depth + 1)
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from layers(f"{name}:{member}", archive.read(member), depth + 1)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        for kind, chunk in png_chunks(data):
            yield from layers(f"{name} ({kind})", chunk, depth + 1)
    for k, match in enumerate(re.finditer(rb"base64,([A-Za-z0-9+/]+=*)", data)):
        yield from layers(f"{name} (base64 #{k})", base64.b64decode(match.group(1)), depth + 1)


def scan(named_bytes: Iterable[tuple[str, bytes]], values: dict[str, str]) -> list[str]:
    """``"value in where"`` for every identifying value found in any layer of any of the inputs."""
    patterns = {label: needles(value) for label, value in values.items()}
    hits = []
    for name, data in named_bytes:
        for where, layer in layers(name, data):
            lower = layer.lower()
            hits += [f"{label} in {where}" for label, found in patterns.items()
                     if any(occurs(needle, digits, lower) for needle, digits in found)]
    return hits


def files_of(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield str(path.relative_to(root)), path.read_bytes()


# ---------------------------------------------------------------- tests

def png_with_text(text: bytes) -> bytes:
    """A 1x1 grey PNG whose text sits in a zTXt chunk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"zTXt", b"Comment\0\0" + zlib.compress(text)) + chunk(b"IDAT", zlib.compress(b"\0\x80"))
            + chunk(b"IEND", b""))


def test_the_scanner_finds_values_inside_containers_and_encodings():
    values = {"name part Quillbrook": "Quillbrook", "name part Zephyrine": "Zephyrine", "date": "19580301",
              "date (ISO)": "1958-03-01"}
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", "x ZEPHYRINE y".encode("utf-16-le"))
    html = b'<img src="data:image/png;base64,' + base64.b64encode(png_with_text(b"1958-03-01")) + b'">'
    planted = {"a.nii.gz": gzip.compress(b"header quillbrook"), "state.pt": zipped.getvalue(), "report.html": html,
               "b.txt": b"born 19580301."}
    assert sorted(scan(planted.items(), values)) == [
        "date (ISO) in report.html (base64 #0) (zTXt)", "date in b.txt",
        "name part Quillbrook in a.nii.gz (gunzipped)", "name part Zephyrine in state.pt:archive/data.pkl"]
    # a date inside a longer number is a printed float, not the date
    assert scan({"m.json": b'{"x": 0.195803011, "y": 119580301, "t": "2026-11-29"}'}.items(), values) == []


@pytest.fixture(scope="module")
def phi_run(tmp_path_factory) -> dict:
    """``synthscape run`` on the identifying DICOM data set: its input, outputs and everything it printed."""
    root = tmp_path_factory.mktemp("phi")
    data = build_dataset(root / "hospital_export")
    before = dict(files_of(data))
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(f"""
domain: lung-ct
data: {data.name}
train: {{model: gan, steps: 2, batch_size: 4}}
sample:
  formats: [nifti, dicom]
  plan:
    - {{condition: {{nodule: present}}, count: 2}}
    - {{condition: {{nodule: absent}}, count: 1}}
evaluate: {{holdout: 0.25, classifier_steps: 5, utility_steps: 2, per_condition: 3}}
export: {{precision: fp32}}
""")
    stdout, stderr, log = io.StringIO(), io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger().addHandler(handler)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)  # the readers' debug lines too
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["run", str(pipeline), "--out", str(root / "out")])
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
    assert code == 0, stderr.getvalue()[-2000:]
    printed = {"stdout": stdout.getvalue().encode(), "stderr": stderr.getvalue().encode(), "log": log.getvalue().encode()}
    return {"root": root, "data": data, "before": before, "out": root / "out", "printed": printed}


def test_the_input_holds_every_identifying_value(phi_run):
    """So the scan below looks for them as DICOM and labels.csv really encode them."""
    values = identifying_strings()
    assert all(len(v) >= 6 for v in values.values()), [v for v in values.values() if len(v) < 6]
    found = {hit.split(" in ")[0] for hit in scan(phi_run["before"].items(), values)}
    assert found == {label for label in values if not label.endswith("(ISO)")}  # DICOM dates are YYYYMMDD
    ds = pydicom.dcmread(phi_run["data"] / "dicom" / "case-00003" / "slice-0001.dcm")
    assert ds.AccessionNumber == "ACQZ038831" and ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[0x10].value \
        == PRIVATE_VALUES[0x10][1]
    assert (phi_run["data"] / "labels.csv").read_text().splitlines()[1].startswith("dicom/case-00000,")


def test_no_identifying_value_reaches_any_output(phi_run):
    root, out = phi_run["root"], phi_run["out"]
    assert sorted(p.name for p in root.iterdir()) == ["hospital_export", "out", "pipeline.yaml"]
    assert dict(files_of(phi_run["data"])) == phi_run["before"]  # the input is read, never written
    written = dict(files_of(out))
    kinds = {Path(name).suffix for name in written}
    assert {".dcm", ".gz", ".png", ".csv", ".json", ".html", ".onnx", ".safetensors", ".pt"} <= kinds
    assert len([n for n in written if n.startswith("samples/dicom/")]) == 3 * 16
    assert b"evaluated" in phi_run["printed"]["log"] and b"report:" in phi_run["printed"]["stdout"]

    values = identifying_strings()
    assert scan({**written, **phi_run["printed"]}.items(), values) == []

    # the same scan sees a value planted in a copy of an output file
    onnx = written["generator.onnx"]
    assert scan({"generator.onnx": onnx + b"Leopoldine"}.items(), values) == [
        "PerformingPhysicianName part Leopoldine in generator.onnx"]
    dicom = next(n for n in written if n.endswith(".dcm"))
    assert scan({dicom: written[dicom] + UID_ROOT.encode("utf-16-le")}.items(), values) == [f"UID root in {dicom}"]


def test_written_dicom_headers_come_from_the_allow_list(phi_run):
    """Sampled DICOM carries the writer's synthetic patient, today's dates and fresh UIDs, no private block."""
    ds = pydicom.dcmread(next((phi_run["out"] / "samples" / "dicom").rglob("*.dcm")))
    assert str(ds.PatientName) == "SYNTHETIC^PHANTOM" and ds.PatientBirthDate == "" and ds.AccessionNumber == ""
    assert not any(element.tag.is_private for element in ds)
    assert not str(ds.StudyInstanceUID).startswith(UID_ROOT) and "SYNTHETIC" in ds.SeriesDescription
