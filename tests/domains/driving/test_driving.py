"""The driving domain end to end: simulate -> COCO/YOLO/masks -> read -> train -> sample by plan."""

import contextlib
import csv
import io
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.domains import get_domain
from synthscape.domains.driving.dataset import DrivingDataset
from synthscape.domains.driving.scene import CATEGORIES, SEMANTIC

DOMAIN = get_domain("driving")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return DOMAIN.simulate(tmp_path_factory.mktemp("driving") / "data", count=12, seed=0, size=48)


def rows_of(folder):
    return list(csv.DictReader((folder / "labels.csv").open()))


def yolo_boxes(path, width, height):
    boxes = []
    for line in path.read_text().splitlines():
        c, cx, cy, w, h = line.split()
        w, h = float(w) * width, float(h) * height
        boxes.append((CATEGORIES[int(c)], float(cx) * width - w / 2, float(cy) * height - h / 2, w, h))
    return boxes


def test_data_set_layout_and_labels(data):
    rows = rows_of(data)
    assert len(rows) == 12 and {r["view"] for r in rows} == {"dashcam"}
    assert (data / "classes.txt").read_text().split() == list(CATEGORIES)
    assert "names:" in (data / "data.yaml").read_text()
    for row in rows:
        image = cv2.imread(str(data / row["path"]), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(data / row["mask"]), cv2.IMREAD_UNCHANGED)
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
        assert mask.shape == (48, 48) and mask.max() < len(SEMANTIC)
        assert len((data / row["yolo"]).read_text().splitlines()) == int(row["boxes"])


def test_coco_loads_and_evaluates_against_itself_with_ap_1(data):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(data / "annotations.json"))
        assert len(truth.getImgIds()) == 12 and len(truth.getAnnIds()) > 12
        detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                      for a in truth.loadAnns(truth.getAnnIds())]
        evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]


def test_yolo_and_coco_agree_and_boxes_are_tight_on_visible_pixels(data):
    document = json.loads((data / "annotations.json").read_text())
    by_image = {image["id"]: [] for image in document["images"]}
    for a in document["annotations"]:
        by_image[a["image_id"]].append(a)
    categories = {c["id"]: c["name"] for c in document["categories"]}
    for image, row in zip(document["images"], rows_of(data)):
        assert row["path"] == f"images/{image['file_name']}"
        coco = sorted((categories[a["category_id"]], *a["bbox"]) for a in by_image[image["id"]])
        yolo = sorted(yolo_boxes(data / row["yolo"], image["width"], image["height"]))
        assert len(coco) == len(yolo)
        for c, y in zip(coco, yolo):
            assert c[0] == y[0] and np.allclose(c[1:], y[1:], atol=1e-3)
        semantic = cv2.imread(str(data / row["mask"]), cv2.IMREAD_UNCHANGED)
        for a in by_image[image["id"]]:
            x, y, w, h = a["bbox"]
            assert x >= 0 and y >= 0 and x + w <= image["width"] and y + h <= image["height"]
            box = semantic[y: y + h, x: x + w] == SEMANTIC.index(categories[a["category_id"]])
            # tight: the first and last row and column of every box hold pixels of its class
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
            assert a["area"] <= w * h


def test_same_seed_same_scenes(data, tmp_path):
    again = DOMAIN.simulate(tmp_path / "again", count=3, seed=0, size=48)
    for name in ("scene-000000.png", "scene-000002.png"):
        assert (data / "images" / name).read_bytes() == (again / "images" / name).read_bytes()
    assert (data / "labels" / "scene-000001.txt").read_text() == (again / "labels" / "scene-000001.txt").read_text()


def test_aerial_view_simulates(tmp_path):
    out = DOMAIN.simulate(tmp_path / "aerial", count=2, seed=1, size=40, view="aerial")
    assert {r["view"] for r in rows_of(out)} == {"aerial"}
    assert cv2.imread(str(out / "images" / "scene-000000.png")).shape == (40, 40, 3)


def test_dataset_resizes_crops_and_keeps_labels(data):
    dataset = DrivingDataset(data, size=32, progress=False)
    image, condition = dataset[3]
    assert image.shape == (3, 32, 32) and -1 <= image.min() and image.max() <= 1
    source = cv2.cvtColor(cv2.imread(str(data / rows_of(data)[3]["path"])), cv2.COLOR_BGR2RGB)
    expected = cv2.resize(source, (32, 32), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    np.testing.assert_allclose((image.numpy() + 1) * 127.5, expected, atol=1e-3)
    assert DOMAIN.schema.decode(condition[None].numpy())[0] == {k: rows_of(data)[3][k] for k in DOMAIN.schema.names}


def broken_copy(data, tmp_path, edit):
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    edit(copy)
    return copy


@pytest.mark.parametrize("edit, message", [
    (lambda d: cv2.imwrite(str(d / "images/scene-000004.png"), np.zeros((20, 30, 3), np.uint8)),
     r"scene-000004.png is 30x20 but scene-000000.png is 48x48; a data set has one image size"),
    (lambda d: cv2.imwrite(str(d / "images/scene-000005.png"), np.zeros((48, 48), np.uint8)),
     r"scene-000005.png is grayscale"),
    (lambda d: (d / "images/scene-000006.png").write_bytes(b"not a png"), r"scene-000006.png cannot be read as an image"),
    (lambda d: shutil.copy(d / "images/scene-000000.png", d / "images/extra.png"), r"extra.png has no row in"),
    (lambda d: (d / "images/scene-000007.png").unlink(), r"line 9: path images/scene-000007.png does not exist"),
    (lambda d: (d / "annotations.json").write_text(json.dumps({"images": [{"file_name": "scene-000000.png"}]})),
     r"scene-000001.png has a row in .*labels.csv but is not in .*annotations.json"),
])
def test_bad_data_sets_are_refused_naming_the_file(data, tmp_path, edit, message):
    with pytest.raises(SynthscapeError, match=message):
        DrivingDataset(broken_copy(data, tmp_path, edit), progress=False)


def test_cli_simulate_train_sample_by_plan(tmp_path):
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "out"
    assert main(["-q", "simulate", "driving", "--out", str(data), "--count", "8", "--size", "32"]) == 0
    assert main(["-q", "train", "driving", "--data", str(data), "--model", "gan", "--out", str(run), "--size", "16",
                 "--steps", "2", "--batch-size", "4"]) == 0
    plan = tmp_path / "plan.csv"
    plan.write_text("weather,time,scenario,count\nfog,night,pedestrian_crossing,3\nsnow,,cyclist,2\n")
    assert main(["-q", "sample", str(run), "--plan", str(plan), "--out", str(out)]) == 0
    rows = rows_of(out)
    assert [(r["weather"], r["scenario"]) for r in rows] == [("fog", "pedestrian_crossing")] * 3 + [("snow", "cyclist")] * 2
    assert all(r["time"] == "night" for r in rows[:3]) and [r["index"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert cv2.imread(str(out / rows[4]["path"])).shape == (16, 16, 3)
    assert (out / "preview.png").is_file()


TORCH_FREE = """
import sys
sys.modules["torch"] = None  # an edge device: importing torch fails
from pathlib import Path
import numpy as np
from synthscape.domains import get_domain
domain = get_domain("driving")
domain.simulate(Path(sys.argv[1]) / "data", count=2, seed=0, size=32)
domain.write(np.zeros((1, 3, 8, 8), np.float32), [{"weather": "fog", "time": "day", "scenario": "debris"}],
             Path(sys.argv[1]) / "out")
"""


def test_simulate_and_write_need_no_torch(tmp_path):
    subprocess.run([sys.executable, "-c", TORCH_FREE, str(tmp_path)], check=True, capture_output=True)
    assert len(rows_of(tmp_path / "data")) == 2 and len(rows_of(tmp_path / "out")) == 1


def test_two_workers_write_the_same_files_as_one(data, tmp_path):
    two = DOMAIN.simulate(tmp_path / "two", count=12, seed=0, size=48, workers=2)
    for name in ("annotations.json", "labels.csv", "images/scene-000011.png", "masks/scene-000005.png",
                 "labels/scene-000007.txt"):
        assert (two / name).read_bytes() == (data / name).read_bytes(), name


def test_fog_keeps_boxes_only_within_its_visibility(monkeypatch):
    from synthscape.domains.driving import domain as driving

    monkeypatch.setattr(driving, "FOG_VISIBILITY", (30.0, 30.0))
    dropped = 0
    for seed in range(6):
        condition = {"weather": "clear", "time": "day", "scenario": "normal"}
        _, clear, scene = driving.render("dashcam", 96, condition, np.random.default_rng(seed))
        _, foggy, _ = driving.render("dashcam", 96, {**condition, "weather": "fog"}, np.random.default_rng(seed))
        distance = {obj.instance: obj.distance for obj in scene.objects}
        assert {b.instance for b in foggy} == {b.instance for b in clear if distance[b.instance] <= 30.0}
        dropped += len(clear) - len(foggy)
    assert dropped > 0  # the test scenes do have objects beyond 30 m


def test_aerial_fog_hazes_but_does_not_blank_the_view():
    from synthscape.domains.driving.domain import render

    for seed in range(4):
        condition = {"weather": "fog", "time": "day", "scenario": "stalled_vehicle"}
        image, boxes, _ = render("aerial", 96, condition, np.random.default_rng(seed))
        clear, _, _ = render("aerial", 96, {**condition, "weather": "clear"}, np.random.default_rng(seed))
        assert 0.15 < image.std() / clear.std() < 0.9, seed  # contrast lowered, picture still there
        assert any(b.category == "car" for b in boxes)
