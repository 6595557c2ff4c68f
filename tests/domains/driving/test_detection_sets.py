"""A simulated driving set trains as written: data.yaml read as Ultralytics reads it, from another working
directory, gives disjoint train and val images; the COCO split files load in pycocotools and cut
annotations.json in two; the split is seeded, stratified by condition and recorded in labels.csv."""

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthscape.cli import main
from synthscape.domains.driving.domain import split_names
from synthscape.domains.driving.schema import SCHEMA

COUNT, SHARE = 40, 0.25


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("detection") / "data"
    assert main(["-q", "simulate", "driving", "--out", str(out), "--count", str(COUNT), "--size", "32",
                 "--val-share", str(SHARE)]) == 0
    return out


def rows_of(folder):
    return list(csv.DictReader((folder / "labels.csv").open()))


def ultralytics_images(data_yaml: str) -> dict[str, list[str]]:
    """The image and label files Ultralytics 8.4 reads for ``train`` and ``val``, by its rules
    (ultralytics/data/utils.py ``check_det_dataset``, data/base.py ``get_img_files``, utils.py
    ``img2label_paths``): the root is ``path``, or without one the yaml's folder (relative to the
    working directory, as the user named the yaml); a split names a folder or a list file under the
    root; a list file's lines starting ``./`` are relative to the list's folder, others are used as
    they are (relative to the working directory); a label file is the image's path with its last
    ``/images/`` made ``/labels/`` and its extension ``.txt``."""
    data = yaml.safe_load(Path(data_yaml).read_text())
    root = Path(data.get("path") or Path(data_yaml).parent)
    found = {}
    for split in ("train", "val"):
        listed = (root / data[split]).resolve()
        assert listed.is_file(), f"{split}: {listed} is not a list file"
        lines = listed.read_text().strip().splitlines()
        images = [line.replace("./", str(listed.parent) + os.sep, 1) if line.startswith("./") else line for line in lines]
        found[split] = images
        found[split + "_labels"] = [f"{os.sep}labels{os.sep}".join(i.rsplit(f"{os.sep}images{os.sep}", 1)).rsplit(".", 1)[0]
                                    + ".txt" for i in images]
    return found


def test_data_yaml_resolves_from_another_working_directory_to_disjoint_splits(data, tmp_path, monkeypatch):
    document = yaml.safe_load((data / "data.yaml").read_text())
    assert "path" not in document or Path(document["path"]).is_absolute()
    assert document["names"] == dict(enumerate(["car", "truck", "pedestrian", "cyclist", "traffic_light",
                                                "traffic_sign", "debris"]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    found = ultralytics_images(os.path.relpath(data / "data.yaml"))
    train, val = ({str(Path(p).resolve()) for p in found[s]} for s in ("train", "val"))
    rows = rows_of(data)
    assert all(Path(p).is_file() for p in train | val)
    assert not train & val and train | val == {str((data / r["path"]).resolve()) for r in rows}
    assert len(val) == round(SHARE * COUNT)
    by_path = {str((data / r["path"]).resolve()): r for r in rows}
    for split in ("train", "val"):
        assert {by_path[p]["split"] for p in found[split]} == {split}  # labels.csv records the split
        for image, label in zip(found[split], found[split + "_labels"]):
            assert Path(label).resolve() == (data / by_path[str(Path(image).resolve())]["yolo"]).resolve()


def test_coco_split_files_load_and_cut_annotations_json_in_two(data):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        whole = COCO(str(data / "annotations.json"))
        parts = {split: COCO(str(data / f"instances_{split}.json")) for split in ("train", "val")}
    ids = {split: set(part.getImgIds()) for split, part in parts.items()}
    assert not ids["train"] & ids["val"] and ids["train"] | ids["val"] == set(whole.getImgIds())
    listed = {split: {Path(line).name for line in (data / f"{split}.txt").read_text().splitlines()}
              for split in ("train", "val")}
    for split, part in parts.items():
        assert {image["file_name"] for image in part.loadImgs(part.getImgIds())} == listed[split]
        assert part.loadAnns(part.getAnnIds()) == whole.loadAnns(whole.getAnnIds(imgIds=sorted(ids[split])))
        assert part.loadCats(part.getCatIds()) == whole.loadCats(whole.getCatIds())
    assert len(parts["train"].getAnnIds()) + len(parts["val"].getAnnIds()) == len(whole.getAnnIds()) > 0


def test_the_split_is_seeded_and_every_condition_gives_its_share(data):
    rows = rows_of(data)
    recorded = [row["split"] for row in rows]
    assert recorded == split_names(rows, SHARE, seed=0)
    assert recorded != split_names(rows, SHARE, seed=1)
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[a] for a in SCHEMA.names), []).append(row["split"])
    for key, splits in groups.items():
        assert np.floor(SHARE * len(splits)) <= splits.count("val") <= np.ceil(SHARE * len(splits)), key


def test_a_single_scene_is_train_and_the_lists_say_so(tmp_path):
    out = tmp_path / "one"
    assert main(["-q", "simulate", "driving", "--out", str(out), "--count", "1", "--size", "32"]) == 0
    assert [row["split"] for row in rows_of(out)] == ["train"]
    assert (out / "train.txt").read_text() == "./images/scene-000000.png\n" and (out / "val.txt").read_text() == ""
    assert json.loads((out / "instances_val.json").read_text())["images"] == []
