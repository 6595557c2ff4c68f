"""lung-ct DICOM and NIfTI input/output: round trips, geometry, refusals, PHI, and outside tools.

dciodvfy (Debian dicom3tools) and dcm2niix are run when installed; .ci/run installs them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from geometry import rotation
from pydicom.data import get_testdata_file

from synthscape.core.errors import SynthscapeError
from synthscape.domains.lung_ct.dicom import SYNTHESIZING_EQUIPMENT, read_dicom_series, write_dicom_series
from synthscape.domains.lung_ct.nifti import read_nifti, write_nifti

CT_SMALL = get_testdata_file("CT_small.dcm")


def make_affine(spacing, origin=(-10.5, 20.25, -130.0), rot=np.eye(3)) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


ISO = make_affine((1.0, 1.0, 1.0))
ANISO = make_affine((0.7, 0.8, 2.5))
OBLIQUE = make_affine((0.7, 0.8, 2.5), rot=rotation(0, 15) @ rotation(1, -15))
AFFINES = {"isotropic": ISO, "anisotropic": ANISO, "oblique": OBLIQUE}


@pytest.fixture(scope="module")
def hu() -> np.ndarray:
    """An [X, Y, Z] HU volume with no symmetry, so any flip or transpose shows."""
    rng = np.random.default_rng(7)
    x, y, z = np.meshgrid(np.arange(18), np.arange(22), np.arange(7), indexing="ij")
    volume = -1000 + 40 * x + 7 * y + 300 * z + rng.integers(-20, 20, size=x.shape)
    return volume.astype(np.float32)


@pytest.fixture(scope="module")
def series(tmp_path_factory, hu) -> dict[str, Path]:
    """One written series per affine, shared by the read-back tests."""
    root = tmp_path_factory.mktemp("series")
    out = {}
    for name, affine in AFFINES.items():
        write_dicom_series(root / name, hu, affine, series_description=f"lung io test {name}",
                           derivation="test volume", extra={"ImageComments": "condition nodule=present; seed 3",
                                                                  "StudyDescription": "lung io test", "SeriesNumber": 7})
        out[name] = root / name
    return out


def one_line_error(excinfo, folder: Path, *words: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message and str(folder) in message, message
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------- NIfTI


@pytest.mark.parametrize("name", list(AFFINES))
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_nifti_round_trip(tmp_path, hu, name, suffix):
    affine = AFFINES[name]
    path = write_nifti(tmp_path / f"ct{suffix}", hu + 0.3, affine)
    img = nib.load(path)
    header = img.header
    assert header.get_data_dtype() == np.int16
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1
    np.testing.assert_allclose(img.get_sform(), affine, atol=1e-5)
    np.testing.assert_allclose(img.get_qform(), affine, atol=1e-4)
    np.testing.assert_allclose(header.get_zooms(), np.linalg.norm(affine[:3, :3], axis=0), rtol=1e-6)
    assert header.get_xyzt_units()[0] == "mm"
    np.testing.assert_array_equal(np.asarray(img.dataobj), hu.astype(np.int16))  # rounded, not truncated
    volume, read_affine = read_nifti(path)
    assert volume.dtype == np.float32
    np.testing.assert_array_equal(volume, hu)
    np.testing.assert_allclose(read_affine, affine, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ct{suffix}"]  # no temp file left


def test_nifti_clips_to_int16_and_writes_uint8_masks(tmp_path):
    path = write_nifti(tmp_path / "big.nii.gz", np.array([[[-40000.0, 40000.0, 12.6]]]), ISO)
    np.testing.assert_array_equal(read_nifti(path)[0].ravel(), [-32768, 32767, 13])
    mask = write_nifti(tmp_path / "mask.nii.gz", np.array([[[0, 1, 2]]]), ISO, dtype=np.uint8)
    img = nib.load(mask)
    assert img.get_data_dtype() == np.uint8 and img.header.get_intent()[0] == "label"
    np.testing.assert_array_equal(np.asarray(img.dataobj).ravel(), [0, 1, 2])


def test_read_nifti_reorients_to_ras(tmp_path, hu):
    lps = ANISO.copy()
    lps[:2] *= -1  # the same voxels labelled in LPS order: axes 0 and 1 run towards L and P
    path = write_nifti(tmp_path / "lps.nii.gz", hu, lps)
    volume, affine = read_nifti(path)
    np.testing.assert_array_equal(volume, hu[::-1, ::-1])
    assert (np.diag(affine)[:3] > 0).all()
    corner = np.array([hu.shape[0] - 1, hu.shape[1] - 1, 0, 1])
    np.testing.assert_allclose(affine[:, 3], lps @ corner, atol=1e-5)


def test_nifti_refusals(tmp_path, hu):
    path = write_nifti(tmp_path / "ct.nii.gz", hu, ISO)
    with pytest.raises(SynthscapeError, match="already exists") as excinfo:
        write_nifti(path, hu, ISO)
    one_line_error(excinfo, path)
    write_nifti(path, hu * 0, ISO, overwrite=True)
    assert read_nifti(path)[0].max() == 0
    with pytest.raises(SynthscapeError, match="no such NIfTI file") as excinfo:
        read_nifti(tmp_path / "missing.nii.gz")
    one_line_error(excinfo, tmp_path / "missing.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"this is not a nifti file")
    with pytest.raises(SynthscapeError, match="unreadable") as excinfo:
        read_nifti(bad)
    one_line_error(excinfo, bad)
    with pytest.raises(SynthscapeError, match=".nii"):
        write_nifti(tmp_path / "ct.img", hu, ISO)
    with pytest.raises(SynthscapeError, match="NaN"):
        write_nifti(tmp_path / "nan.nii.gz", np.full((2, 2, 2), np.nan), ISO)


# ---------------------------------------------------------------- DICOM round trip


@pytest.mark.parametrize("name", list(AFFINES))
def test_dicom_round_trip(series, hu, name):
    volume, affine = read_dicom_series(series[name])
    assert volume.dtype == np.float32 and volume.shape == hu.shape
    np.testing.assert_allclose(volume, hu, atol=0.5)
    np.testing.assert_allclose(affine, AFFINES[name], atol=1e-4)


def test_written_headers(series, hu):
    files = sorted(series["anisotropic"].iterdir())
    assert [f.name for f in files] == [f"slice-{k:04d}.dcm" for k in range(1, hu.shape[2] + 1)]
    slices = [pydicom.dcmread(f) for f in files]
    first = slices[0]
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert first.SOPClassUID == first.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert first.Modality == "CT" and list(first.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
    assert first.SeriesDescription == "SYNTHETIC lung io test anisotropic"
    assert first.Manufacturer == "synthscape" and first.BurnedInAnnotation == "NO"
    assert first.ImageComments == "condition nodule=present; seed 3"
    assert (first.StudyDescription, first.SeriesNumber, first.BodyPartExamined) == ("lung io test", 7, "CHEST")
    item = first.ContributingEquipmentSequence[0]
    code = item.PurposeOfReferenceCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == SYNTHESIZING_EQUIPMENT
    assert SYNTHESIZING_EQUIPMENT == ("109100", "DCM", "Synthesizing Equipment")
    assert item.Manufacturer == "synthscape"
    assert (first.PixelRepresentation, first.BitsAllocated, first.RescaleSlope, first.RescaleIntercept) == (1, 16, 1, 0)
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]  # standard axial
    assert [float(v) for v in first.PixelSpacing] == [0.8, 0.7]  # [between rows, between columns]
    assert float(first.SliceThickness) == 2.5
    assert "PatientIdentityRemoved" not in first
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID"):
        assert len({str(s.get(key)) for s in slices}) == 1
    assert len({s.SOPInstanceUID for s in slices}) == len(slices)
    assert [s.InstanceNumber for s in slices] == list(range(1, len(slices) + 1))
    z = [float(s.ImagePositionPatient[2]) for s in slices]
    np.testing.assert_allclose(np.diff(z), 2.5)
    other = pydicom.dcmread(sorted(series["isotropic"].iterdir())[0])
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID", "SOPInstanceUID"):
        assert other.get(key) != first.get(key)  # fresh per series


def test_write_dicom_refusals(tmp_path, hu):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    with pytest.raises(SynthscapeError, match="not an empty folder") as excinfo:
        write_dicom_series(taken, hu, ISO, series_description="s", derivation="d")
    one_line_error(excinfo, taken)
    out = tmp_path / "out"
    with pytest.raises(SynthscapeError, match="PatientName") as excinfo:
        write_dicom_series(out, hu, ISO, series_description="s", derivation="d", extra={"PatientName": "Doe^John"})
    one_line_error(excinfo, out, "allowed: ImageComments")
    for bad in ({"SeriesNumber": "7"}, {"SeriesNumber": -1}, {"StudyDescription": "x" * 65},
                {"StudyDescription": "a\\b"}, {"ImageComments": "\u65e5\u672c"}, {"BodyPartExamined": "LUNG"}):
        with pytest.raises(SynthscapeError) as excinfo:
            write_dicom_series(out, hu, ISO, series_description="s", derivation="d", extra=bad)
        one_line_error(excinfo, out, next(iter(bad)))
    with pytest.raises(SynthscapeError, match="series_description"):
        write_dicom_series(out, hu, ISO, series_description="s" * 70, derivation="d")
    sheared = ISO.copy()
    sheared[0, 1] = 0.3
    with pytest.raises(SynthscapeError, match="sheared"):
        write_dicom_series(out, hu, sheared, series_description="s", derivation="d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # nothing partial
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(write_dicom_series(empty, hu, ISO, series_description="s", derivation="d")) == hu.shape[2]


# ---------------------------------------------------------------- MONAI


@pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader")
@pytest.mark.parametrize("name", ["anisotropic", "oblique"])
def test_monai_reads_series_like_the_nifti(tmp_path, series, hu, name):
    pytest.importorskip("monai")
    from monai.transforms import LoadImage, Orientation

    nifti = write_nifti(tmp_path / "ct.nii.gz", hu, AFFINES[name])
    orient = Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))
    from_dicom = orient(LoadImage(reader="PydicomReader", image_only=True, ensure_channel_first=True)(series[name]))
    from_nifti = orient(LoadImage(reader="NibabelReader", image_only=True, ensure_channel_first=True)(nifti))
    np.testing.assert_allclose(from_dicom.affine.numpy(), from_nifti.affine.numpy(), atol=1e-3)
    np.testing.assert_allclose(from_dicom.affine.numpy(), AFFINES[name], atol=1e-3)
    np.testing.assert_array_equal(from_dicom.numpy(), from_nifti.numpy())
    np.testing.assert_array_equal(from_dicom.numpy()[0], hu)


# ---------------------------------------------------------------- CT_small.dcm


def test_ct_small_hu_and_geometry(tmp_path):
    folder = tmp_path / "ct_small"
    folder.mkdir()
    shutil.copy(CT_SMALL, folder / "CT_small.dcm")
    (folder / "notes.txt").write_text("not DICOM; ignored")
    with pytest.raises(SynthscapeError, match="single slice") as excinfo:
        read_dicom_series(folder)
    one_line_error(excinfo, folder)
    volume, affine = read_dicom_series(folder, allow_single_slice=True)
    ds = pydicom.dcmread(CT_SMALL)
    raw = ds.pixel_array.astype(np.float64)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert volume.shape == (ds.Columns, ds.Rows, 1)
    assert -1100 < volume.min() < volume.max() < 3100 and intercept == -1024
    ipp = np.array(ds.ImagePositionPatient, dtype=float)
    rowdir, coldir = np.array(ds.ImageOrientationPatient[:3], float), np.array(ds.ImageOrientationPatient[3:], float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    inv = np.linalg.inv(affine)
    for r, c in [(0, 0), (5, 100), (64, 64), (127, 3), (90, 127)]:
        lps = ipp + c * dc * rowdir + r * dr * coldir  # PS3.3 C.7.6.2.1.1
        ras = np.array([-lps[0], -lps[1], lps[2], 1.0])
        i, j, k = np.rint(inv @ ras)[:3].astype(int)
        np.testing.assert_allclose(inv @ ras, [i, j, k, 1], atol=1e-6)
        assert volume[i, j, k] == raw[r, c] * slope + intercept
    np.testing.assert_allclose(np.abs(affine[:3, :3]), np.diag([dc, dr, float(ds.SliceThickness)]), atol=1e-6)
    assert (np.diag(affine)[:3] > 0).all()  # RAS+


# ---------------------------------------------------------------- reader refusals


def copy_series(source: Path, target: Path, edit=None, skip=()) -> Path:
    target.mkdir()
    for k, path in enumerate(sorted(source.iterdir())):
        if path.name in skip:
            continue
        ds = pydicom.dcmread(path)
        if edit:
            edit(k, ds)
        ds.save_as(target / path.name)
    return target


def set_on(index: int, keyword: str, value):
    """An edit for copy_series: set ``keyword`` on the slice at ``index`` (sorted file order)."""
    return lambda k, ds: setattr(ds, keyword, value) if k == index else None


def test_reader_refusals(tmp_path, series):
    source = series["anisotropic"]
    first = pydicom.dcmread(sorted(source.iterdir())[0])
    shifted = [*first.ImagePositionPatient[:2], float(first.ImagePositionPatient[2]) + 4 * 2.5 + 0.6]
    empty = tmp_path / "empty"
    empty.mkdir()
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "readme.txt").write_text("hello")
    cases = [
        ("modality MR, expected CT", copy_series(source, tmp_path / "mr", lambda k, ds: setattr(ds, "Modality", "MR"))),
        ("uneven slice spacing", copy_series(source, tmp_path / "gap", skip={"slice-0003.dcm"})),
        ("uneven slice spacing", copy_series(source, tmp_path / "uneven", set_on(4, "ImagePositionPatient", shifted))),
        ("two slices at position", copy_series(source, tmp_path / "dup",
                                               set_on(1, "ImagePositionPatient", first.ImagePositionPatient))),
        ("no valid ImagePositionPatient", copy_series(source, tmp_path / "noipp",
                                                      lambda k, ds: k == 2 and delattr(ds, "ImagePositionPatient"))),
        ("no valid PixelSpacing", copy_series(source, tmp_path / "nops", lambda k, ds: delattr(ds, "PixelSpacing"))),
        ("expected the same orientation", copy_series(source, tmp_path / "tilt",
                                                      set_on(1, "ImageOrientationPatient", [1, 0, 0, 0, 0.8, 0.6]))),
        ("no DICOM image files found", empty),
        ("no DICOM image files found", only_text),
    ]
    for expected, folder in cases:
        with pytest.raises(SynthscapeError) as excinfo:
            read_dicom_series(folder)
        one_line_error(excinfo, folder, expected)
    with pytest.raises(SynthscapeError, match="not a folder"):
        read_dicom_series(tmp_path / "missing")


def test_two_series_in_one_folder(tmp_path, series, hu):
    both = tmp_path / "both"
    both.mkdir()
    for name in ("isotropic", "anisotropic"):
        for path in series[name].iterdir():
            shutil.copy(path, both / f"{name}-{path.name}")
    with pytest.raises(SynthscapeError, match="2 series found") as excinfo:
        read_dicom_series(both)
    one_line_error(excinfo, both, "series_uid=")
    uid = str(pydicom.dcmread(next(series["anisotropic"].iterdir())).SeriesInstanceUID)
    assert uid in str(excinfo.value)
    volume, affine = read_dicom_series(both, series_uid=uid)
    np.testing.assert_allclose(affine, ANISO, atol=1e-4)
    with pytest.raises(SynthscapeError, match="no series 1.2.3"):
        read_dicom_series(both, series_uid="1.2.3")


# ---------------------------------------------------------------- PHI


def test_no_source_phi_reaches_written_files(tmp_path):
    phi = {"PatientName": "Doe^Jane^PHI", "PatientID": "PHI-12345", "PatientBirthDate": "19450101",
           "InstitutionName": "PHI General Hospital", "ReferringPhysicianName": "Dr^PHI",
           "AccessionNumber": "PHIACC9", "StudyID": "PHISTUDY7", "StationName": "PHISTATION",
           "StudyDescription": "PHI chest study", "SeriesDescription": "PHI series", "OperatorsName": "Op^PHI",
           "PerformingPhysicianName": "Perf^PHI", "InstitutionAddress": "1 PHI Street", "OtherPatientNames": "Roe^PHI",
           "DeviceSerialNumber": "PHISN42", "ImageComments": "PHI comment", "PatientAddress": "2 PHI Road"}
    ds = pydicom.dcmread(CT_SMALL)
    for key, value in phi.items():
        setattr(ds, key, value)
    other = pydicom.Dataset()
    other.PatientID, other.IssuerOfPatientID = "PHI-OTHER-678", "PHI-ISSUER"
    ds.OtherPatientIDsSequence = [other]
    uids = {"StudyInstanceUID": "1.2.999.777.1", "SeriesInstanceUID": "1.2.999.777.2",
            "FrameOfReferenceUID": "1.2.999.777.3", "SOPInstanceUID": "1.2.999.777.4"}
    for key, value in uids.items():
        setattr(ds, key, value)
    ds.file_meta.MediaStorageSOPInstanceUID = uids["SOPInstanceUID"]
    source = tmp_path / "source"
    source.mkdir()
    ds.save_as(source / "image.dcm")

    volume, affine = read_dicom_series(source, allow_single_slice=True)
    files = write_dicom_series(tmp_path / "out", volume, affine, series_description="phi test", derivation="copy")

    standard = set(pydicom.uid.UID_dictionary)
    secrets = {*phi.values(), "PHI-OTHER-678", "PHI-ISSUER", *uids.values()}
    secrets |= {str(e.value) for e in pydicom.dcmread(CT_SMALL).iterall() if e.VR == "UI" and str(e.value) not in standard}
    secrets |= {"CompressedSamples", "JFK IMAGING CENTER", "1CT1"}  # CT_small's own identifiers
    assert len(secrets) > 25
    seen = 0
    for path in files:
        out = pydicom.dcmread(path)
        raw = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in raw, (path.name, secret)
        for element in [*out.file_meta.iterall(), *out.iterall()]:
            seen += 1
            if element.VR in ("SQ", "OB", "OW"):
                continue
            text = str(element.value)
            assert not any(secret in text or text == secret for secret in secrets), (path.name, element)
            assert "PHI" not in text, (path.name, element)
    assert seen > 40
    np.testing.assert_allclose(read_dicom_series(tmp_path / "out", allow_single_slice=True)[0], volume)


# ---------------------------------------------------------------- outside tools


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy not installed (Debian package dicom3tools)")
@pytest.mark.parametrize("name", list(AFFINES))
def test_dciodvfy_finds_no_errors(series, name):
    files = sorted(series[name].iterdir())
    for path in files:
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        report = result.stdout + result.stderr
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert not errors, f"{path.name}: {errors}"
        assert "CTImage" in report
    if shutil.which("dcentvfy"):  # patient, study, series and frame of reference agree across the files
        result = subprocess.run(["dcentvfy", *map(str, files)], capture_output=True, text=True, timeout=60)
        assert "Error" not in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed (Debian package dcm2niix)")
@pytest.mark.parametrize("name", ["anisotropic", "oblique"])
def test_dcm2niix_agrees_with_our_nifti(tmp_path, series, hu, name):
    out = tmp_path / "dcm2niix"
    out.mkdir()
    result = subprocess.run(["dcm2niix", "-z", "y", "-b", "n", "-f", "converted", "-o", str(out), str(series[name])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    converted = nib.as_closest_canonical(nib.load(out / "converted.nii.gz"))
    ours = nib.as_closest_canonical(nib.load(write_nifti(tmp_path / "ours.nii.gz", hu, AFFINES[name])))
    np.testing.assert_allclose(converted.affine, ours.affine, atol=1e-3)
    np.testing.assert_array_equal(converted.get_fdata(), ours.get_fdata())
