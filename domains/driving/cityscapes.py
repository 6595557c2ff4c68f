"""Cityscapes-form folders (Cityscapes, ACDC's fog / night / rain / snow) as driving data sets.

Both lay out pictures and labels in parallel trees named by a shared prefix:

    leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png       (ACDC: rgb_anon/fog/train/GOPR0475/..._rgb_anon.png)
    gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png        (ACDC: gt/fog/train/GOPR0475/..._gt_labelIds.png)
    gtFine/train/aachen/aachen_000000_000019_gtFine_instanceIds.png     (16 bit: class id below 1000, else class * 1000 + k)

``index_folder`` pairs every picture with its label ids (and instance ids, where present) by that
prefix and writes the folder's ``labels.csv`` (path, weather, time, scenario, mask, instances)
and, unless one is there, ``label_mapping.json`` from Cityscapes label ids to our classes
(``CITYSCAPES_TO_OURS``; edit it to taste). Weather and time come from an ACDC condition folder
in the picture's path (fog, night, rain, snow), else from the defaults given. The driving reader
then trains on the folder as it is (``synthscape train driving --data ROOT --layout``); it reads
an ``*_instanceIds.png`` by the Cityscapes rule (``cityscapes_instances``).

    python -m synthscape.domains.driving.cityscapes ROOT [--weather clear] [--time day] [--scenario normal]

numpy only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import write_text
from synthscape.core.schema.labelmap import MAPPING_FILE
from synthscape.domains.driving.schema import SCHEMA
from synthscape.domains.labels import LABELS as LABELS_CSV
from synthscape.domains.labels import write_labels

PICTURE_SUFFIXES = ("_leftImg8bit.png", "_rgb_anon.png")
GT_TAGS = ("_gtFine_", "_gtCoarse_", "_gt_")  # Cityscapes fine / coarse, ACDC
LABEL_SUFFIXES = tuple(f"{tag}labelIds.png" for tag in GT_TAGS)
INSTANCE_SUFFIXES = tuple(f"{tag}instanceIds.png" for tag in GT_TAGS)
ACDC_CONDITIONS = {"fog": {"weather": "fog"}, "rain": {"weather": "rain"}, "snow": {"weather": "snow"},
                   "night": {"time": "night"}}
# Cityscapes label ids (cityscapesscripts/helpers/labels.py) -> our classes. Our label map has no
# void class: the void ids (0-6: unlabeled, ego vehicle, borders, static, dynamic, ground) become
# terrain; parking and rail track road; wall, fence, bridge and tunnel building; guard rail and
# pole group pole; bus, caravan, trailer and train truck; rider, motorcycle and bicycle cyclist.
CITYSCAPES_TO_OURS = {
    0: "terrain", 1: "terrain", 2: "terrain", 3: "terrain", 4: "terrain", 5: "terrain", 6: "terrain",
    7: "road", 8: "sidewalk", 9: "road", 10: "road", 11: "building", 12: "building", 13: "building",
    14: "pole", 15: "building", 16: "building", 17: "pole", 18: "pole", 19: "traffic_light", 20: "traffic_sign",
    21: "vegetation", 22: "terrain", 23: "sky", 24: "pedestrian", 25: "cyclist", 26: "car", 27: "truck",
    28: "truck", 29: "truck", 30: "truck", 31: "truck", 32: "cyclist", 33: "cyclist",
}


def cityscapes_instances(values: np.ndarray) -> np.ndarray:
    """An ``*_instanceIds.png``'s values as our instance map: an object's pixels keep its id
    (class * 1000 + k, 1000 and over); class ids below 1000 (stuff, crowds) are no object (0)."""
    values = np.asarray(values).astype(np.int32)
    return np.where(values >= 1000, values, 0)


def _prefix(name: str, suffixes: tuple[str, ...]) -> str | None:
    """``name`` without the first of ``suffixes`` it ends with (None: none)."""
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _key(root: Path, path: Path, stem: str) -> tuple[tuple[str, ...], str]:
    """Where a file sits below its tree's top folder (leftImg8bit/, gtFine/, rgb_anon/, gt/) and its
    prefix: a picture and its labels share both (``train/aachen``, ``aachen_000000_000019``)."""
    return path.relative_to(root).parts[1:-1], stem


def index_rows(root: Path, defaults: Mapping[str, str]) -> list[dict[str, str]]:
    """One labels.csv row per picture under ``root`` that has label ids, in path order."""
    root = Path(root)
    labels, instances, files = {}, {}, sorted(root.rglob("*.png"))
    for path in files:
        if (stem := _prefix(path.name, LABEL_SUFFIXES)) is not None:
            labels[_key(root, path, stem)] = path
        elif (stem := _prefix(path.name, INSTANCE_SUFFIXES)) is not None:
            instances[_key(root, path, stem)] = path
    rows = []
    for picture in files:
        stem = _prefix(picture.name, PICTURE_SUFFIXES)
        key = None if stem is None else _key(root, picture, stem)
        if key not in labels:
            continue
        condition = dict(defaults)
        for part in picture.relative_to(root).parts[:-1]:
            condition.update(ACDC_CONDITIONS.get(part, {}))
        row = {"path": picture.relative_to(root).as_posix(), **SCHEMA.validate(condition),
               "mask": labels[key].relative_to(root).as_posix()}
        if key in instances:
            row["instances"] = instances[key].relative_to(root).as_posix()
        rows.append(row)
    if not rows:
        raise SynthscapeError(f"{root}: no picture ({' or '.join('*' + s for s in PICTURE_SUFFIXES)}) with label ids "
                              f"({' or '.join('*' + s for s in LABEL_SUFFIXES)}) found")
    return rows


def index_folder(root: Path, defaults: Mapping[str, str] | None = None, overwrite: bool = False) -> Path:
    """Write ``root``'s labels.csv (and ``label_mapping.json`` if absent) for the driving reader; an
    existing labels.csv is the user's and is kept unless ``overwrite``. Returns labels.csv's path."""
    root = Path(root)
    if not root.is_dir():
        raise SynthscapeError(f"{root} is not a folder (expected a Cityscapes or ACDC tree)")
    if (root / LABELS_CSV).exists() and not overwrite:
        raise SynthscapeError(f"{root / LABELS_CSV} exists; pass --overwrite to replace it")
    condition = {"weather": "clear", "time": "day", "scenario": "normal", **dict(defaults or {})}
    rows = index_rows(root, SCHEMA.validate(condition))
    if not (root / MAPPING_FILE).exists():
        write_text(root / MAPPING_FILE, json.dumps({str(k): v for k, v in CITYSCAPES_TO_OURS.items()}, indent=2) + "\n")
    extras = ("mask", "instances") if all("instances" in row for row in rows) else ("mask",)
    return write_labels(root, rows, SCHEMA, extras=extras)


def main(argv: list[str] | None = None) -> int:
    """``python -m synthscape.domains.driving.cityscapes ROOT``: index a Cityscapes-form folder."""
    parser = argparse.ArgumentParser(description="Write labels.csv and label_mapping.json for a Cityscapes or ACDC "
                                     "folder, so that `synthscape train driving --data ROOT --layout` reads it.")
    parser.add_argument("root", type=Path, help="the data set's top folder (holding leftImg8bit/ and gtFine/, or rgb_anon/ and gt/)")
    for name in SCHEMA.names:
        parser.add_argument(f"--{name}", choices=SCHEMA.values(name), help=f"the {name} of pictures whose path "
                            "names no ACDC condition (default: clear, day, normal)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing labels.csv")
    args = parser.parse_args(argv)
    defaults = {name: getattr(args, name) for name in SCHEMA.names if getattr(args, name)}
    try:
        path = index_folder(args.root, defaults, args.overwrite)
    except SynthscapeError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
