"""The lung-ct condition schema and the defaults every lung-ct part shares. numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.limits import check_voxels
from synthscape.core.schema.conditions import ConditionSchema
from synthscape.core.schema.config import number, whole_list
from synthscape.core.schema.labelmap import LabelMapSchema

SCHEMA = ConditionSchema({
    "nodule": ["absent", "present"],
    "size": ["none", "small", "medium", "large"],
    "kind": ["none", "solid", "ground_glass", "part_solid"],
})

# Nodule diameter classes in millimetres (Fleischner-like bins): [low, high)
SIZE_MM = {"small": (3.0, 6.0), "medium": (6.0, 15.0), "large": (15.0, 30.0)}

# HU window mapped to [-1, 1] for training; outputs map back through it.
HU_WINDOW = (-1024.0, 600.0)
# What a run's domain_meta may say (config.json comes from other people): far beyond real scans
MAX_HU = 100_000.0  # |HU| of a window end: real CT spans -1024 to ~30000 (metal)
SPACING_MM = (0.001, 1000.0)  # mm per voxel: micro-CT to a metre
ORIENTATIONS = ("RAS",)  # the reader turns every input to RAS and the writer writes RAS


@dataclass(frozen=True)
class CTMeta:
    """What a lung-ct data set records for training and the writer needs back (config.json's
    ``domain_meta``): the generator's voxels map to these millimetres and Hounsfield units."""

    hu_window: tuple[float, float] | list[float] = HU_WINDOW  # HU at -1 and +1 of the generator's scale
    spacing: tuple[float, float, float] | list[float] | None = None  # mm per voxel (x, y, z); None: fit the thorax
    size: tuple[int, int, int] | list[int] | None = None  # voxels per axis of the training volumes
    orientation: str = "RAS"  # axis directions (the reader turns every input to RAS; the writer writes RAS)

    def __post_init__(self) -> None:
        low, high = (number(v, "hu_window", -MAX_HU, MAX_HU) for v in _entries(self.hu_window, "hu_window", 2))
        if not low < high:
            raise SynthscapeError(f"hu_window must go from a lower to a higher HU, got {shown(repr(self.hu_window))}")
        if self.spacing is not None:
            for value in _entries(self.spacing, "spacing", 3):
                number(value, "spacing (mm per voxel)", *SPACING_MM)
        if self.size is not None:
            check_voxels(whole_list(self.size, "size", 1, 2**62, (3, 3)), "size", "is")
        if self.orientation not in ORIENTATIONS:
            raise SynthscapeError(f"orientation must be one of {', '.join(ORIENTATIONS)}, got {shown(repr(self.orientation))}")


def _entries(value: object, name: str, length: int) -> tuple:
    """``value`` as a tuple if it is a list of ``length`` entries."""
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise SynthscapeError(f"{name} must be a list of {length} numbers, got {shown(repr(value))}")
    return tuple(value)


# The layout (label map) classes of lung-ct: what a layout model is told, voxel by voxel. Lung, one
# class per nodule kind (so a sample's mask says where its nodule is and what it is), and the
# vessels and airways: at 1.25 mm they are most of what a lung crop shows, and a generator told
# where they run renders them crisp in minutes, where one left to invent them drew grey blotches
# (docs/lung-ct.md, "Label maps"). Bone, fat and muscle are left to the generator. Vessel and
# airway come last so the ids of the first five stay as they were.
LABELS = LabelMapSchema(("background", "lung", *(f"nodule_{kind}" for kind in SCHEMA.values("kind") if kind != "none"),
                         "vessel", "airway"))


def label_map(lung_mask: np.ndarray, nodule_mask: np.ndarray, kind: str, vessel_mask: np.ndarray | None = None,
              airway_mask: np.ndarray | None = None) -> np.ndarray:
    """The phantom's masks as one uint8 label map in ``LABELS`` ids, painted in this order, the
    later over the earlier: lung, vessels, airways, the nodule (its class from its ``kind``;
    ``none``: no nodule class). A mask left out paints nothing."""
    labels = (np.asarray(lung_mask) > 0).astype(np.uint8) * LABELS.id("lung")
    for mask, name in ((vessel_mask, "vessel"), (airway_mask, "airway")):
        if mask is not None:
            labels[np.asarray(mask) > 0] = LABELS.id(name)
    if kind != "none":
        labels[np.asarray(nodule_mask) > 0] = LABELS.id(f"nodule_{kind}")
    return labels
