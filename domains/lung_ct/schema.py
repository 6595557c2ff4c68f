"""The lung-ct condition schema and the defaults every lung-ct part shares. numpy only."""

from __future__ import annotations

from synthscape.core.conditions import ConditionSchema

SCHEMA = ConditionSchema({
    "nodule": ["absent", "present"],
    "size": ["none", "small", "medium", "large"],
    "kind": ["none", "solid", "ground_glass", "part_solid"],
})

# Nodule diameter classes in millimetres (Fleischner-like bins): [low, high)
SIZE_MM = {"small": (3.0, 6.0), "medium": (6.0, 15.0), "large": (15.0, 30.0)}

# HU window mapped to [-1, 1] for training; outputs map back through it.
HU_WINDOW = (-1024.0, 600.0)
