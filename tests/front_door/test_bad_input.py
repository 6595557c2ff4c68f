"""Bad input through the command line, as a user meets it (issue 8): every case exits 2 with one
line naming the file or value and the problem, and writes nothing. Then ``--overwrite``: an output
folder that exists is refused without it, and replaced only once the new one is whole with it.

The bad inputs are real outputs (simulated lung-ct DICOM and NIfTI sets, a driving set, an exported
driving generator) broken the way real data breaks: with pydicom, nibabel, OpenCV, onnx and bytes.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np
import onnx
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGExtended12Bit

from synthscape.cli import main
from synthscape.core.files.atomic import atomic_dir
from synthscape.exports.onnx_export import export_onnx

SERIES = "dicom/case-00001"  # the series (of the DICOM set) that each DICOM case breaks
FAST_EVALUATE = ["--holdout", "0.5", "--classifier-steps", "1", "--utility-steps", "1"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Good inputs, made once: data sets "lung-dicom", "lung-nifti", "driving"; VAEs trained for two
    steps "run" (driving) and "lung-run"; the driving one's export "onnx" and that export with its
    metadata stripped, "no-metadata", or cut short, "bad-metadata"."""
    root = tmp_path_factory.mktemp("sources")
    made = {name: root / name for name in ("lung-dicom", "lung-nifti", "driving", "run", "lung-run")}
    for argv in (["simulate", "lung-ct", "--out", made["lung-dicom"], "--count", "4", "--size", "16", "--format", "dicom"],
                 ["simulate", "lung-ct", "--out", made["lung-nifti"], "--count", "8", "--size", "16"],
                 ["simulate", "driving", "--out", made["driving"], "--count", "8", "--size", "32"],
                 ["train", "driving", "--data", made["driving"], "--model", "vae", "--out", made["run"],
                  "--steps", "2", "--batch-size", "4", "--size", "16"],
                 ["train", "lung-ct", "--data", made["lung-nifti"], "--model", "vae", "--out", made["lung-run"],
                  "--steps", "2", "--batch-size", "4"]):
        assert main(["-q", *map(str, argv)]) == 0
    made["onnx"] = root / "driving.onnx"
    export_onnx(made["run"], made["onnx"])
    model = onnx.load(str(made["onnx"]))
    del model.metadata_props[:]
    made["no-metadata"] = root / "no-metadata.onnx"
    onnx.save(model, str(made["no-metadata"]))
    onnx.helper.set_model_props(model, {"synthscape": '{"format": "synthscape-generator", '})  # cut short
    made["bad-metadata"] = root / "bad-metadata.onnx"
    onnx.save(model, str(made["bad-metadata"]))
    return made


# ---------------------------------------------------------------- how each bad input is made

def copy(sources: dict[str, Path], name: str, tmp: Path, edit: Callable[[Path], object]) -> Path:
    data = tmp / "data"
    shutil.copytree(sources[name], data)
    edit(data)
    return data


def edit_bytes(relative: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(data: Path) -> None:
        path = data / relative
        path.write_bytes(change(path.read_bytes()))
    return edit


def edit_series(change: Callable[[pydicom.Dataset], None], only: str | None = None) -> Callable[[Path], None]:
    """Apply ``change`` to every slice of SERIES (or to the slice file ``only``) with pydicom."""
    def edit(data: Path) -> None:
        for path in sorted((data / SERIES).iterdir()):
            if only in (None, path.name):
                ds = pydicom.dcmread(path)
                change(ds)
                ds.save_as(path)
    return edit


def shift_slice(ds: pydicom.Dataset) -> None:
    """Move a slice 0.6 of the slice spacing along z: the spacing around it becomes uneven."""
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [x, y, z + 0.6 * float(ds.SliceThickness)]


def jpeg_that_is_not(ds: pydicom.Dataset) -> None:
    """Claim a compressed transfer syntax for pixel data no decoder can take."""
    ds.file_meta.TransferSyntaxUID = JPEGExtended12Bit
    ds.PixelData = encapsulate([b"\xff\xd8 not really a JPEG \xff\xd9"])
    ds["PixelData"].VR = "OB"


def nan_voxel(data: Path) -> None:
    path = data / "volumes/case-00001.nii.gz"
    image = nib.load(path)
    volume = image.get_fdata(dtype=np.float32)
    volume[3, 4, 5] = np.nan
    nib.save(nib.Nifti1Image(volume, image.affine), path)


def replace_in_labels(old: str, new: str) -> Callable[[Path], None]:
    def edit(data: Path) -> None:
        text = (data / "labels.csv").read_text()
        assert old in text
        (data / "labels.csv").write_text(text.replace(old, new, 1))
    return edit


def repeat_row(data: Path) -> None:
    lines = (data / "labels.csv").read_text().splitlines()
    (data / "labels.csv").write_text("\n".join([*lines, lines[2]]) + "\n")


def remove_files(data: Path) -> None:
    for path in (data / SERIES).iterdir():
        path.unlink()


def coco_names_missing_image(data: Path) -> None:
    document = json.loads((data / "annotations.json").read_text())
    document["images"][2]["file_name"] = "scene-000099.png"
    (data / "annotations.json").write_text(json.dumps(document))


def train(domain: str, source: str | None, edit: Callable[[Path], object] = lambda data: None):
    """``synthscape train DOMAIN --data BROKEN ...`` on a broken copy of ``source`` (None: an empty folder)."""
    def argv(tmp: Path, sources: dict[str, Path]) -> list:
        if source is None:
            data = tmp / "data"
            data.mkdir()
        else:
            data = copy(sources, source, tmp, edit)
        return ["train", domain, "--data", data, "--model", "vae", "--out", tmp / "run", "--steps", "2",
                "--batch-size", "2", "--size", "16"]
    return argv


def sample(model: str, *options: str):
    return lambda tmp, sources: ["sample", sources[model], "--count", "2", "--out", tmp / "samples", *options]


def not_onnx(tmp: Path, sources: dict[str, Path]) -> list:
    model = tmp / "model.onnx"
    model.write_bytes(b"\x08\x07 not a protobuf")
    return sample("model")(tmp, {"model": model})


def existing_out(command: str):
    """``synthscape COMMAND ... --out EXISTING``, EXISTING holding a file of the user's."""
    def argv(tmp: Path, sources: dict[str, Path]) -> list:
        out = tmp / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("the user's")
        return {"simulate": ["simulate", "driving", "--count", "2", "--size", "32", "--out", out],
                "sample": ["sample", sources["onnx"], "--count", "2", "--out", out],
                "evaluate": ["evaluate", sources["lung-run"], "--data", sources["lung-nifti"], "--out", out, *FAST_EVALUATE],
                }[command]
    return argv


DICOM_HEADER_GARBLED = edit_bytes(f"{SERIES}/slice-0001.dcm", lambda b: b[:132] + b"\xff" * 268 + b[400:])
CASES = {
    # name: (argv builder, what the one line must name, the problem it must state)
    "dicom-corrupt": (train("lung-ct", "lung-dicom", DICOM_HEADER_GARBLED), "slice-0001.dcm", "corrupt or truncated DICOM"),
    "dicom-truncated-header": (train("lung-ct", "lung-dicom", edit_bytes(f"{SERIES}/slice-0016.dcm", lambda b: b[:600])),
                               "slice-0016.dcm", "corrupt or truncated DICOM"),
    "dicom-truncated-pixels": (train("lung-ct", "lung-dicom", edit_bytes(f"{SERIES}/slice-0008.dcm", lambda b: b[:-200])),
                               "slice-0008.dcm", "pixel data unreadable"),
    "dicom-undecodable": (train("lung-ct", "lung-dicom", edit_series(jpeg_that_is_not, only="slice-0003.dcm")),
                          "slice-0003.dcm", "pixel data unreadable"),
    "dicom-two-series": (train("lung-ct", "lung-dicom", lambda d: shutil.copy(d / "dicom/case-00002/slice-0005.dcm",
                                                                            d / SERIES / "extra.dcm")),
                         "case-00001", "2 series found, expected one"),
    "dicom-not-ct": (train("lung-ct", "lung-dicom", edit_series(lambda ds: setattr(ds, "Modality", "MR"))),
                     "case-00001", "modality MR, expected CT"),
    "dicom-missing-slice": (train("lung-ct", "lung-dicom", lambda d: (d / SERIES / "slice-0008.dcm").unlink()),
                            "case-00001", "uneven slice spacing"),
    "dicom-uneven-spacing": (train("lung-ct", "lung-dicom", edit_series(shift_slice, only="slice-0008.dcm")),
                             "case-00001", "uneven slice spacing"),
    "dicom-empty-series": (train("lung-ct", "lung-dicom", remove_files), "case-00001", "no DICOM image files found"),
    "nifti-nan": (train("lung-ct", "lung-nifti", nan_voxel), "case-00001.nii.gz", "NaN or infinite"),
    "empty-folder": (train("lung-ct", None), "labels.csv", "not found"),
    "labels-unknown-value": (train("lung-ct", "lung-nifti", replace_in_labels(",present,", ",maybe,")),
                             "labels.csv line 2", "unknown value 'maybe' for condition attribute 'nodule'"),
    "labels-missing-column": (train("driving", "driving", replace_in_labels("path,weather,", "path,wether,")),
                              "labels.csv", "lacks column(s) weather"),
    "labels-duplicate-row": (train("lung-ct", "lung-nifti", repeat_row), "labels.csv line 10",
                             "volumes/case-00001.nii.gz is listed twice"),
    "labels-missing-file": (train("driving", "driving", lambda d: (d / "images/scene-000005.png").unlink()),
                            "labels.csv line 7", "images/scene-000005.png does not exist"),
    "images-mixed-sizes": (train("driving", "driving", lambda d: cv2.imwrite(str(d / "images/scene-000003.png"),
                                                                          np.zeros((20, 30, 3), np.uint8))),
                           "scene-000003.png", "is 30x20 but scene-000000.png is 32x32"),
    "images-grayscale": (train("driving", "driving", lambda d: cv2.imwrite(str(d / "images/scene-000003.png"),
                                                                        np.zeros((32, 32), np.uint8))),
                         "scene-000003.png", "is grayscale"),
    "images-unreadable": (train("driving", "driving", edit_bytes("images/scene-000003.png", lambda b: b[:100])),
                          "scene-000003.png", "cannot be read as an image"),
    "coco-missing-image": (train("driving", "driving", coco_names_missing_image), "scene-000099.png", "does not exist"),
    "condition-unknown-value": (sample("onnx", "--condition", "weather=hail"), "'hail'",
                                "unknown value 'hail' for condition attribute 'weather'"),
    "condition-unknown-attribute": (sample("run", "--condition", "colour=red"), "'colour'", "unknown condition attribute"),
    "onnx-other-domain": (lambda tmp, s: ["evaluate", s["onnx"], "--data", s["lung-nifti"], "--out", tmp / "report"],
                          "labels.csv", "a lung-ct data set's, where driving data is expected"),
    "onnx-no-metadata": (sample("no-metadata"), "no-metadata.onnx", "no 'synthscape' metadata"),
    "onnx-bad-metadata": (sample("bad-metadata"), "bad-metadata.onnx", "'synthscape' metadata that is not JSON"),
    "onnx-not-onnx": (not_onnx, "model.onnx", "not a loadable ONNX model"),
    "simulate-val-share": (lambda tmp, s: ["simulate", "driving", "--count", "4", "--size", "32", "--out", tmp / "d",
                                           "--val-share", "1"], "--val-share", "strictly between 0 and 1, got 1.0"),
    "simulate-val-share-lung": (lambda tmp, s: ["simulate", "lung-ct", "--count", "2", "--size", "16", "--out",
                                                tmp / "d", "--val-share", "0.2"], "val_share", "does not take"),
    "simulate-out-exists": (existing_out("simulate"), "mine", "pass --overwrite"),
    "sample-out-exists": (existing_out("sample"), "mine", "pass --overwrite"),
    "evaluate-out-exists": (existing_out("evaluate"), "mine", "pass --overwrite"),
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and modification time."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def show_on_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cli(argv: list, capsys) -> tuple[int, str]:
    """``main(argv)`` with stderr as a fresh process has it: the CLI's log handler (set up anew) and
    Python's warnings (which pytest would otherwise collect) print to this test's stderr too."""
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show_on_stderr
            code = main([str(a) for a in argv])
    finally:
        root.handlers[:], root.level = handlers, level
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, sources, tmp_path, capsys):
    build, name, problem = CASES[case]
    argv = build(tmp_path, sources)
    before = snapshot(tmp_path)
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert err.startswith("synthscape: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert name in err and problem in err, err
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- --overwrite

@pytest.mark.parametrize("command", ["simulate", "sample", "evaluate"])
def test_overwrite_replaces_an_existing_output_folder(command, sources, tmp_path, capsys):
    argv = existing_out(command)(tmp_path, sources)
    out = tmp_path / "mine"
    code, err = run_cli(argv, capsys)
    assert code == 2 and "--overwrite" in err and (out / "notes.txt").read_text() == "the user's"
    code, err = run_cli([*argv, "--overwrite"], capsys)
    assert code == 0, err
    made = {"simulate": "labels.csv", "sample": "labels.csv", "evaluate": "metrics.json"}[command]
    assert not (out / "notes.txt").exists() and (out / made).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no .partial or .old folder left behind


def test_overwrite_keeps_the_old_folder_when_the_new_one_fails(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    before = snapshot(tmp_path)
    code, err = run_cli(["simulate", "lung-ct", "--count", "2", "--size", "4", "--out", out, "--overwrite"], capsys)
    assert code == 2 and "size must be at least 8" in err
    assert snapshot(tmp_path) == before


def test_overwrite_swaps_only_a_whole_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("half")
            assert (out / "old.txt").read_text() == "old"  # still there while the new one is built
            raise RuntimeError("crash while writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and [p.name for p in out.iterdir()] == ["old.txt"]
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and [p.name for p in out.iterdir()] == ["new.txt"]


def test_overwrite_never_deletes_the_input(sources, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(sources["run"], run)
    before = snapshot(tmp_path)
    code, err = run_cli(["sample", run, "--count", "1", "--out", run, "--overwrite"], capsys)
    assert code == 2 and f"--out {run} holds the input {run}" in err and err.count("\n") == 1
    assert snapshot(tmp_path) == before
