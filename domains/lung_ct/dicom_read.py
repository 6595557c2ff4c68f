"""Read a CT DICOM series into a RAS+ HU volume and affine. numpy, nibabel and pydicom only.

Geometry (DICOM PS3.3 C.7.6.2.1.1, and nibabel's "DICOM orientation" notes): ImageOrientationPatient
holds the row direction (the way column index c grows along a row) then the column direction (the way
row index r grows down a column), in LPS patient coordinates; PixelSpacing is [spacing between rows,
spacing between columns]. So pixel (r, c) of slice k sits at

    IPP_k + c * PixelSpacing[1] * rowdir + r * PixelSpacing[0] * coldir

The array is laid out [X = columns, Y = rows, Z = slices in order along rowdir x coldir], the affine
is flipped LPS -> RAS (x and y negated) and the pair is reoriented to RAS+ voxel order, as
``nibabel.as_closest_canonical`` would (so a series and its NIfTI conversion read the same).
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import warnings
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation
from pydicom.dataelem import RawDataElement
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels import apply_modality_lut

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.limits import check_voxels

log = logging.getLogger(__name__)
_PYDICOM_LOG = logging.getLogger("pydicom")
_QUIET = threading.Lock()

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# What pydicom (and numpy, on the values it hands over) raise on a corrupt, truncated or spliced
# file, as tests/test_fuzz.py finds them: no preamble, a bad VR or length, a value of the wrong
# type or multiplicity, pixel data too short or missing, a file cut inside an element; and
# RuntimeError where no installed decoder plugin takes a compressed transfer syntax.
DICOM_ERRORS = (InvalidDicomError, BytesLengthException, ValueError, TypeError, AttributeError, NotImplementedError,
                RuntimeError, struct.error, OSError)
# The header elements read below: decoded (pydicom decodes lazily) where the file is read, so a bad
# value is an error naming the file there, not an exception from deep inside the geometry code.
HEADER_KEYWORDS = ("SOPClassUID", "SeriesInstanceUID", "Modality", "SeriesDescription", "Rows", "Columns",
                   "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "ImageOrientationPatient", "PixelSpacing",
                   "ImagePositionPatient", "SliceThickness")
PIXEL_DATA = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF  # PixelData of this length is encapsulated: compressed fragments
# The most bytes one byte of encapsulated pixel data decodes to, where the codec bounds it: an RLE
# Lossless run of 2 bytes makes at most 128 (PS3.5 G.3.1); deflate (Deflated Image Frame Compression)
# at most 1032. The JPEG family has no such bound: there the voxel cap is the only one.
DECODE_RATIOS = {pydicom.uid.RLELossless: 64, "1.2.840.10008.1.2.8.1": 1032}


def reorient(volume: np.ndarray, affine: np.ndarray, ornt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply a nibabel orientation transform to (volume, affine), as ``SpatialImage.as_reoriented``."""
    return apply_orientation(volume, ornt), affine @ inv_ornt_aff(ornt, volume.shape)


def to_ras(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder voxel axes so the affine is closest to RAS+ (``nibabel.as_closest_canonical``)."""
    ornt = io_orientation(affine)
    if (ornt == [[0, 1], [1, 1], [2, 1]]).all():
        return volume, affine
    return reorient(volume, affine, ornt)


def _looks_like_dicom(path: Path) -> bool:
    """Named ``*.dcm`` or carrying the ``DICM`` prefix after the 128-byte preamble (or unreadable:
    then nobody can tell, and the error says why)."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return True


@contextlib.contextmanager
def _quietly(path: Path) -> Iterator[None]:
    """Keep pydicom's remarks on a malformed file (a warning plus the same text logged, for every odd
    element; a decoder's traceback) off the user's terminal and in our debug log: the reader reports
    a file it cannot use as one error, and a real series of odd but usable files would print hundreds
    of lines. The lock makes the process-wide ``catch_warnings`` safe under MONAI's loader threads."""
    collect = _Collect()
    with _QUIET, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        propagate, _PYDICOM_LOG.propagate = _PYDICOM_LOG.propagate, False  # its children's records stop here too
        _PYDICOM_LOG.addHandler(collect)
        try:
            yield
        finally:
            _PYDICOM_LOG.removeHandler(collect)
            _PYDICOM_LOG.propagate = propagate
            for message in dict.fromkeys([*(str(w.message) for w in caught), *collect.messages]):
                log.debug("%s: %s", path, message)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _header(path: Path) -> pydicom.Dataset:
    """The header (no pixels), with the elements read below decoded now (see HEADER_KEYWORDS)."""
    with _quietly(path):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in HEADER_KEYWORDS:
            ds.get(keyword)
        ds.get("file_meta", pydicom.Dataset()).get("MediaStorageSOPClassUID")
    return ds


def _sop_class(ds: pydicom.Dataset) -> pydicom.uid.UID | None:
    """What the object is (CT Image Storage, Media Storage Directory Storage, an SR...), if it says."""
    uid = ds.get("SOPClassUID") or ds.get("file_meta", pydicom.Dataset()).get("MediaStorageSOPClassUID")
    return pydicom.uid.UID(str(uid)) if uid else None


def _unreadable(folder: Path, path: Path, what: str, exc: BaseException) -> SynthscapeError:
    return SynthscapeError(f"{folder}: {path.name} {what} ({type(exc).__name__}: {exc})".splitlines()[0][:300])


def _is_image(folder: Path, path: Path, ds: pydicom.Dataset) -> bool:
    """Whether ``ds`` is an image of a series. Another kind of object (a DICOMDIR, a report) is
    not; an image file lacking its series or its size is corrupt or truncated, and refused."""
    if "SeriesInstanceUID" in ds and "Rows" in ds:
        return True
    sop_class = _sop_class(ds)
    known_other = sop_class is not None and sop_class.name != sop_class and "Image Storage" not in sop_class.name
    if _looks_like_dicom(path) and not known_other:
        what = f"a {shown(sop_class.name)}" if sop_class else "an object of no SOP class"
        raise SynthscapeError(f"{folder}: {path.name} is a corrupt or truncated DICOM file ({what} "
                              "without SeriesInstanceUID or Rows)")
    log.debug("%s: skipped, not an image of a series (%s)", path, sop_class or "no SOP class")
    return False


def _scan(folder: Path) -> dict[str, list[tuple[Path, pydicom.Dataset]]]:
    """Headers (no pixels) of every image file in ``folder``, grouped by SeriesInstanceUID. A file
    that is not DICOM (text, JSON) is skipped; one that claims to be (``*.dcm``, ``DICM``) but does
    not parse is corrupt or truncated, and refused."""
    series: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = _header(path)
        except DICOM_ERRORS as exc:
            if _looks_like_dicom(path):
                raise _unreadable(folder, path, "is a corrupt or truncated DICOM file", exc) from None
            log.debug("%s: skipped, not readable as DICOM (%s)", path, exc)
            continue
        if _is_image(folder, path, ds):
            series[str(ds.SeriesInstanceUID)].append((path, ds))
    return series


def _pick(folder: Path, series: dict, series_uid: str | None) -> list[tuple[Path, pydicom.Dataset]]:
    def describe(uid: str) -> str:
        ds = series[uid][0][1]
        return f"{shown(uid)} ({shown(ds.get('Modality', '?'))} '{shown(ds.get('SeriesDescription', ''))}', {len(series[uid])} files)"

    if not series:
        raise SynthscapeError(f"{folder}: no DICOM image files found, expected one CT series")
    if series_uid is not None:
        if series_uid not in series:
            raise SynthscapeError(f"{folder}: no series {series_uid}; found {'; '.join(map(describe, series))}")
        return series[series_uid]
    if len(series) > 1:
        raise SynthscapeError(f"{folder}: {len(series)} series found, expected one (pick one with series_uid=): "
                              + "; ".join(map(describe, series)))
    return next(iter(series.values()))


def _floats(folder: Path, path: Path, ds: pydicom.Dataset, keyword: str, count: int) -> np.ndarray:
    value = ds.get(keyword)
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        out = np.zeros(0)
    if out.shape != (count,) or not np.isfinite(out).all():
        raise SynthscapeError(f"{folder}: {path.name} has no valid {keyword} (expected {count} numbers, got {shown(value)})")
    return out


def _int(folder: Path, path: Path, ds: pydicom.Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        value = default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SynthscapeError(f"{folder}: {path.name} has no valid {keyword} (expected a whole number, got "
                              f"{shown(value)})") from None


def _geometry(folder: Path, files: list[tuple[Path, pydicom.Dataset]]):
    """Check the slices share one plane geometry; return (rowdir, coldir, PixelSpacing, IPPs)."""
    for path, ds in files:
        modality = str(ds.get("Modality", "") or "none")
        if modality != "CT":
            raise SynthscapeError(f"{folder}: modality {shown(modality)}, expected CT")
    path0, ds0 = files[0]
    iop0 = _floats(folder, path0, ds0, "ImageOrientationPatient", 6)
    spacing0 = _floats(folder, path0, ds0, "PixelSpacing", 2)
    shape0 = (_int(folder, path0, ds0, "Rows"), _int(folder, path0, ds0, "Columns"))
    if min(shape0) < 1:
        raise SynthscapeError(f"{folder}: {path0.name} is {shape0[0]}x{shape0[1]} pixels, expected at least 1x1")
    ipps = []
    for path, ds in files:
        if _int(folder, path, ds, "NumberOfFrames", 1) > 1:
            raise SynthscapeError(f"{folder}: {path.name} is multi-frame (enhanced) CT, expected one slice per file")
        if _int(folder, path, ds, "SamplesPerPixel", 1) != 1:
            raise SynthscapeError(f"{folder}: {path.name} has {ds.SamplesPerPixel} samples per pixel, expected 1")
        if not np.allclose(_floats(folder, path, ds, "ImageOrientationPatient", 6), iop0, atol=1e-4):
            raise SynthscapeError(f"{folder}: {path.name} has ImageOrientationPatient {shown(list(ds.ImageOrientationPatient))}, "
                                  f"expected the same orientation as {path0.name} {iop0.tolist()}")
        if not np.allclose(_floats(folder, path, ds, "PixelSpacing", 2), spacing0, rtol=1e-4):
            raise SynthscapeError(f"{folder}: {path.name} has PixelSpacing {shown(list(ds.PixelSpacing))}, "
                                  f"expected {spacing0.tolist()} as in {path0.name}")
        if (_int(folder, path, ds, "Rows"), _int(folder, path, ds, "Columns")) != shape0:
            raise SynthscapeError(f"{folder}: {path.name} is {ds.get('Rows')}x{ds.get('Columns')} pixels, "
                                  f"expected {shape0[0]}x{shape0[1]} as in {path0.name}")
        ipps.append(_floats(folder, path, ds, "ImagePositionPatient", 3))
    rowdir, coldir = iop0[:3], iop0[3:]
    if not (np.isclose(np.linalg.norm(rowdir), 1, atol=1e-3) and np.isclose(np.linalg.norm(coldir), 1, atol=1e-3)
            and abs(rowdir @ coldir) < 1e-3):
        raise SynthscapeError(f"{folder}: ImageOrientationPatient {iop0.tolist()} is not two orthogonal unit vectors")
    rowdir = rowdir / np.linalg.norm(rowdir)
    coldir = coldir - (coldir @ rowdir) * rowdir
    return rowdir, coldir / np.linalg.norm(coldir), spacing0, np.array(ipps)


def _thickness(ds: pydicom.Dataset) -> float:
    """A lone slice's SliceThickness as its spacing, or 1 mm where it has none that makes sense."""
    try:
        thickness = float(ds.get("SliceThickness") or 0)
    except (TypeError, ValueError):
        return 1.0
    return thickness if np.isfinite(thickness) and thickness > 0 else 1.0


def _slice_step(folder: Path, ipps: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """The LPS vector from one slice to the next (IPPs sorted along ``normal``); refuse gaps and drift."""
    where = ipps @ normal
    gaps = np.diff(where)
    median = float(np.median(gaps))
    tol = max(0.01 * median, 0.01)  # 1 % of the spacing, but never finer than 0.01 mm
    if median <= tol or gaps.min() <= 0.01:
        k = int(np.argmin(gaps))
        raise SynthscapeError(f"{folder}: two slices at position {where[k]:.3f} mm along the slice normal, "
                              "expected one slice per position (several acquisitions in one series?)")
    bad = np.flatnonzero(np.abs(gaps - median) > tol)
    if bad.size:
        k = int(bad[0])
        raise SynthscapeError(f"{folder}: uneven slice spacing, {gaps[k]:.3f} mm between slices at {where[k]:.3f} and "
                              f"{where[k + 1]:.3f} mm against a median of {median:.3f} mm "
                              f"({bad.size} such gaps; a missing or extra slice?)")
    step = (ipps[-1] - ipps[0]) / (len(ipps) - 1)
    drift = np.linalg.norm(ipps - (ipps[0] + np.arange(len(ipps))[:, None] * step), axis=1)
    if drift.max() > tol:
        k = int(np.argmax(drift))
        raise SynthscapeError(f"{folder}: slice at {ipps[k].round(3).tolist()} is {drift[k]:.3f} mm off the line through "
                              f"the first and last slices, expected evenly stacked slices")
    return step


def _pixels(folder: Path, path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        with _quietly(path):
            ds = pydicom.dcmread(path)
            hu = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float32)
    except DICOM_ERRORS as exc:  # no decoder for a compressed transfer syntax, a truncated file, a bad rescale
        raise _unreadable(folder, path, "pixel data unreadable", exc) from None
    if hu.shape != shape:
        raise SynthscapeError(f"{folder}: {path.name} pixel data shape {hu.shape}, expected {shape}")
    if not np.isfinite(hu).all():
        raise SynthscapeError(f"{folder}: {path.name} has NaN or infinite HU values (check RescaleSlope and RescaleIntercept)")
    return hu


def _pixel_element(folder: Path, path: Path) -> tuple[str, RawDataElement | None]:
    """The file's transfer syntax and its PixelData element with the value left unread: pydicom reads
    the element headers but seeks past every value over 1 KiB (``defer_size``), and walks encapsulated
    fragments by their item headers, so a lying length costs nothing here."""
    try:
        with _quietly(path):
            ds = pydicom.dcmread(path, defer_size=1024, specific_tags=[PIXEL_DATA])
            element = ds.get_item(PIXEL_DATA, keep_deferred=True)
            syntax = ds.get("file_meta", pydicom.Dataset()).get("TransferSyntaxUID")
    except (*DICOM_ERRORS, EOFError) as exc:
        raise _unreadable(folder, path, "pixel data unreadable", exc) from None
    return str(syntax or pydicom.uid.ImplicitVRLittleEndian), element


def _check_holds(folder: Path, path: Path, ds: pydicom.Dataset) -> None:
    """Refuse a file whose PixelData cannot hold the pixels its header ``ds`` declares (Rows x Columns
    x frames x samples x BitsAllocated): native pixel data must have at least that many bytes, all of
    them in the file; encapsulated data at most what its codec can decode the rest of the file to
    (``DECODE_RATIOS``). Run before any pixel is decoded: pydicom allocates the declared frame first."""
    rows, columns = _int(folder, path, ds, "Rows"), _int(folder, path, ds, "Columns")
    frames = max(1, _int(folder, path, ds, "NumberOfFrames", 1))
    samples, bits = _int(folder, path, ds, "SamplesPerPixel", 1), _int(folder, path, ds, "BitsAllocated")
    needed = -(-rows * columns * frames * samples * bits // 8)
    pixels = f"{rows}x{columns} pixels x {frames} frame(s) of {samples}x{bits} bits need {needed:,} bytes"
    syntax, element = _pixel_element(folder, path)
    if element is None:
        raise SynthscapeError(f"{folder}: {path.name} pixel data unreadable (no PixelData element, or one cut short)")
    size = path.stat().st_size
    if element.length != UNDEFINED_LENGTH:
        if element.length < needed:
            raise SynthscapeError(f"{folder}: {path.name} pixel data unreadable: PixelData holds "
                                  f"{element.length:,} bytes, but its {pixels}")
        past_end = element.value_tell + element.length - size  # the deflated syntax's tell counts inflated bytes
        if past_end > 0 and syntax != pydicom.uid.DeflatedExplicitVRLittleEndian:
            raise SynthscapeError(f"{folder}: {path.name} pixel data unreadable: PixelData declares {element.length:,} "
                                  f"bytes, {past_end:,} more than the file holds (truncated?)")
        return
    ratio, held = DECODE_RATIOS.get(syntax), size - element.value_tell
    if ratio and needed > ratio * held:
        raise SynthscapeError(f"{folder}: {path.name} declares more than it holds: its {pixels}, but {held:,} bytes of "
                              f"{shown(pydicom.uid.UID(syntax).name)} data decode to at most {ratio * held:,}")


def _check_sizes(folder: Path, files: list[tuple[Path, pydicom.Dataset]]) -> None:
    """Before any pixel is decoded: the series' voxels (Rows x Columns x frames x files) against the
    voxel cap, then each file's PixelData against its header (``_check_holds``)."""
    path0, ds0 = files[0]
    frames = max(1, _int(folder, path0, ds0, "NumberOfFrames", 1))
    shape = (_int(folder, path0, ds0, "Rows"), _int(folder, path0, ds0, "Columns"), frames * len(files))
    check_voxels(shape, f"{folder}: the series of {len(files)} file(s)")
    for path, ds in files:
        _check_holds(folder, path, ds)


def read_dicom_series(folder: str | Path, *, series_uid: str | None = None,
                      allow_single_slice: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read the one CT series in ``folder`` as (float32 HU [X, Y, Z], 4x4 affine), both RAS+.

    Files pydicom cannot parse (no DICOM preamble, text, JSON) and non-image objects (DICOMDIR) are
    skipped with a debug log, but a ``*.dcm`` file (or one with the ``DICM`` prefix) that does not
    parse, or an image file without its series or size, is refused as corrupt. More than one series is refused unless ``series_uid`` picks one. HU
    are RescaleSlope * raw + RescaleIntercept (pydicom's modality LUT). A single slice is refused
    unless ``allow_single_slice``, which gives Z = 1 with SliceThickness (else 1 mm) as its spacing.
    Oblique orientation and unequal spacings are kept in the affine, which may then be oblique too.
    Before any pixel is decoded, the series' size is checked against the voxel cap and each file's
    PixelData against what its header declares (``_check_sizes``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SynthscapeError(f"{folder}: not a folder, expected a folder holding one CT DICOM series")
    files = _pick(folder, _scan(folder), series_uid)
    rowdir, coldir, (row_spacing, col_spacing), ipps = _geometry(folder, files)
    _check_sizes(folder, files)
    normal = np.cross(rowdir, coldir)
    order = np.argsort(ipps @ normal, kind="stable")
    files, ipps = [files[i] for i in order], ipps[order]
    if len(files) == 1:
        if not allow_single_slice:
            raise SynthscapeError(f"{folder}: a single slice, expected a volume (allow_single_slice=True reads it as Z=1)")
        step = normal * _thickness(files[0][1])
    else:
        step = _slice_step(folder, ipps, normal)

    shape = (int(files[0][1].Rows), int(files[0][1].Columns))
    # pixel_array is [row r, column c]; stack slices last, then swap to [c, r, k] = [X, Y, Z]
    volume = np.stack([_pixels(folder, path, shape) for path, _ in files], axis=-1).transpose(1, 0, 2)
    lps = np.eye(4)
    lps[:3, 0] = rowdir * col_spacing  # c grows along the row direction, one column spacing per step
    lps[:3, 1] = coldir * row_spacing  # r grows along the column direction, one row spacing per step
    lps[:3, 2] = step
    lps[:3, 3] = ipps[0]
    if not np.isfinite(lps).all() or abs(np.linalg.det(lps[:3, :3])) < 1e-12:
        raise SynthscapeError(f"{folder}: the slice geometry gives no finite, invertible affine (spacings "
                              f"{col_spacing}, {row_spacing}, {np.linalg.norm(step)} mm), expected a volume in millimetres")
    volume, affine = to_ras(volume, LPS_TO_RAS @ lps)
    return np.ascontiguousarray(volume, dtype=np.float32), affine
