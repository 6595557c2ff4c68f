"""Lung-ct layout models through the command line: train --layout, sample at another size or from a
folder's layouts, and every sample written with its label map (NIfTI, same geometry; DICOM SEG)."""

from __future__ import annotations

import csv
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest

from synthscape.cli import main
from synthscape.domains.lung_ct.schema import LABELS


def rows(folder):
    with (folder / "labels.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def layout_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lung-layout")
    data, run = root / "data", root / "run"
    assert main(["--quiet", "simulate", "lung-ct", "--out", str(data), "--count", "10", "--size", "16", "--spacing", "5",
                 "--nodule-sizes", "large", "--workers", "1"]) == 0
    assert main(["--quiet", "train", "lung-ct", "--data", str(data), "--model", "gan", "--layout", "--crop", "8", "--out", str(run),
                 "--steps", "2", "--batch-size", "4"]) == 0
    return data, run


def test_simulated_data_lists_a_label_map_per_volume(layout_run):
    data, _ = layout_run
    for row in rows(data):
        labels = nib.load(data / row["mask"])
        volume = nib.load(data / row["path"])
        np.testing.assert_array_equal(labels.affine, volume.affine)
        values = set(np.unique(np.asarray(labels.dataobj)).tolist())
        nodule = {LABELS.id(f"nodule_{row['kind']}")} if row["nodule"] == "present" else set()
        assert {LABELS.id("lung")} | nodule <= values <= {0, LABELS.id("lung"), LABELS.id("vessel"), LABELS.id("airway")} | nodule


def test_samples_at_another_size_carry_their_label_map_and_seg(layout_run, tmp_path):
    _, run = layout_run
    out = tmp_path / "samples"
    assert main(["--quiet", "sample", str(run), "--count", "2", "--out", str(out), "--size", "24", "--format", "nifti,dicom",
                 "--condition", "nodule=present"]) == 0
    for row in rows(out):
        image, labels = nib.load(out / row["path"]), nib.load(out / row["mask"])
        assert image.shape == labels.shape == (24, 24, 24)
        np.testing.assert_array_equal(image.affine, labels.affine)
        label_map = np.asarray(labels.dataobj)
        assert LABELS.id(f"nodule_{row['kind']}") in label_map and label_map.max() < len(LABELS)
        seg = pydicom.dcmread(out / row["seg"])
        series = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((out / row["dicom"]).iterdir())]
        assert seg.Modality == "SEG"
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series[0].SeriesInstanceUID
        assert seg.FrameOfReferenceUID == series[0].FrameOfReferenceUID
        present = {LABELS.classes[i] for i in np.unique(label_map) if i}  # one segment per class the map holds
        assert {s.SegmentLabel for s in seg.SegmentSequence} == present and {"lung", f"nodule_{row['kind']}"} <= present


def test_sample_i_depends_on_seed_and_index_alone(layout_run, tmp_path):
    _, run = layout_run
    assert main(["--quiet", "sample", str(run), "--count", "3", "--out", str(tmp_path / "all"), "--seed", "4"]) == 0
    assert main(["--quiet", "sample", str(run), "--count", "1", "--start", "2", "--out", str(tmp_path / "one"), "--seed", "4"]) == 0
    whole, alone = rows(tmp_path / "all")[2], rows(tmp_path / "one")[0]
    for column in ("path", "mask"):
        np.testing.assert_allclose(np.asarray(nib.load(tmp_path / "one" / alone[column]).dataobj),
                                   np.asarray(nib.load(tmp_path / "all" / whole[column]).dataobj), atol=1)


def test_given_layouts_are_rendered_in_row_order_with_their_conditions(layout_run, tmp_path):
    data, run = layout_run
    out = tmp_path / "from-folder"
    assert main(["--quiet", "sample", str(run), "--layouts", str(data), "--count", "3", "--out", str(out)]) == 0
    given, made = rows(data)[:3], rows(out)
    assert [{k: r[k] for k in ("nodule", "size", "kind")} for r in made] == [{k: r[k] for k in ("nodule", "size", "kind")} for r in given]
    for source, sample in zip(given, made):
        np.testing.assert_array_equal(np.asarray(nib.load(out / sample["mask"]).dataobj),
                                      np.asarray(nib.load(data / source["mask"]).dataobj))


@pytest.mark.parametrize("options, message", [
    (["--size", "18"], "must be a multiple of"),
    (["--layouts", "missing-folder"], "is not a folder"),
    (["--layouts", ".", "--condition", "nodule=absent"], "drop --condition"),
])
def test_bad_layout_options_are_one_line(layout_run, tmp_path, capsys, options, message):
    _, run = layout_run
    assert main(["--quiet", "sample", str(run), "--count", "1", "--out", str(tmp_path / "x"), *options]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_layout_training_without_a_mask_column_is_one_line_naming_labels_csv(layout_run, tmp_path, capsys):
    data, _ = layout_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    table = rows(copy)
    for row in table:  # a folder of volumes with no label maps at all
        (copy / row["mask"]).unlink()
    with (copy / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [k for k in table[0] if k != "mask"])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != "mask"} for row in table)
    run = tmp_path / "run"
    assert main(["train", "lung-ct", "--data", str(copy), "--model", "gan", "--layout", "--out", str(run),
                 "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{copy / 'labels.csv'}: layout training needs a `mask` column" in err[0]
    assert not run.exists() or not any(run.iterdir())
