"""Detection label formats: COCO JSON and YOLO txt, from the renderer's visible boxes.

COCO (cocodataset.org/#format-data): ``images`` (id, file_name, width, height), ``annotations``
(id, image_id, category_id, bbox [x, y, w, h] in pixels, area, iscrowd 0), ``categories``
(id = index + 1 of CATEGORIES). Our boxes are pixel-inclusive extents, so a box of one pixel at
column 3 is ``[3, 3, 1, 1]``; ``area`` is the object's visible pixel count, as for a COCO mask.

YOLO (Ultralytics/darknet): ``labels/NAME.txt`` beside ``images/NAME.png`` with one line
``class cx cy w h`` per box, normalised to [0, 1] by the image width and height; ``classes.txt``
lists the class names in class order, and ``data.yaml`` says the same for Ultralytics.

Splits: every image is in ``train`` or ``val``. ``train.txt`` / ``val.txt`` list each side's
images as ``./images/NAME.png``, the form Ultralytics reads relative to the list file (a line
without ``./`` it reads relative to the working directory); ``data.yaml`` names the two lists and
has no ``path`` key, so Ultralytics resolves them against the yaml's own folder, from any working
directory. ``instances_train.json`` / ``instances_val.json`` are ``annotations.json`` cut in two:
the same image and annotation ids, disjoint, together the whole set.
No numpy needed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import write_json, write_text
from synthscape.domains.driving.scene import CATEGORIES, Box

COCO_FILE = "annotations.json"
SPLITS = ("train", "val")


def coco_categories() -> list[dict]:
    """COCO ``categories``: one per detection category, id = index + 1."""
    return [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(CATEGORIES)]


def coco_document(images: Sequence[tuple[str, int, int]], boxes: Sequence[Sequence[Box]]) -> dict:
    """``images``: (file name, width, height) per image; ``boxes``: the boxes of each image."""
    document = {"info": {"description": "synthscape driving scenes", "version": "1.0"}, "licenses": [],
                "images": [], "annotations": [], "categories": coco_categories()}
    for image_id, ((name, width, height), image_boxes) in enumerate(zip(images, boxes), start=1):
        document["images"].append({"id": image_id, "file_name": name, "width": int(width), "height": int(height)})
        for box in image_boxes:
            document["annotations"].append({
                "id": len(document["annotations"]) + 1, "image_id": image_id,
                "category_id": CATEGORIES.index(box.category) + 1, "bbox": [box.x, box.y, box.w, box.h],
                "area": box.area, "iscrowd": 0, "visible_fraction": box.visible})
    return document


def yolo_lines(boxes: Sequence[Box], width: int, height: int) -> str:
    """A YOLO label file's text: ``class cx cy w h`` per box, normalised by the image's ``width`` and ``height``."""
    lines = [f"{CATEGORIES.index(b.category)} {(b.x + b.w / 2) / width:.6f} {(b.y + b.h / 2) / height:.6f} "
             f"{b.w / width:.6f} {b.h / height:.6f}" for b in boxes]
    return "".join(line + "\n" for line in lines)


def data_yaml() -> str:
    """The Ultralytics data set file: the split lists and the class names, no ``path`` (the yaml's folder)."""
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(CATEGORIES))
    return ("# Ultralytics data set file; paths are relative to this file's folder\n"
            f"train: {SPLITS[0]}.txt\nval: {SPLITS[1]}.txt\nnames:\n{names}")


def split_document(document: dict, keep: set[str]) -> dict:
    """The part of a COCO ``document`` whose images' file names are in ``keep``, ids unchanged."""
    images = [image for image in document["images"] if image["file_name"] in keep]
    ids = {image["id"] for image in images}
    return {**document, "images": images,
            "annotations": [a for a in document["annotations"] if a["image_id"] in ids]}


def write_detection_sets(folder: Path, images: Sequence[tuple[str, int, int]], boxes: Sequence[Sequence[Box]],
                         splits: Sequence[str]) -> list[Path]:
    """Write the labels that a detector trains on for the images of ``folder/images``: ``images``
    (file name, width, height), their ``boxes`` (YOLO files are the caller's, one per image) and
    each image's split (``train`` or ``val``): ``classes.txt``, ``data.yaml``, the split lists, the
    COCO file of every image and one per split. Returns the files written."""
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or len(splits) != len(images):
        raise SynthscapeError(f"need one split of {', '.join(SPLITS)} per image ({len(images)}), "
                              f"got {len(splits)}{' with ' + unknown[0] if unknown else ''}")
    files = [write_text(folder / "classes.txt", "".join(name + "\n" for name in CATEGORIES))]
    document = coco_document(images, boxes)
    files.append(write_coco(folder / COCO_FILE, document))
    for split in SPLITS:
        names = [name for (name, _, _), s in zip(images, splits) if s == split]
        files.append(write_text(folder / f"{split}.txt", "".join(f"./images/{name}\n" for name in names)))
        files.append(write_coco(folder / f"instances_{split}.json", split_document(document, set(names))))
    files.append(write_text(folder / "data.yaml", data_yaml()))
    return files


def read_coco_images(path: Path) -> list[str]:
    """The image file names a COCO JSON lists, checked for the keys COCO requires."""
    try:
        document = json.loads(path.read_text())
        return [str(image["file_name"]) for image in document["images"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SynthscapeError(f"{path} is not a COCO JSON with images[].file_name ({exc.__class__.__name__}: {exc})") from None


def write_coco(path: Path, document: dict) -> Path:
    """Write a COCO ``document`` (``coco_document``) as JSON to ``path`` (atomically); returns the path."""
    write_json(path, document)
    return path
