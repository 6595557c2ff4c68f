"""Generated driving pictures written as a data set: PNGs, and for a layout model the label map it
rendered, its objects' instance map and their boxes (YOLO per picture; COCO, splits and data.yaml
once the whole order is written), in the form ``synthscape simulate`` writes. numpy + OpenCV only.

A box is the tight box of an object's pixels in the written instance map, its class the label
map's class there (``scene.label_map_boxes``): exact for the layout, whatever the generator drew.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from synthscape.core.files.atomic import write_text
from synthscape.core.files.grids import to_uint8, write_png
from synthscape.domains.driving.formats import write_detection_sets, yolo_lines
from synthscape.domains.driving.scene import label_map_boxes
from synthscape.domains.driving.schema import LABELS
from synthscape.domains.driving.splits import VAL_SHARE, split_names


def write_pictures(out: Path, images: np.ndarray, conditions: Sequence[dict[str, str]], seed: int | None,
                   indices: Sequence[int], layouts: np.ndarray | None = None,
                   instances: np.ndarray | None = None) -> tuple[list[Path], list[dict]]:
    """``images/sample-N.png`` per image ``[N, 3, H, W]`` in [-1, 1]; with ``layouts`` ``[N, H, W]`` also
    ``masks/sample-N.png``, and with ``instances`` ``instances/sample-N.png`` (16 bit) and the YOLO
    file of its boxes. Returns the files and the labels.csv rows."""
    files, rows = [], []
    for position, (image, condition, index) in enumerate(zip(to_uint8(images), conditions, indices)):
        name = f"sample-{index:06d}"
        row = {"path": f"images/{name}.png", **condition, "seed": seed, "index": index}
        files.append(write_png(out / row["path"], np.ascontiguousarray(image.transpose(1, 2, 0))))
        if layouts is not None:
            labels = LABELS.check(layouts[position], f"the label map of sample {index}")
            row["mask"] = f"masks/{name}.png"
            files.append(write_png(out / row["mask"], labels))
            if instances is not None:
                objects = np.asarray(instances[position])
                boxes = label_map_boxes(labels, objects)
                row.update(instances=f"instances/{name}.png", yolo=f"labels/{name}.txt", boxes=len(boxes))
                files.append(write_png(out / row["instances"], objects.astype(np.uint16)))
                files.append(write_text(out / row["yolo"], yolo_lines(boxes, labels.shape[1], labels.shape[0])))
        rows.append(row)
    return files, rows


def write_detection_files(out: Path, rows: Sequence[Mapping[str, str]], val_share: float = VAL_SHARE) -> list[Path]:
    """COCO (whole and per split), the split lists and data.yaml of every written sample with an
    instance map, boxes read back from the maps written; a ``split`` per row (seeded by the
    samples' seed, stratified by condition). None when no row has an instance map."""
    if not rows or not all(row.get("instances") for row in rows):
        return []
    pictures, boxes = [], []
    for row in rows:
        labels = cv2.imread(str(out / row["mask"]), cv2.IMREAD_UNCHANGED)
        objects = cv2.imread(str(out / row["instances"]), cv2.IMREAD_UNCHANGED)
        pictures.append((Path(row["path"]).name, labels.shape[1], labels.shape[0]))
        boxes.append(label_map_boxes(labels, objects))
    splits = split_names(rows, val_share, int(rows[0].get("seed") or 0))
    for row, split in zip(rows, splits):
        row["split"] = split
    return write_detection_sets(out, pictures, boxes, splits)

