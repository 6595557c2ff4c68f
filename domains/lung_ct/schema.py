"""The lung-ct condition schema and the defaults every lung-ct part shares. numpy only."""

from __future__ import annotations

from dataclasses import dataclass

from synthscape.core.schema.conditions import ConditionSchema

SCHEMA = ConditionSchema({
    "nodule": ["absent", "present"],
    "size": ["none", "small", "medium", "large"],
    "kind": ["none", "solid", "ground_glass", "part_solid"],
})

# Nodule diameter classes in millimetres (Fleischner-like bins): [low, high)
SIZE_MM = {"small": (3.0, 6.0), "medium": (6.0, 15.0), "large": (15.0, 30.0)}

# HU window mapped to [-1, 1] for training; outputs map back through it.
HU_WINDOW = (-1024.0, 600.0)


@dataclass(frozen=True)
class CTMeta:
    """What a lung-ct data set records for training and the writer needs back (config.json's
    ``domain_meta``): the generator's voxels map to these millimetres and Hounsfield units."""

    hu_window: tuple[float, float] | list[float] = HU_WINDOW  # HU at -1 and +1 of the generator's scale
    spacing: tuple[float, float, float] | list[float] | None = None  # mm per voxel (x, y, z); None: fit the thorax
    size: tuple[int, int, int] | list[int] | None = None  # voxels per axis of the training volumes
    orientation: str = "RAS"  # axis directions (the reader turns every input to RAS; the writer writes RAS)
