"""Write a generated sample's label map as a DICOM Segmentation (SEG) of its CT series. highdicom, no torch.

A layout model renders its CT from a label map, so the map is the sample's mask exactly, by
construction, not a segmenter's estimate. Written as a SEG that references the CT series, a
viewer (3D Slicer, OHIF) overlays it on the right slices and any DICOM tool reads the classes as
coded concepts, not as bare numbers.

Geometry: ``label_map`` is in the voxel order ``read_dicom_series`` returns for the same series
(the RAS+ order of the volume given to ``write_dicom_series``). The series' own array is
[column, row, slice] with slices sorted along rowdir x coldir, as the reader builds it; the map is
turned back into that order by the inverse of the reader's reorientation, so SEG frame pixel
(row, col) for CT file k covers exactly the CT's pixel (row, col) of file k.

The header comes from highdicom's arguments only (it takes patient, study and frame of reference
from the source images itself); nothing of the CT headers is copied by hand. Synthetic marks, as on
the series: Contributing Equipment with purpose (DCM 109100, "Synthesizing Equipment"),
SeriesDescription starting "SYNTHETIC", and a ContentDescription that says the mask is the
generator's input layout.
"""

from __future__ import annotations

import logging
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.files.atomic import atomic_path
from synthscape.core.schema.labelmap import LabelMapSchema
from synthscape.domains.lung_ct.dicom_read import LPS_TO_RAS, _geometry, _pick, _scan
from synthscape.domains.lung_ct.dicom_write import MANUFACTURER, _text, _version

log = logging.getLogger(__name__)

SEG_SERIES_NUMBER = 100  # the SEG's own series, in the CT's study (one study per generated sample)
CONTENT_LABEL = "SYNTHETIC_LAYOUT"  # CS, at most 16 characters
CONTENT_DESCRIPTION = "Generator input layout: exact mask by construction, synthetic"
# Coded concepts (SNOMED CT, as CID 7150/7151 and the LIDC-IDRI SEG conversions use them):
# lung: category Anatomical Structure (SCT 91723000), type Lung (SCT 39607008);
# every nodule class: category Morphologically Abnormal Structure (SCT 49755003), type Nodule
# (SCT 27925004), anatomic region Lung. SNOMED CT has no pre-coordinated solid / ground-glass /
# part-solid nodule concept in pydicom's code dictionary (only DCM 112120 "Ground glass opacity",
# an opacity, not a nodule type), so the kind stays in the SegmentLabel (our class name).
# vessel: Anatomical Structure, Blood Vessel (SCT 59820001), region Lung; airway: Anatomical
# Structure, Airway structure (SCT 89187006; not in pydicom's dictionary, so spelled out here).
LUNG = (codes.SCT.AnatomicalStructure, codes.SCT.Lung, None)
NODULE = (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Nodule, [codes.SCT.Lung])
CONCEPTS = {"lung": LUNG, "vessel": (codes.SCT.AnatomicalStructure, codes.SCT.BloodVessel, [codes.SCT.Lung]),
            "airway": (codes.SCT.AnatomicalStructure, Code("89187006", "SCT", "Airway structure"), None)}
# The map comes from a layout model (or the procedural phantom standing in for one): CID 7162 has no
# "procedural" family, and Artificial Intelligence (DCM 123110) names the layout model's.
ALGORITHM_FAMILY = codes.cid7162.ArtificialIntelligence


def _series(folder: Path) -> tuple[list[pydicom.Dataset], np.ndarray]:
    """The series' headers sorted along the slice normal, and the nibabel orientation that takes
    its [column, row, slice] array to RAS+ (what ``read_dicom_series`` applies)."""
    if not folder.is_dir():
        raise SynthscapeError(f"{folder}: not a folder, expected the CT series folder write_dicom_series wrote")
    # CT series only: a SEG written into the folder earlier is a series of its own, not a second CT
    files = _pick(folder, {uid: f for uid, f in _scan(folder).items() if f[0][1].get("Modality") == "CT"}, None)
    rowdir, coldir, _, ipps = _geometry(folder, files)
    normal = np.cross(rowdir, coldir)
    order = np.argsort(ipps @ normal, kind="stable")
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = rowdir, coldir, normal  # only the axis directions matter here
    return [files[i][1] for i in order], io_orientation(LPS_TO_RAS @ lps)


def _frames(path: Path, label_map: np.ndarray, sources: list[pydicom.Dataset], ornt: np.ndarray) -> np.ndarray:
    """``label_map`` (RAS+ order) as [slice k, row, column], slice k lying on ``sources[k]``."""
    shape = (int(sources[0].Columns), int(sources[0].Rows), len(sources))  # the series' [c, r, k]
    expected = tuple(shape[int(np.flatnonzero(ornt[:, 0] == axis)[0])] for axis in range(3))
    if label_map.shape != expected:
        raise SynthscapeError(f"{path}: label map has shape {label_map.shape}, expected {expected} "
                              f"([X, Y, Z] of the {len(sources)}-slice series)")
    series_order = apply_orientation(label_map, ornt_transform(axcodes2ornt("RAS"), ornt))
    return np.ascontiguousarray(series_order.transpose(2, 1, 0))  # [c, r, k] -> [k, r, c]


def _segments(path: Path, present: list[int], labels: LabelMapSchema) -> list[hd.seg.SegmentDescription]:
    """One segment per class id in ``present``, numbered 1.. in class order, labelled by class name."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name="synthscape layout", family=ALGORITHM_FAMILY, version=_version(), source=MANUFACTURER)
    out = []
    for number, class_id in enumerate(present, start=1):
        name = labels.classes[class_id]
        if name not in CONCEPTS and not name.startswith("nodule_"):
            raise SynthscapeError(f"{path}: label-map class {shown(repr(name))} has no coded concept here, "
                                  f"expected lung-ct's classes ({', '.join(CONCEPTS)}, nodule_*)")
        category, kind, regions = NODULE if name.startswith("nodule_") else CONCEPTS[name]
        out.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=name, segmented_property_category=category,
            segmented_property_type=kind, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, anatomic_regions=regions))
    return out


def write_dicom_seg(path: Path, label_map: np.ndarray, series: Path, labels: LabelMapSchema, *,
                    description: str) -> Path:
    """Write ``label_map`` (uint8 [X, Y, Z], RAS+, ids of ``labels``) as a BINARY DICOM SEG at ``path``.

    Why: the generated CT and its exact mask travel together in DICOM, so PACS and viewers show
    the layout the generator was given on the very slices it made. ``series`` is the folder
    ``write_dicom_series`` wrote for the same volume; the SEG references all of its files and shares
    its study and frame of reference. One segment per non-background class present, numbered 1..n
    in class-id order, SegmentLabel = class name. A map of background only still gives a valid SEG:
    one segment, the first non-background class (lung-ct: lung), with every frame empty, so "this
    sample has none of it" is stated rather than leaving no file. ``description`` (LO, 64) becomes
    SeriesDescription, prefixed "SYNTHETIC " unless it says synthetic. Written atomically; bad input
    raises SynthscapeError naming the file or value.
    """
    path, series = Path(path), Path(series)
    _text(path, "description", description, "LO", 64)
    if "synthetic" not in description.lower():
        description = _text(path, "description", f"SYNTHETIC {description}".strip(), "LO", 64)
    array = np.asarray(label_map)
    if array.ndim != 3:
        raise SynthscapeError(f"{path}: label map must be 3D [X, Y, Z], got shape {shown(array.shape)}")
    array = labels.check(array, f"{path}: label map")
    sources, ornt = _series(series)
    frames = _frames(path, array, sources, ornt)
    present = [int(v) for v in np.unique(frames) if v != 0]
    empty = not present
    if empty:
        present = [1]
    lookup = np.zeros(len(labels), dtype=np.uint8)  # class id -> segment number (label-map style input)
    lookup[present] = np.arange(1, len(present) + 1)
    seg = _build(sources, lookup[frames], _segments(path, present, labels), description, omit_empty=not empty)
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    log.debug("wrote SEG %s: %d segment(s), %d frame(s) on %s", path, len(present), seg.NumberOfFrames, series)
    return path


def _build(sources: list[pydicom.Dataset], frames: np.ndarray, segments: list[hd.seg.SegmentDescription],
           description: str, *, omit_empty: bool) -> hd.seg.Segmentation:
    """The Segmentation object; every header value here is a highdicom argument."""
    synthesizer = hd.ContributingEquipment(
        manufacturer=MANUFACTURER, purpose_of_reference=codes.DCM.SynthesizingEquipment,
        manufacturer_model_name=MANUFACTURER, software_versions=_version(),
        contribution_description="Synthetic mask made by synthscape; no patient was scanned")
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments, series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER, software_versions=_version(),
        device_serial_number="0",  # software has no serial number; the attribute is type 1
        content_description=CONTENT_DESCRIPTION, content_label=CONTENT_LABEL, series_description=description,
        omit_empty_frames=omit_empty,  # an all-empty map keeps every frame: highdicom cannot omit them all
        contributing_equipment=[synthesizer])
