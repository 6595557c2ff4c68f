"""Geometry helpers the CT reader and writer tests share."""

from __future__ import annotations

import numpy as np


def rotation(axis: int, degrees: float) -> np.ndarray:
    """The 3x3 rotation by ``degrees`` about ``axis`` (0, 1 or 2): oblique series for the geometry tests."""
    t = np.deg2rad(degrees)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i] = r[j, j] = np.cos(t)
    r[i, j], r[j, i] = -np.sin(t), np.sin(t)
    return r
