"""The train / validation split of a driving data set, simulated or generated: seeded, stratified by
weather x time x scenario (``core.schema.splits``), recorded in labels.csv's ``split`` column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from synthscape.core.schema.splits import stratified_split
from synthscape.domains.driving.schema import SCHEMA

VAL_SHARE = 0.2  # the share of a data set in its validation split
SPLIT_STREAM = (2, 7)  # the split's seed is [seed, *SPLIT_STREAM]: no scene's ([seed, index])


def split_names(rows: Sequence[Mapping[str, str]], share: float, seed: int) -> list[str]:
    """``train`` or ``val`` per labels.csv row, seeded, stratified by weather, time and scenario so
    that rare combinations reach validation too (``stratified_split``). A single scene is train."""
    names = ["train"] * len(rows)
    if len(rows) >= 2:
        _, val = stratified_split(np.array([[row[a] for a in SCHEMA.names] for row in rows]), share,
                                  [seed, *SPLIT_STREAM])
        for i in val:
            names[i] = "val"
    return names
