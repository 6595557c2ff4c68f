"""Paths that leave the data folder (issue 17): a labels.csv path, mask or DICOM column, a file of a
listed DICOM series or a COCO ``file_name`` that is absolute, climbs out with ``..`` or follows a
symbolic link out of ``--data`` is refused by ``train``, ``evaluate`` and ``synthscape run``: exit
2, one line naming labels.csv and the row (or the file and value), nothing written, no input
touched. ``--allow-outside-paths`` (``allow_outside_paths: true`` in a pipeline) reads it, and the
outside file is the only copy, so a run that succeeds has read it.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.domains import get_domain
from synthscape.domains.labels import inside

ALLOW = "--allow-outside-paths"
FAST_EVALUATE = ["--holdout", "0.5", "--classifier-steps", "1", "--utility-steps", "1"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Made once: a lung-ct set (NIfTI and DICOM, 16^3), a driving set (32 px) and a driving VAE."""
    root = tmp_path_factory.mktemp("sources")
    made = {name: root / name for name in ("lung-ct", "driving", "run")}
    for argv in (["simulate", "lung-ct", "--out", made["lung-ct"], "--count", "4", "--size", "16", "--format", "nifti,dicom"],
                 ["simulate", "driving", "--out", made["driving"], "--count", "8", "--size", "32"],
                 ["train", "driving", "--data", made["driving"], "--model", "vae", "--out", made["run"],
                  "--steps", "1", "--batch-size", "4", "--size", "16"]):
        assert main(["-q", *map(str, argv)]) == 0
    return made


# ---------------------------------------------------------------- how each data set leaves its folder

def set_cell(data: Path, line: int, column: str, value: str) -> None:
    """Write ``value`` into ``column`` of labels.csv line ``line`` (the header is line 1)."""
    with (data / "labels.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[line - 1][rows[0].index(column)] = value
    with (data / "labels.csv").open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def move_out(data: Path, relative: str) -> Path:
    """Move ``data/relative`` to the folder ``elsewhere`` beside ``data``; returns its new path."""
    target = data.parent / "elsewhere" / Path(relative).name
    target.parent.mkdir(exist_ok=True)
    shutil.move(data / relative, target)
    return target


def absolute(relative: str, line: int) -> Callable[[Path], None]:
    def edit(data: Path) -> None:
        set_cell(data, line, "path", str(move_out(data, relative)))
        coco = data / "annotations.json"
        if coco.is_file():  # driving: the COCO JSON names the same file
            document = json.loads(coco.read_text())
            document["images"][line - 2]["file_name"] = str(data.parent / "elsewhere" / Path(relative).name)
            coco.write_text(json.dumps(document))
    return edit


def climbing(relative: str, line: int, column: str = "path") -> Callable[[Path], None]:
    def edit(data: Path) -> None:
        set_cell(data, line, column, f"../elsewhere/{move_out(data, relative).name}")
    return edit


def symlinked(relative: str) -> Callable[[Path], None]:
    def edit(data: Path) -> None:
        (data / relative).symlink_to(move_out(data, relative))
    return edit


def dicom_slice_outside(data: Path) -> None:
    """Row 2 trains on its DICOM series, one slice of which is a symbolic link to a file outside."""
    (data / "volumes/case-00000.nii.gz").unlink()
    set_cell(data, 2, "path", "dicom/case-00000")
    symlinked("dicom/case-00000/slice-0008.dcm")(data)


def evaluable(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    """``edit``, on the 8 driving scenes relabelled as two conditions of four (evaluate measures
    diversity within a condition that occurs 3 times or more)."""
    def both(data: Path) -> None:
        for line in range(2, 10):
            for column, values in (("weather", ("clear", "fog")), ("time", ("day", "night")), ("scenario", ("normal",) * 2)):
                set_cell(data, line, column, values[line % 2])
        edit(data)
    return both


def coco_outside(data: Path) -> None:
    coco = data / "annotations.json"
    document = json.loads(coco.read_text())
    document["images"][0]["file_name"] = "../../elsewhere/scene-000000.png"
    coco.write_text(json.dumps(document))


def train(domain: str) -> list[str]:
    return ["train", domain, "--model", "vae", "--steps", "1", "--batch-size", "2"]


# case: (source, edit, command, what the one line names, whether the option makes it train)
CASES = {
    "lung-absolute": ("lung-ct", absolute("volumes/case-00000.nii.gz", 2), train("lung-ct"),
                      ["labels.csv line 2: path /", "case-00000.nii.gz is an absolute path"], True),
    "lung-dotdot": ("lung-ct", climbing("volumes/case-00001.nii.gz", 3), train("lung-ct"),
                    ["labels.csv line 3: path ../elsewhere/case-00001.nii.gz climbs out with .."], True),
    "lung-symlink": ("lung-ct", symlinked("volumes/case-00002.nii.gz"), train("lung-ct"),
                     ["labels.csv line 4: path volumes/case-00002.nii.gz leads out through a symbolic link"], True),
    "lung-symlinked-folder": ("lung-ct", symlinked("volumes"), train("lung-ct"),
                              ["labels.csv line 2: path volumes/case-00000.nii.gz leads out"], True),
    "lung-mask": ("lung-ct", climbing("masks/case-00003_lung.nii.gz", 5, "lung_mask"), train("lung-ct"),
                  ["labels.csv line 5: lung_mask ../elsewhere/case-00003_lung.nii.gz climbs out"], True),
    "lung-dicom-slice": ("lung-ct", dicom_slice_outside, train("lung-ct"),
                         ["labels.csv line 2: path dicom/case-00000: its file dicom/case-00000/slice-0008.dcm",
                          "slice-0008.dcm leads out through a symbolic link"], True),
    "driving-absolute": ("driving", absolute("images/scene-000000.png", 2), train("driving"),
                         ["labels.csv line 2: path /", "scene-000000.png is an absolute path"], True),
    "driving-symlink": ("driving", symlinked("images/scene-000001.png"), train("driving"),
                        ["labels.csv line 3: path images/scene-000001.png leads out"], True),
    "driving-coco": ("driving", coco_outside, train("driving"),
                     ["annotations.json images[0].file_name images/../../elsewhere/scene-000000.png climbs out"], False),
    "evaluate": ("driving", evaluable(symlinked("images/scene-000003.png")), ["evaluate", "RUN", *FAST_EVALUATE],
                 ["labels.csv line 5: path images/scene-000003.png leads out"], True),
}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file, folder and link under ``root`` with its size, time and link target."""
    return {p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns,
                                             str(p.readlink()) if p.is_symlink() else None)
            for p in root.rglob("*")}


def run_cli(argv: list, capsys) -> tuple[int, str]:
    """``main(argv)``, its stderr as a fresh process prints it (the CLI sets up its log handler anew)."""
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        code = main(["-q", *map(str, argv)])
    finally:
        root.handlers[:], root.level = handlers, level
    return code, capsys.readouterr().err


def command(case: str, sources: dict[str, Path], tmp_path: Path) -> tuple[list, Path, bool]:
    """The case's data folder (a copy, edited) and command line; returns (argv, --out, accepted)."""
    source, edit, argv, _, accepted = CASES[case]
    data = tmp_path / "data"
    shutil.copytree(sources[source], data)
    edit(data)
    argv = [str(sources["run"]) if a == "RUN" else a for a in argv]
    return [*argv, "--data", data, "--out", tmp_path / "out"], tmp_path / "out", accepted


@pytest.mark.parametrize("case", CASES)
def test_a_path_leaving_the_data_folder_is_refused_in_one_line(case, sources, tmp_path, capsys):
    argv, out, _ = command(case, sources, tmp_path)
    before = snapshot(tmp_path)
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert err.startswith("synthscape: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(part in err for part in CASES[case][3]) and ALLOW in err, err
    assert not out.exists() and snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["driving-absolute", "evaluate"])
def test_allow_outside_paths_trains_and_evaluates(case, sources, tmp_path, capsys):
    argv, out, _ = command(case, sources, tmp_path)
    code, err = run_cli([*argv, ALLOW], capsys)
    assert code == 0, err
    assert (out / ("report.html" if argv[0] == "evaluate" else "generator.safetensors")).is_file()


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][4] and CASES[c][2][0] == "train"])
def test_allow_outside_paths_reads_the_outside_file(case, sources, tmp_path):
    """The domain's data set (what ``train`` reads) with the option: every item as in the untouched
    source, the moved one included (its only copy is outside; the DICOM series is row 2's volume)."""
    argv, _, _ = command(case, sources, tmp_path)
    domain = get_domain(argv[1])
    edited = domain.dataset(tmp_path / "data", allow_outside_paths=True)
    original = domain.dataset(sources[CASES[case][0]])
    assert len(edited) == len(original)
    for i in range(len(original)):
        torch.testing.assert_close(edited[i][0], original[i][0], atol=0.01, rtol=0)
        assert torch.equal(edited[i][1], original[i][1])


def test_a_pipeline_on_real_data_takes_the_same_switch(sources, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(sources["driving"], data)
    symlinked("images/scene-000002.png")(data)
    text = ("domain: driving\ndata: data\ntrain: {model: vae, steps: 1, batch_size: 4}\n"
            "sample: {plan: [{condition: {}, count: 2}]}\nevaluate: false\nexport: false\n")
    (tmp_path / "p.yaml").write_text(text)
    code, err = run_cli(["run", tmp_path / "p.yaml", "--out", tmp_path / "out"], capsys)
    assert code == 2 and "labels.csv line 4: path images/scene-000002.png leads out" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out" / "run").exists()
    (tmp_path / "p.yaml").write_text(text + "allow_outside_paths: true\n")
    code, err = run_cli(["run", tmp_path / "p.yaml", "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "run" / "generator.safetensors").is_file()


@pytest.mark.parametrize("text, message", [
    ("allow_outside_paths: true\n", "allow_outside_paths is for data"),
    ("data: d\nallow_outside_paths: yes please\n", "allow_outside_paths must be true or false"),
])
def test_the_pipeline_switch_is_checked(tmp_path, capsys, text, message):
    (tmp_path / "p.yaml").write_text(text)
    code, err = run_cli(["run", tmp_path / "p.yaml", "--out", tmp_path / "out"], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_symbolic_link_loop_is_one_line(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(SynthscapeError, match="labels.csv line 2: path 'loop' is not a usable file name"):
        inside(tmp_path, "loop", "labels.csv line 2: path")
    assert inside(tmp_path, "a/b.png", "labels.csv line 2: path") == tmp_path / "a/b.png"


def test_the_option_is_explained_in_help(capsys):
    for verb in ("train", "evaluate"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        assert "labels.csv may name files outside --data" in " ".join(capsys.readouterr().out.split())
