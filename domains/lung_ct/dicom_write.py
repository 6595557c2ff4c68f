"""Write a synthetic CT volume as a DICOM CT Image Storage series. numpy, nibabel and pydicom only.

Every attribute is set here, from an allow-list of values this module makes up (fresh UIDs, a
synthetic patient, now as the dates); the writer takes no source dataset, so nothing of a real
patient's header can leak into its output. Each file is marked synthetic three ways: the Contributing
Equipment Sequence names synthscape with purpose (DCM, 109100, "Synthesizing Equipment") from
CID 7005, ImageType is DERIVED\\SECONDARY, and SeriesDescription says SYNTHETIC.

PatientIdentityRemoved (0012,0062) is left out on purpose: it says a real patient's identity was
removed (and then requires DeidentificationMethod), but these images never had one. So is the newer
SOP Common attribute Synthetic Data (0008,001C) = YES, which would fit, for now: the dciodvfy of
Debian's dicom3tools (1.00~20220618), the validator our tests run, does not know the tag and calls
it an error. Add it here once the validator knows it.

Geometry: the volume is first reordered to the voxel order closest to LPS (nibabel orientations), so
an axis-aligned volume gets the usual axial ImageOrientationPatient 1\\0\\0\\0\\1\\0 and displays the
radiological way in any viewer; then array axis 0 runs along the DICOM rows (column index), axis 1
down the columns (row index) and axis 2 is the slice, in InstanceNumber order along the slice normal.
``read_dicom_series`` reads the series back as the RAS+ reordering of the input (volume, affine).
"""

from __future__ import annotations

import datetime
import logging
import uuid
from importlib import metadata
from pathlib import Path

import numpy as np
import pydicom
from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import atomic_dir
from synthscape.domains.lung_ct.dicom_read import LPS_TO_RAS, reorient

log = logging.getLogger(__name__)

MANUFACTURER = "synthscape"
SYNTHESIZING_EQUIPMENT = ("109100", "DCM", "Synthesizing Equipment")  # PS3.16 CID 7005
WINDOW = (-600, 1500)  # lung window: centre, width
# The only caller-supplied header fields: keyword -> (VR, maximum length).
EXTRA_KEYS = {
    "ImageComments": ("LT", 10240),   # free text, e.g. the condition and seed of a sample
    "StudyDescription": ("LO", 64),
    "SeriesNumber": ("IS", None),
}


def _version() -> str:
    try:
        return metadata.version("synthscape")
    except metadata.PackageNotFoundError:
        return "unknown"


def _text(folder: Path, name: str, value, vr: str, limit: int) -> str:
    if not isinstance(value, str):
        raise SynthscapeError(f"{folder}: {name} must be text, got {type(value).__name__}")
    try:
        value.encode("latin-1")  # SpecificCharacterSet ISO_IR 100
    except UnicodeEncodeError:
        raise SynthscapeError(f"{folder}: {name} {value!r} has characters outside ISO 8859-1 (Latin-1)") from None
    if len(value) > limit or (vr == "LO" and ("\\" in value or any(ord(ch) < 32 for ch in value))):
        raise SynthscapeError(f"{folder}: {name} {value!r} is not a valid {vr} (at most {limit} characters"
                              f"{', no backslash or control characters' if vr == 'LO' else ''})")
    return value


def _extra(folder: Path, extra: dict | None) -> dict:
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(EXTRA_KEYS))
    if unknown:
        raise SynthscapeError(f"{folder}: extra field(s) {', '.join(map(str, unknown))} not allowed; "
                              f"allowed: {', '.join(EXTRA_KEYS)}")
    out = {}
    for key, value in extra.items():
        vr, limit = EXTRA_KEYS[key]
        if vr == "IS":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**31:
                raise SynthscapeError(f"{folder}: {key} must be an integer 0..2147483647, got {value!r}")
            out[key] = int(value)
        else:
            out[key] = _text(folder, key, value, vr, limit)
    return out


def _geometry(folder: Path, affine) -> np.ndarray:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or not np.allclose(affine[3], [0, 0, 0, 1]):
        raise SynthscapeError(f"{folder}: affine must be a finite 4x4 matrix with last row [0, 0, 0, 1]")
    axes = affine[:3, :3]
    norms = np.linalg.norm(axes, axis=0)
    if norms.min() < 1e-6:
        raise SynthscapeError(f"{folder}: affine has a zero-length voxel axis (spacing {norms.tolist()})")
    cosines = (axes / norms).T @ (axes / norms) - np.eye(3)
    if np.abs(cosines).max() > 1e-4:
        raise SynthscapeError(f"{folder}: affine voxel axes are not orthogonal (sheared), "
                              "expected a rotation times a diagonal spacing")
    return affine


def _ds(values) -> list[str]:
    return [format_number_as_ds(float(v)) for v in values]


def _dataset(common: dict, meta_uid: str) -> pydicom.Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = meta_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    for keyword, value in common.items():
        setattr(ds, keyword, value)
    return ds


def _contributing_equipment(now: str) -> list[pydicom.Dataset]:
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = SYNTHESIZING_EQUIPMENT
    item = pydicom.Dataset()
    item.PurposeOfReferenceCodeSequence = [code]
    item.Manufacturer = MANUFACTURER
    item.ManufacturerModelName = MANUFACTURER
    item.SoftwareVersions = _version()
    item.ContributionDateTime = now
    item.ContributionDescription = "Synthetic image made by synthscape; no patient was scanned"
    return [item]


def _common(series_description: str, derivation: str, extra: dict) -> dict:
    """Attributes shared by every slice of the series, in module order (PS3.3 A.3 CT Image IOD)."""
    now = datetime.datetime.now().astimezone()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    offset = now.strftime("%z") or "+0000"
    synthetic_id = uuid.uuid4().hex[:12].upper()
    return {
        # SOP Common
        "SpecificCharacterSet": "ISO_IR 100",
        "SOPClassUID": CTImageStorage,
        "InstanceCreationDate": date, "InstanceCreationTime": time,
        "TimezoneOffsetFromUTC": offset,
        "ContributingEquipmentSequence": _contributing_equipment(date + time + offset),
        # Patient: a made-up patient, one per series
        "PatientName": "SYNTHETIC^PHANTOM", "PatientID": f"SYN-{synthetic_id}",
        "PatientBirthDate": "", "PatientSex": "O",
        # General Study
        "StudyInstanceUID": generate_uid(), "StudyDate": date, "StudyTime": time,
        "ReferringPhysicianName": "", "StudyID": synthetic_id[:8], "AccessionNumber": "",
        "StudyDescription": extra.get("StudyDescription", "SYNTHETIC CT"),
        # General Series
        "Modality": "CT", "SeriesInstanceUID": generate_uid(), "SeriesNumber": extra.get("SeriesNumber", 1),
        "SeriesDate": date, "SeriesTime": time, "SeriesDescription": series_description,
        "PatientPosition": "HFS",
        # CHEST, not LUNG: an unpaired body part, else Laterality (type 2C, R or L) would be required
        "BodyPartExamined": "CHEST",
        # Frame of Reference
        "FrameOfReferenceUID": generate_uid(), "PositionReferenceIndicator": "",
        # General Equipment
        "Manufacturer": MANUFACTURER, "ManufacturerModelName": MANUFACTURER, "SoftwareVersions": _version(),
        # General Image
        "ImageType": ["DERIVED", "SECONDARY", "AXIAL"], "ContentDate": date, "ContentTime": time,
        "DerivationDescription": derivation, "BurnedInAnnotation": "NO", "LossyImageCompression": "00",
        **({"ImageComments": extra["ImageComments"]} if "ImageComments" in extra else {}),
        # Image Pixel (Rows, Columns and PixelData per slice) and CT Image
        "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15, "PixelRepresentation": 1,
        "RescaleIntercept": "0", "RescaleSlope": "1", "RescaleType": "HU",
        "KVP": "",  # type 2: there was no tube
        "AcquisitionNumber": 1,
        # VOI LUT
        "WindowCenter": str(WINDOW[0]), "WindowWidth": str(WINDOW[1]), "WindowCenterWidthExplanation": "LUNG",
    }


def write_dicom_series(folder: str | Path, volume_hu, affine, *, series_description: str, derivation: str,
                       extra: dict | None = None) -> list[Path]:
    """Write ``volume_hu`` [X, Y, Z] (HU) with its RAS+ ``affine`` as a CT series, one file per slice.

    Files ``slice-0001.dcm``... in ``folder`` (which must not exist, or be empty), CT Image Storage,
    Explicit VR Little Endian, int16 HU (rounded, clipped) with RescaleSlope 1, RescaleIntercept 0.
    ``series_description`` (LO, 64 characters) is prefixed with "SYNTHETIC " unless it already says
    synthetic; ``derivation`` (up to 1024 characters) becomes DerivationDescription. ``extra`` may set
    only the keys of ``EXTRA_KEYS``: ImageComments, StudyDescription and SeriesNumber.
    The affine may be oblique and non-isotropic, but not sheared. The folder appears whole or not at all.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SynthscapeError(f"{folder}: already exists and is not an empty folder, expected a new folder")
    volume = np.asarray(volume_hu)
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise SynthscapeError(f"{folder}: expected a 3D volume [X, Y, Z], got shape {volume.shape}")
    if not np.issubdtype(volume.dtype, np.number) or not np.isfinite(volume).all():
        raise SynthscapeError(f"{folder}: volume must be finite numbers (HU), got dtype {volume.dtype}")
    affine = _geometry(folder, affine)
    extra = _extra(folder, extra)
    _text(folder, "series_description", series_description, "LO", 64)
    if "synthetic" not in series_description.lower():
        series_description = f"SYNTHETIC {series_description}".strip()
    common = _common(_text(folder, "series_description", series_description, "LO", 64),
                     _text(folder, "derivation", derivation, "ST", 1024), extra)

    # reorder voxels to the axis order closest to LPS, then express the affine in LPS
    ornt = ornt_transform(io_orientation(affine), axcodes2ornt(("L", "P", "S")))
    volume, affine = reorient(volume, affine, ornt)
    lps = LPS_TO_RAS @ affine  # the flip is its own inverse
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    rowdir, coldir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    normal = np.cross(rowdir, coldir)
    pixels = np.clip(np.rint(volume), -32768, 32767).astype("<i2")

    names = [f"slice-{k + 1:04d}.dcm" for k in range(volume.shape[2])]
    with atomic_dir(folder) as tmp:
        for k, name in enumerate(names):
            ipp = lps[:3, 3] + k * lps[:3, 2]
            sop_uid = generate_uid()
            ds = _dataset(common, sop_uid)
            ds.SOPInstanceUID = sop_uid
            ds.InstanceNumber = k + 1
            ds.PixelSpacing = _ds([spacing[1], spacing[0]])  # [between rows, between columns]
            ds.ImageOrientationPatient = _ds([*rowdir, *coldir])
            ds.ImagePositionPatient = _ds(ipp)
            ds.SliceThickness = format_number_as_ds(float(spacing[2]))
            ds.SliceLocation = format_number_as_ds(float(ipp @ normal))
            ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
            ds.PixelData = np.ascontiguousarray(pixels[:, :, k].T).tobytes()  # [row, column]
            ds.save_as(tmp / name, enforce_file_format=True)
    log.debug("wrote %d slices to %s", len(names), folder)
    return [folder / name for name in names]
