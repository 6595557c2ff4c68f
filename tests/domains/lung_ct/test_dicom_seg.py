"""DICOM Segmentation (SEG) of a generated sample's label map: validity, geometry, references, refusals.

The geometry check does not trust the writer's own orientation code: each CT voxel's HU encodes
its RAS [X, Y, Z] index, so a SEG frame pixel is placed back by reading the CT pixel it covers.
dciodvfy (Debian dicom3tools) is run when installed; .ci/run installs it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from geometry import rotation

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.labelmap import LabelMapSchema
from synthscape.domains.lung_ct.dicom import read_dicom_series, write_dicom_series
from synthscape.domains.lung_ct.dicom_seg import write_dicom_seg
from synthscape.domains.lung_ct.schema import LABELS

SHAPE = (16, 14, 12)  # X != Y: a row/column swap cannot hide


def make_affine(spacing, rot=None) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = (np.eye(3) if rot is None else rot) @ np.diag(spacing)
    affine[:3, 3] = (-10.5, 20.25, -130.0)
    return affine


AFFINES = {"anisotropic": make_affine((0.7, 0.8, 2.5)),
           "oblique": make_affine((0.7, 0.8, 2.5), rot=rotation(0, 15) @ rotation(1, -15))}


def coded_hu() -> np.ndarray:
    """HU = -1024 + the voxel's flat index: every CT pixel names the RAS voxel it shows."""
    return (np.arange(np.prod(SHAPE)).reshape(SHAPE, order="F") - 1024).astype(np.float32)


def decode(hu: np.ndarray) -> tuple[np.ndarray, ...]:
    return np.unravel_index(np.rint(hu).astype(np.int64) + 1024, SHAPE, order="F")


def layout() -> np.ndarray:
    """A lung block with a small ground-glass nodule (class 3), a vessel (5) and an airway (6) inside
    it, off-centre on every axis."""
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[2:13, 3:12, 1:10] = LABELS.id("lung")
    labels[4:6, 8:11, 6:8] = LABELS.id("nodule_ground_glass")
    labels[7:9, 4:6, 2:9] = LABELS.id("vessel")
    labels[10:12, 5:7, 3:5] = LABELS.id("airway")
    return labels


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """(series folder, SEG file) per affine, shared by the read-back tests."""
    root = tmp_path_factory.mktemp("seg")
    out = {}
    for name, affine in AFFINES.items():
        write_dicom_series(root / name, coded_hu(), affine, series_description=f"seg test {name}", derivation="test")
        out[name] = (root / name, write_dicom_seg(root / f"{name}.seg.dcm", layout(), root / name, LABELS,
                                                  description=f"layout {name}"))
    return out


def ct_files(folder: Path) -> dict[str, pydicom.Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, sorted(folder.iterdir()))}


def reassembled(seg: pydicom.Dataset, cts: dict[str, pydicom.Dataset]) -> dict[int, np.ndarray]:
    """Each segment's frames placed back onto RAS voxels through the CT pixel each frame pixel covers."""
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), int(seg.Rows), int(seg.Columns))
    out = {int(item.SegmentNumber): np.zeros(SHAPE, dtype=bool) for item in seg.SegmentSequence}
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        sop = str(group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        ct = cts[sop]
        assert frame.shape == ct.pixel_array.shape
        np.testing.assert_array_equal(group.PlanePositionSequence[0].ImagePositionPatient, ct.ImagePositionPatient)
        out[number][decode(ct.pixel_array)] = frame.astype(bool)
    return out


def dciodvfy_errors(path: Path) -> list[str]:
    """The lines dciodvfy starts with "Error" (the standard the series tests hold the CT files to)."""
    result = subprocess.run(["dciodvfy", str(path)], check=False, capture_output=True, text=True, timeout=60)
    report = result.stdout + result.stderr
    assert "Segmentation" in report, report
    return [line for line in report.splitlines() if line.startswith("Error")]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy not installed (Debian package dicom3tools)")
@pytest.mark.parametrize("name", list(AFFINES))
def test_dciodvfy_finds_no_errors(written, name):
    path = written[name][1]
    errors = dciodvfy_errors(path)
    assert not errors, f"{path.name}: {errors}"


@pytest.mark.parametrize("name", list(AFFINES))
def test_segments_lie_on_the_ct_voxels_they_label(written, name):
    folder, path = written[name]
    np.testing.assert_array_equal(read_dicom_series(folder)[0], coded_hu())  # the map's order is the reader's
    seg = pydicom.dcmread(path)
    assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG"
    masks = reassembled(seg, ct_files(folder))
    labels = layout()
    assert sorted(masks) == [1, 2, 3, 4]
    for number, class_id in ((1, 1), (2, 3), (3, 5), (4, 6)):
        np.testing.assert_array_equal(masks[number], labels == class_id)
    assert [masks[n].sum() for n in (1, 2, 3, 4)] == [11 * 9 * 9 - 12 - 28 - 8, 12, 28, 8]


def test_seg_references_the_ct_series(written):
    folder, path = written["oblique"]
    cts = ct_files(folder)
    first = next(iter(cts.values()))
    seg = pydicom.dcmread(path)
    (ref,) = seg.ReferencedSeriesSequence
    assert ref.SeriesInstanceUID == first.SeriesInstanceUID
    referenced = {str(item.ReferencedSOPInstanceUID) for item in ref.ReferencedInstanceSequence}
    assert referenced == set(cts)
    assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert seg.StudyInstanceUID == first.StudyInstanceUID and seg.PatientID == first.PatientID
    assert seg.SeriesInstanceUID != first.SeriesInstanceUID


def test_segments_are_coded_and_marked_synthetic(written):
    seg = hd.seg.segread(written["anisotropic"][1])
    items = {int(item.SegmentNumber): item for item in seg.SegmentSequence}
    assert {n: item.SegmentLabel for n, item in items.items()} == \
        {1: "lung", 2: "nodule_ground_glass", 3: "vessel", 4: "airway"}
    lung, nodule, vessel, airway = items[1], items[2], items[3], items[4]
    assert (lung.SegmentedPropertyCategoryCodeSequence[0].CodeValue, lung.SegmentedPropertyTypeCodeSequence[0].CodeValue) \
        == ("91723000", "39607008")
    assert (nodule.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            nodule.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            nodule.AnatomicRegionSequence[0].CodeValue) == ("49755003", "27925004", "39607008")
    assert (vessel.SegmentedPropertyTypeCodeSequence[0].CodeValue, vessel.AnatomicRegionSequence[0].CodeValue) == \
        ("59820001", "39607008")  # blood vessel, in the lung
    assert airway.SegmentedPropertyTypeCodeSequence[0].CodeValue == "89187006"  # airway structure
    assert all(item.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT" for item in items.values())
    assert all(item.SegmentAlgorithmType == "AUTOMATIC" for item in items.values())
    assert "synthscape" in nodule.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName
    assert seg.SeriesDescription == "SYNTHETIC layout anisotropic"
    assert "exact" in seg.ContentDescription and "synthetic" in seg.ContentDescription.lower()
    purposes = [item.PurposeOfReferenceCodeSequence[0].CodeValue for item in seg.ContributingEquipmentSequence]
    assert "109100" in purposes  # Synthesizing Equipment, as on the CT series


def test_segment_numbers_follow_the_classes_present(tmp_path):
    write_dicom_series(tmp_path / "ct", coded_hu(), AFFINES["anisotropic"], series_description="t", derivation="t")
    labels = np.zeros(SHAPE, dtype=np.uint8)
    labels[1:3, 1:3, 1:3] = LABELS.id("nodule_solid")
    labels[9:12, 9:12, 5:7] = LABELS.id("nodule_part_solid")
    seg = pydicom.dcmread(write_dicom_seg(tmp_path / "seg.dcm", labels, tmp_path / "ct", LABELS, description="t"))
    assert [(int(s.SegmentNumber), s.SegmentLabel) for s in seg.SegmentSequence] == \
        [(1, "nodule_solid"), (2, "nodule_part_solid")]
    masks = reassembled(seg, ct_files(tmp_path / "ct"))
    np.testing.assert_array_equal(masks[1], labels == 2)
    np.testing.assert_array_equal(masks[2], labels == 4)


def test_background_only_gives_one_empty_lung_segment(tmp_path):
    write_dicom_series(tmp_path / "ct", coded_hu(), AFFINES["oblique"], series_description="t", derivation="t")
    seg = pydicom.dcmread(write_dicom_seg(tmp_path / "seg.dcm", np.zeros(SHAPE, np.uint8), tmp_path / "ct", LABELS,
                                         description="empty"))
    assert [(int(s.SegmentNumber), s.SegmentLabel) for s in seg.SegmentSequence] == [(1, "lung")]
    assert int(seg.NumberOfFrames) == SHAPE[2]  # every frame kept, all empty
    assert not seg.pixel_array.any()
    if shutil.which("dciodvfy"):
        assert not dciodvfy_errors(tmp_path / "seg.dcm")


def test_bad_inputs_are_one_line_errors(tmp_path, written):
    folder = written["anisotropic"][0]
    target = tmp_path / "seg.dcm"
    cases = [
        (np.zeros((14, 16, 12), np.uint8), folder, ["shape (14, 16, 12)", "expected (16, 14, 12)"]),
        (np.where(layout() == 3, 9, layout()).astype(np.uint8), folder, ["9", "0..6"]),
        (layout(), tmp_path / "missing", ["missing", "not a folder"]),
        (layout(), tmp_path, ["no DICOM image files"]),
        (layout()[..., 0], folder, ["3D"]),
    ]
    for labels, series, words in cases:
        with pytest.raises(SynthscapeError) as excinfo:
            write_dicom_seg(target, labels, series, LABELS, description="bad")
        message = str(excinfo.value)
        assert "\n" not in message, message
        assert all(word in message for word in words), message
    with pytest.raises(SynthscapeError, match="'car' has no coded concept"):
        write_dicom_seg(target, (layout() > 0).astype(np.uint8), folder, LabelMapSchema(("background", "car")),
                        description="bad")
    assert not any(tmp_path.iterdir())  # nothing half-written left behind
