"""Driving layout models: the simulator's semantic maps as label maps, read beside their pictures
(or through a mapping file), drawn for a scenario, rendered at another size or from a folder, and
written beside every sample; the same through ONNX without torch."""

from __future__ import annotations

import csv
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
from synthscape.domains.driving.scene import CATEGORIES, label_map_boxes
from synthscape.domains.driving.schema import LABELS

DOMAIN = get_domain("driving")


def rows(folder):
    with (folder / "labels.csv").open() as handle:
        return list(csv.DictReader(handle))


def read_mask(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def layout_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("driving-layout")
    data, run = root / "data", root / "run"
    assert main(["-q", "simulate", "driving", "--out", str(data), "--count", "8", "--size", "32"]) == 0
    assert main(["-q", "train", "driving", "--data", str(data), "--model", "gan", "--layout", "--crop", "16", "--size", "32",
                 "--out", str(run), "--steps", "2", "--batch-size", "4"]) == 0
    return data, run


def test_the_label_map_classes_are_the_simulators_semantic_classes():
    assert DOMAIN.labels is LABELS and LABELS.classes[:2] == ("sky", "road") and LABELS.id("pedestrian") == 12


def test_a_drawn_layout_is_the_scenarios_street_seeded_in_its_view():
    drawn = DOMAIN.draw_layout({"weather": "fog", "time": "night", "scenario": "pedestrian_crossing"}, (48, 64), None,
                               np.random.default_rng(3))
    crossing, objects = drawn.labels, drawn.instances
    assert crossing.shape == objects.shape == (48, 64) and crossing.dtype == np.uint8 and crossing.max() < len(LABELS)
    assert LABELS.id("pedestrian") in crossing  # the scenario's people
    assert LABELS.id("sky") in crossing[0] and (crossing[-1] == LABELS.id("road")).mean() > 0.5  # sky above, road below
    assert {LABELS.classes[c] for c in np.unique(crossing[objects > 0])} <= set(CATEGORIES)  # objects are things
    assert len(np.unique(objects[crossing == LABELS.id("pedestrian")])) > 1  # the people, one by one
    again = DOMAIN.draw_layout({"weather": "clear", "time": "day", "scenario": "pedestrian_crossing"}, (48, 64), None,
                               np.random.default_rng(3))
    np.testing.assert_array_equal(crossing, again.labels)  # weather and time change no class
    np.testing.assert_array_equal(objects, again.instances)
    aerial = DOMAIN.draw_layout({"weather": "clear", "time": "day", "scenario": "normal"}, (48, 48), {"view": "aerial"},
                                np.random.default_rng(3))
    assert LABELS.id("sky") not in aerial.labels  # a drone looks down


def test_the_reader_cuts_label_maps_as_it_cuts_their_pictures(layout_run):
    data, _ = layout_run
    same = DrivingDataset(data, size=32, progress=False, layout=True)
    half = DrivingDataset(data, size=16, progress=False, layout=True)
    assert same.meta["view"] == "dashcam"
    for i, row in enumerate(rows(data)):
        mask = read_mask(data / row["mask"])
        np.testing.assert_array_equal(same[i][2].numpy(), mask)
        blocks = mask.reshape(16, 2, 16, 2).transpose(0, 2, 1, 3).reshape(16, 16, 4)
        assert (blocks == half[i][2].numpy()[..., None]).any(-1).all()  # nearest: a value of its 2x2 block, never a blend


def test_a_mapping_file_reads_another_tools_label_values(layout_run, tmp_path):
    data, _ = layout_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    for row in rows(copy):  # the values another tool would use: ours + 100, 16 bit
        cv2.imwrite(str(copy / row["mask"]), read_mask(data / row["mask"]).astype(np.uint16) + 100)
    (copy / "label_mapping.json").write_text(json.dumps({str(i + 100): name for i, name in enumerate(LABELS.classes)}))
    mapped = DrivingDataset(copy, size=32, progress=False, layout=True)
    original = DrivingDataset(data, size=32, progress=False, layout=True)
    np.testing.assert_array_equal(mapped.layouts, original.layouts)
    (copy / "label_mapping.json").write_text(json.dumps({"100": "sky"}))
    with pytest.raises(SynthscapeError, match=r"scene-000000.png holds value\(s\) 101"):
        DrivingDataset(copy, size=32, progress=False, layout=True)


def test_boxes_of_a_label_map_are_tight_on_each_instance_and_skip_stuff():
    semantic = np.zeros((10, 12), np.uint8)
    instances = np.zeros((10, 12), np.int32)
    semantic[2:8, 3:5] = semantic[3:9, 5:8] = LABELS.id("pedestrian")  # two people side by side: one blob
    instances[2:8, 3:5], instances[3:9, 5:8] = 4, 9
    semantic[0, :] = LABELS.id("road")
    instances[0, :] = 2  # an instance of a class that is not a detection category
    boxes = sorted(label_map_boxes(semantic, instances), key=lambda b: b.instance)
    assert [(b.category, b.x, b.y, b.w, b.h, b.area, b.instance) for b in boxes] == [
        ("pedestrian", 3, 2, 2, 6, 12, 4), ("pedestrian", 5, 3, 3, 6, 18, 9)]


def test_samples_at_another_size_carry_their_label_map_and_exact_boxes(layout_run, tmp_path):
    from pycocotools.coco import COCO

    _, run = layout_run
    out = tmp_path / "samples"
    assert main(["-q", "sample", str(run), "--count", "4", "--out", str(out), "--size", "48",
                 "--condition", "scenario=pedestrian_crossing"]) == 0
    coco = COCO(str(out / "annotations.json"))
    by_name = {image["file_name"]: image["id"] for image in coco.loadImgs(coco.getImgIds())}
    for row in rows(out):
        image, labels, objects = (cv2.imread(str(out / row["path"])), read_mask(out / row["mask"]),
                                  read_mask(out / row["instances"]))
        assert image.shape == (48, 48, 3) and labels.shape == objects.shape == (48, 48) and labels.dtype == np.uint8
        assert LABELS.id("pedestrian") in labels and labels.max() < len(LABELS)
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[by_name[row["path"].split("/")[-1]]]))
        assert len(annotations) == int(row["boxes"]) == len((out / row["yolo"]).read_text().splitlines()) > 0
        expected = []  # each instance of a detection class with 4 pixels or more: its tight box and area
        for instance in np.unique(objects[objects > 0]):
            ys, xs = np.nonzero(objects == instance)
            name = LABELS.classes[np.bincount(labels[ys, xs]).argmax()]
            if name in CATEGORIES and len(ys) >= 4:
                expected.append((name, xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1, len(ys)))
        written = [(CATEGORIES[a["category_id"] - 1], *a["bbox"], a["area"]) for a in annotations]
        assert sorted(written) == sorted(expected)
        yolo = []  # the YOLO file says the same boxes, normalised by the 48 x 48 picture
        for line in (out / row["yolo"]).read_text().splitlines():
            c, cx, cy, w, h = (float(v) for v in line.split())
            yolo.append((CATEGORIES[int(c)], *np.round([(cx - w / 2) * 48, (cy - h / 2) * 48, w * 48, h * 48], 3)))
        assert sorted(yolo) == sorted((name, float(x), float(y), float(w), float(h)) for name, x, y, w, h, _ in expected)
    assert {row["split"] for row in rows(out)} <= {"train", "val"} and (out / "data.yaml").is_file()


def test_given_layouts_are_rendered_in_row_order_with_their_conditions(layout_run, tmp_path):
    data, run = layout_run
    out = tmp_path / "from-folder"
    assert main(["-q", "sample", str(run), "--layouts", str(data), "--count", "3", "--out", str(out)]) == 0
    given, made = rows(data)[:3], rows(out)
    names = ("weather", "time", "scenario")
    assert [[r[k] for k in names] for r in made] == [[r[k] for k in names] for r in given]
    for source, sample in zip(given, made):
        np.testing.assert_array_equal(read_mask(out / sample["mask"]), read_mask(data / source["mask"]))


def test_the_same_streets_restyled_keep_their_labels_and_scenarios(layout_run, tmp_path, capsys):
    data, run = layout_run
    out = tmp_path / "fog-night"
    assert main(["-q", "sample", str(run), "--layouts", str(data), "--count", "4", "--out", str(out),
                 "--condition", "weather=fog", "--condition", "time=night"]) == 0
    given, made = rows(data)[:4], rows(out)
    assert [(r["weather"], r["time"]) for r in made] == [("fog", "night")] * 4
    assert [r["scenario"] for r in made] == [r["scenario"] for r in given]
    for source, sample in zip(given, made):
        np.testing.assert_array_equal(read_mask(out / sample["mask"]), read_mask(data / source["mask"]))
        np.testing.assert_array_equal(read_mask(out / sample["instances"]), read_mask(data / source["instances"]))
    assert main(["-q", "sample", str(run), "--layouts", str(data), "--count", "1", "--out", str(tmp_path / "x"),
                 "--condition", "scenario=debris"]) == 2
    assert "their own scenario (the layout fixes it); --condition may set only time, weather" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [
    (np.zeros((20, 32), np.uint8), r"scene-000002.png is 32x20 but its picture is 32x32"),
    (np.zeros((32, 32, 3), np.uint8), r"scene-000002.png is a uint8 image of shape \[32, 32, 3\]; a label map is one channel"),
])
def test_a_bad_label_map_is_one_line_naming_it(layout_run, tmp_path, bad, message):
    data, _ = layout_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    cv2.imwrite(str(copy / "masks" / "scene-000002.png"), bad)
    with pytest.raises(SynthscapeError, match=message):
        DrivingDataset(copy, size=32, progress=False, layout=True)


def test_layout_training_without_a_mask_column_is_one_line(layout_run, tmp_path):
    data, _ = layout_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    table = rows(copy)
    with (copy / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [k for k in table[0] if k != "mask"])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != "mask"} for row in table)
    with pytest.raises(SynthscapeError, match="layout training needs a `mask` column"):
        DrivingDataset(copy, size=32, progress=False, layout=True)


TORCH_FREE_CLI = """
import sys
sys.modules["torch"] = None  # an edge device: importing torch fails
from synthscape.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_the_edge_renders_simulated_street_layouts_through_onnx_without_torch(layout_run, tmp_path):
    _, run = layout_run
    path, out = tmp_path / "driving.onnx", tmp_path / "edge"
    assert main(["-q", "export", str(run), "--out", str(path)]) == 0
    result = subprocess.run([sys.executable, "-c", TORCH_FREE_CLI, "-q", "sample", str(path), "--count", "2", "--out",
                             str(out), "--size", "64", "--condition", "scenario=cyclist", "--seed", "2"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    torch_out = tmp_path / "torch"
    assert main(["-q", "sample", str(run), "--count", "2", "--out", str(torch_out), "--size", "64",
                 "--condition", "scenario=cyclist", "--seed", "2"]) == 0
    for edge, eager in zip(rows(out), rows(torch_out)):
        labels = read_mask(out / edge["mask"])
        assert labels.shape == (64, 64) and LABELS.id("cyclist") in labels
        np.testing.assert_array_equal(labels, read_mask(torch_out / eager["mask"]))  # the same simulated layout
        difference = np.abs(cv2.imread(str(out / edge["path"])).astype(int) - cv2.imread(str(torch_out / eager["path"])))
        assert difference.max() <= 1  # onnxruntime renders it as torch does, to a uint8 step
