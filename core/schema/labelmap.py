"""The classes of a domain's layouts (label maps): names and integer ids. numpy only.

A layout model renders an image where a label map fixes what is where: the generator takes the
label map as an input beside its latent and condition, and every sample it makes carries that map
as its exact mask. Class ``i`` is the voxel (pixel) value ``i``; class 0 is the background, what no
other class claims. The schema travels in config.json and the ONNX metadata like the condition
schema, so a label map written beside a sample is always interpretable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.schema.conditions import checked_name

MAX_CLASSES = 255  # a label map is written as uint8
MAPPING_FILE = "label_mapping.json"  # beside labels.csv: the values of a data set's mask files -> class names


@dataclass(frozen=True)
class LabelMapSchema:
    """Ordered class names; a class's id is its position (0: the background)."""

    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        classes = self.classes
        if isinstance(classes, (str, bytes, Mapping)) or not isinstance(classes, Sequence) or not 2 <= len(classes) <= MAX_CLASSES:
            raise SynthscapeError(f"a label map needs 2 to {MAX_CLASSES} class names (background first), got {shown(repr(classes))}")
        names = tuple(checked_name(c, "a label-map class") for c in classes)
        folded = [n.lower() for n in names]
        if len(set(folded)) != len(folded):
            raise SynthscapeError(f"label-map class names must differ (ignoring case), got {', '.join(names)}")
        object.__setattr__(self, "classes", names)

    def __len__(self) -> int:
        return len(self.classes)

    def id(self, name: str) -> int:
        """The id of class ``name``; an unknown name is refused with the valid ones listed."""
        if name not in self.classes:
            raise SynthscapeError(f"unknown label-map class {shown(repr(name))}; classes: {', '.join(self.classes)}")
        return self.classes.index(name)

    def ids(self, prefix: str) -> list[int]:
        """The ids of every class whose name starts with ``prefix`` (lung-ct: ``nodule_``)."""
        return [i for i, name in enumerate(self.classes) if name.startswith(prefix)]

    def check(self, label_map: Any, what: str) -> np.ndarray:
        """``label_map`` as uint8 if it holds whole values ``0 .. len - 1`` only; else one line naming ``what``."""
        array = np.asarray(label_map)
        if array.dtype.kind not in "iub":
            if array.dtype.kind != "f" or not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
                raise SynthscapeError(f"{what} must hold whole class ids, got {array.dtype} values")
        if array.size and (array.min() < 0 or array.max() >= len(self)):
            raise SynthscapeError(f"{what} holds values {int(array.min())}..{int(array.max())}; "
                                  f"the label map's classes are 0..{len(self) - 1} ({', '.join(self.described())})")
        return array.astype(np.uint8)

    def described(self) -> list[str]:
        """``["0 background", "1 lung", ...]``: how ``synthscape domains`` shows the classes."""
        return [f"{i} {name}" for i, name in enumerate(self.classes)]

    def to_list(self) -> list[str]:
        """The class names in id order: config.json's and the ONNX metadata's ``label_map``."""
        return list(self.classes)

    @classmethod
    def from_list(cls, data: Any) -> LabelMapSchema:
        """From config.json's ``label_map`` (a list of names)."""
        if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
            raise SynthscapeError(f"label_map must be a list of class names, got {shown(repr(data))}")
        return cls(tuple(data))


@dataclass(frozen=True)
class Layout:
    """A label map and, where its source knows them, its objects: an instance map of the same size
    (0: no object; k > 0: the visible pixels of object k), which the domain's writer turns into one
    box per object. A label map alone says what is where, not which pixels are one car."""

    labels: np.ndarray
    instances: np.ndarray | None = None


def folder_mapping(folder: Any, rows: Sequence[Mapping[str, str]], schema: LabelMapSchema, item: str,
                   domain: str) -> dict[int, int] | None:
    """A layout data set's ``MAPPING_FILE`` (None: its masks hold our ids), after checking that every
    labels.csv row of ``folder`` names its label map in a ``mask`` column (``item``: what a row is,
    a volume or an image; ``domain``: whose simulator writes one)."""
    from pathlib import Path

    folder = Path(folder)
    missing = [i for i, row in enumerate(rows) if not row.get("mask")]
    if missing:
        raise SynthscapeError(f"{folder / 'labels.csv'}: layout training needs a `mask` column naming each {item}'s "
                              f"label map (row {missing[0] + 2} has none); `synthscape simulate {domain}` writes one")
    return read_mapping(folder / MAPPING_FILE, schema) if (folder / MAPPING_FILE).is_file() else None


def read_mapping(path: Any, schema: LabelMapSchema) -> dict[int, int]:
    """A mapping file (JSON object ``{"value in the files": "our class name"}``) as ``{value: id}``.

    Lets label maps from another tool (a lung or nodule segmenter, another data set's ids) train a
    layout model: values the file does not name are refused where they are read, never guessed."""
    import json
    from pathlib import Path

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SynthscapeError(f"{path}: not a readable JSON label mapping ({shown(str(exc), 200)})") from None
    if not isinstance(data, dict) or not data:
        raise SynthscapeError(f"{path}: a label mapping is a JSON object of value -> class name, got {type(data).__name__}")
    mapping = {}
    for key, name in data.items():
        if not str(key).strip().isdigit() or int(key) > 65535:
            raise SynthscapeError(f"{path}: {shown(repr(key))} is not a label value (a whole number 0..65535)")
        if not isinstance(name, str):
            raise SynthscapeError(f"{path}: value {key} maps to {shown(repr(name))}, expected a class name")
        mapping[int(key)] = schema.id(name)
    return mapping


def apply_mapping(values: np.ndarray, mapping: Mapping[int, int] | None, schema: LabelMapSchema, what: str) -> np.ndarray:
    """A label map read from a file, in our ids (``mapping`` none: the file uses our ids already)."""
    values = np.asarray(values)
    if mapping is None:
        return schema.check(values, what)
    present = np.unique(values)
    unknown = [int(v) for v in present if int(v) not in mapping]
    if unknown:
        raise SynthscapeError(f"{what} holds value(s) {', '.join(map(str, unknown[:8]))} that the label mapping does not name")
    lookup = np.zeros(int(present.max()) + 1, dtype=np.uint8)
    for value, class_id in mapping.items():
        if value < len(lookup):
            lookup[value] = class_id
    return lookup[values.astype(np.int64)]
