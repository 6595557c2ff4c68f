"""Cityscapes- and ACDC-form folders, built from simulated scenes, index and read as driving layout data:
label ids through the mapping, instance ids by the Cityscapes rule, conditions from ACDC folders."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.domains import get_domain
from synthscape.domains.driving.cityscapes import CITYSCAPES_TO_OURS, index_folder, main
from synthscape.domains.driving.dataset import DrivingDataset
from synthscape.domains.driving.scene import label_map_boxes
from synthscape.domains.driving.schema import LABELS

# one Cityscapes label id per class of ours (lane markings are road there; debris has no class: "dynamic")
OURS_TO_CITYSCAPES = {"sky": 23, "road": 7, "lane_marking": 7, "sidewalk": 8, "building": 11, "vegetation": 21,
                      "terrain": 22, "pole": 17, "traffic_light": 19, "traffic_sign": 20, "car": 26, "truck": 27,
                      "pedestrian": 24, "cyclist": 33, "debris": 5}
TO_CS = np.array([OURS_TO_CITYSCAPES[name] for name in LABELS.classes], np.uint8)
BACK = np.array([LABELS.id(CITYSCAPES_TO_OURS[i]) for i in range(34)], np.uint8)


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return get_domain("driving").simulate(tmp_path_factory.mktemp("cs") / "sim", count=4, seed=0, size=32)


def as_cityscapes(scenes, root):
    """The simulated scenes in Cityscapes' layout: pictures, label ids, instance ids (class * 1000 + k), colour renderings."""
    rows = list(csv.DictReader((scenes / "labels.csv").open()))
    for i, row in enumerate(rows):
        stem = f"aachen_{i:06d}_000019"
        pictures, labels = root / "leftImg8bit/train/aachen", root / "gtFine/train/aachen"
        pictures.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        shutil.copy(scenes / row["path"], pictures / f"{stem}_leftImg8bit.png")
        ours, objects = read(scenes / row["mask"]), read(scenes / row["instances"]).astype(np.int64)
        ids = TO_CS[ours]
        cv2.imwrite(str(labels / f"{stem}_gtFine_labelIds.png"), ids)
        cv2.imwrite(str(labels / f"{stem}_gtFine_instanceIds.png"),
                    np.where(objects > 0, ids.astype(np.int64) * 1000 + objects, ids).astype(np.uint16))
        cv2.imwrite(str(labels / f"{stem}_gtFine_color.png"), np.dstack([ids] * 3))  # not a picture of the set
    return rows


def test_a_cityscapes_folder_reads_as_its_scenes_label_maps_and_boxes(scenes, tmp_path):
    root = tmp_path / "cityscapes"
    rows = as_cityscapes(scenes, root)
    index_folder(root)
    written = list(csv.DictReader((root / "labels.csv").open()))
    assert [r["path"] for r in written] == [f"leftImg8bit/train/aachen/aachen_{i:06d}_000019_leftImg8bit.png" for i in range(4)]
    assert {(r["weather"], r["time"], r["scenario"]) for r in written} == {("clear", "day", "normal")}
    assert json.loads((root / "label_mapping.json").read_text())["24"] == "pedestrian"
    data = DrivingDataset(root, size=32, progress=False, layout=True)
    for i, row in enumerate(rows):
        ours = read(scenes / row["mask"])
        np.testing.assert_array_equal(data.layouts[i], BACK[TO_CS[ours]])  # through the mapping file
        objects = read(scenes / row["instances"]).astype(np.int32)
        assert len(np.unique(data.instances[i])) == len(np.unique(objects))  # one id per object, stuff none
        np.testing.assert_array_equal(data.instances[i] > 0, objects > 0)
        boxes = [(b.category, b.x, b.y, b.w, b.h, b.area) for b in label_map_boxes(data.layouts[i], data.instances[i])]
        expected = [(b.category, b.x, b.y, b.w, b.h, b.area) for b in label_map_boxes(BACK[TO_CS[ours]], objects)]
        assert sorted(boxes) == sorted(expected) and boxes


def test_acdc_condition_folders_set_weather_and_time(scenes, tmp_path):
    root = tmp_path / "acdc"
    rows = list(csv.DictReader((scenes / "labels.csv").open()))[:2]
    for condition, row in zip(("fog", "night"), rows):
        pictures, labels = root / f"rgb_anon/{condition}/train/GOPR0475", root / f"gt/{condition}/train/GOPR0475"
        pictures.mkdir(parents=True)
        labels.mkdir(parents=True)
        shutil.copy(scenes / row["path"], pictures / "GOPR0475_frame_000041_rgb_anon.png")
        cv2.imwrite(str(labels / "GOPR0475_frame_000041_gt_labelIds.png"), TO_CS[read(scenes / row["mask"])])
    assert main([str(root), "--time", "dusk"]) == 0
    written = {r["path"].split("/")[1]: r for r in csv.DictReader((root / "labels.csv").open())}
    assert (written["fog"]["weather"], written["fog"]["time"]) == ("fog", "dusk")
    assert (written["night"]["weather"], written["night"]["time"]) == ("clear", "night")
    assert "instances" not in written["fog"]
    assert DrivingDataset(root, size=32, progress=False, layout=True).instances is None
    with pytest.raises(SynthscapeError, match="labels.csv exists; pass --overwrite"):
        index_folder(root)
    with pytest.raises(SynthscapeError, match="no picture"):
        index_folder(tmp_path / "acdc" / "gt")
