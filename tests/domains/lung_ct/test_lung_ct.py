"""The lung-ct domain end to end: simulate -> MONAI dataset -> train -> sample -> NIfTI + DICOM."""

import csv
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.domains import get_domain
from synthscape.domains.lung_ct.dataset import LungCTDataset
from synthscape.domains.lung_ct.dicom import read_dicom_series
from synthscape.domains.lung_ct.domain import centred_affine
from synthscape.domains.lung_ct.phantom import default_spacing
from synthscape.domains.lung_ct.schema import SCHEMA

DOMAIN = get_domain("lung-ct")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("lung") / "data"
    return DOMAIN.simulate(out, count=6, seed=0, size=16, formats="nifti,dicom")


def rows_of(folder):
    return list(csv.DictReader((folder / "labels.csv").open()))


def test_simulated_data_set_is_labelled_and_consistent(data):
    rows = rows_of(data)
    assert len(rows) == 6
    spacing = default_spacing((16, 16, 16))
    for row in rows:
        image = nib.load(data / row["path"])
        assert image.get_data_dtype() == np.int16 and image.shape == (16, 16, 16)
        np.testing.assert_allclose(image.affine, centred_affine((16,) * 3, spacing), atol=1e-5)
        nodule = np.asarray(nib.load(data / row["nodule_mask"]).dataobj)
        lung = np.asarray(nib.load(data / row["lung_mask"]).dataobj)
        assert (nodule.any()) == (row["nodule"] == "present")
        assert not (nodule & (1 - lung)).any()  # nodule inside the lungs
        hu, affine = read_dicom_series(data / row["dicom"])
        np.testing.assert_allclose(hu, np.asarray(image.dataobj), atol=0.5)
        np.testing.assert_allclose(affine, image.affine, atol=1e-4)


def test_workers_make_the_same_volumes(data, tmp_path):
    """Volume i depends on (seed, i) alone: two processes write what one wrote (DICOM UIDs aside)."""
    parallel = DOMAIN.simulate(tmp_path / "parallel", count=6, seed=0, size=16, formats="nifti", workers=2)
    rows = rows_of(parallel)
    assert [{k: v for k, v in r.items() if k != "dicom"} for r in rows_of(data)] == \
        [{k: v for k, v in r.items() if k != "dicom"} for r in rows]
    for row in rows:
        for column in ("path", "lung_mask", "nodule_mask"):
            assert np.array_equal(np.asarray(nib.load(parallel / row[column]).dataobj),
                                  np.asarray(nib.load(data / row[column]).dataobj))


def test_nodule_mix_narrows_sizes_and_kinds(tmp_path, capsys):
    """--nodule-sizes/--nodule-kinds: every nodule drawn from the values given, diameters in their bins."""
    assert main(["-q", "simulate", "lung-ct", "--out", str(tmp_path / "d"), "--count", "12", "--size", "16",
                 "--spacing", "2.5", "--nodule-sizes", "large", "--nodule-kinds", "solid,part_solid"]) == 0
    rows = rows_of(tmp_path / "d")
    present = [r for r in rows if r["nodule"] == "present"]
    assert 0 < len(present) < 12 and all(r["size"] == "none" and r["kind"] == "none" for r in rows if r not in present)
    assert {r["size"] for r in present} == {"large"} and {r["kind"] for r in present} <= {"solid", "part_solid"}
    assert all(15.0 <= float(r["diameter_mm"]) < 30.0 for r in present)
    capsys.readouterr()
    assert main(["simulate", "lung-ct", "--out", str(tmp_path / "e"), "--count", "2", "--nodule-sizes", "huge"]) == 2
    assert "nodule_sizes must be one or more of small, medium, large, got 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_dataset_windows_hu_and_keeps_labels(data):
    dataset = LungCTDataset(data, progress=False)
    assert len(dataset) == 6 and dataset.size == (16, 16, 16)
    image, condition = dataset[0]
    assert image.shape == (1, 16, 16, 16) and image.dtype == torch.float32
    hu = np.asarray(nib.load(data / rows_of(data)[0]["path"]).dataobj).astype(np.float32)
    expected = np.clip((hu + 1024) / 1624 * 2 - 1, -1, 1)  # window -1024..600 -> [-1, 1]
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-5)
    assert SCHEMA.decode(condition[None].numpy())[0] == {k: rows_of(data)[0][k] for k in SCHEMA.names}
    assert dataset.meta["hu_window"] == [-1024.0, 600.0] and dataset.meta["spacing"] == pytest.approx(default_spacing((16,) * 3))


def test_dataset_resamples_and_pads_with_air(data):
    spacing = default_spacing((16,) * 3)
    dataset = LungCTDataset(data, size=(12, 12, 24), spacing=[s * 2 for s in spacing], progress=False)
    image, _ = dataset[0]
    assert image.shape == (1, 12, 12, 24)
    assert torch.all(image[0, :, :, :4] == -1) and torch.all(image[0, :, :, -4:] == -1)  # 8 slices -> padded to 24 with air
    assert image.max() > -0.5  # body still there after resampling


def test_unlisted_volume_and_missing_volume_are_errors(data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    shutil.copy(copy / rows_of(copy)[0]["path"], copy / "volumes" / "stray.nii.gz")
    with pytest.raises(SynthscapeError, match=r"stray.nii.gz has no row in .*labels.csv"):
        LungCTDataset(copy, progress=False)
    (copy / "volumes" / "stray.nii.gz").unlink()
    (copy / rows_of(copy)[1]["path"]).unlink()
    with pytest.raises(SynthscapeError, match=r"line 3: path volumes/case-00001.nii.gz does not exist"):
        LungCTDataset(copy, progress=False)


def test_writer_maps_back_to_hu_with_true_geometry(tmp_path):
    images = np.stack([np.full((1, 8, 8, 6), v, np.float32) for v in (-1.0, 0.0)])
    conditions = [{"nodule": "absent", "size": "none", "kind": "none"},
                  {"nodule": "present", "size": "large", "kind": "solid"}]
    files = DOMAIN.write(images, conditions, tmp_path, formats=["nifti,dicom"], seed=3, indices=[5, 6],
                         meta={"hu_window": [-1024, 600], "spacing": [0.8, 0.8, 2.5]})
    rows = rows_of(tmp_path)
    assert [r["index"] for r in rows] == ["5", "6"] and rows[1]["size"] == "large" and rows[1]["seed"] == "3"
    volume = nib.load(tmp_path / rows[1]["path"])
    assert volume.get_data_dtype() == np.int16 and np.all(np.asarray(volume.dataobj) == -212)
    assert volume.header.get_zooms() == pytest.approx((0.8, 0.8, 2.5))
    assert int(volume.header["qform_code"]) > 0 and int(volume.header["sform_code"]) > 0
    hu, affine = read_dicom_series(tmp_path / rows[0]["dicom"])
    assert np.all(hu == -1024)
    np.testing.assert_allclose(affine, volume.affine, atol=1e-4)
    assert len(files) == 2 + 2 * 6 + 1


def test_cli_simulate_train_sample(tmp_path):
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "out"
    assert main(["-q", "simulate", "lung-ct", "--out", str(data), "--count", "8", "--size", "16"]) == 0
    assert main(["-q", "train", "lung-ct", "--data", str(data), "--model", "gan", "--out", str(run),
                 "--steps", "4", "--batch-size", "4"]) == 0
    assert main(["-q", "sample", str(run), "--count", "2", "--out", str(out), "--condition", "nodule=present",
                 "--condition", "size=large", "--format", "nifti,dicom", "--seed", "1"]) == 0
    rows = rows_of(out)
    assert len(rows) == 2 and all(r["nodule"] == "present" and r["size"] == "large" for r in rows)
    assert all(r["kind"] in ("solid", "ground_glass", "part_solid") for r in rows)
    volume = nib.load(out / rows[0]["path"])
    hu, affine = read_dicom_series(out / rows[0]["dicom"])
    np.testing.assert_allclose(hu, np.asarray(volume.dataobj), atol=0.5)
    np.testing.assert_allclose(affine, volume.affine, atol=1e-4)


TORCH_FREE = """
import sys
sys.modules["torch"] = sys.modules["monai"] = None  # an edge device: importing either fails
from pathlib import Path
import numpy as np
from synthscape.domains import get_domain
domain = get_domain("lung-ct")
domain.simulate(Path(sys.argv[1]) / "data", count=1, seed=0, size=12, formats="nifti,dicom")
domain.write(np.zeros((1, 1, 8, 8, 8), np.float32), [{"nodule": "absent", "size": "none", "kind": "none"}],
             Path(sys.argv[1]) / "out", formats="nifti,dicom")
"""


def test_simulate_and_write_need_no_torch(tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", TORCH_FREE, str(tmp_path)], check=True, capture_output=True)
    assert len(rows_of(tmp_path / "data")) == 1 and len(list((tmp_path / "out" / "dicom").rglob("*.dcm"))) == 8
