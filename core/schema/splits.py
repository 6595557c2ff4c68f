"""Two-way splits of labelled items (train / held out, train / validation), stratified by condition.

A split that ignores the labels can leave a rare condition out of one side: with five foggy
night scenes in 500, a random 20 % validation set holds none about a third of the time, and every
score on it is then silent about the case the data set was made for. Lining the items up
condition by condition and taking every k-th one gives each condition its share instead.

numpy only: the torch-free simulators split the data sets they write with it, the evaluation the
real data it scores against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthscape.core.errors import SynthscapeError


def stratified_split(conditions: np.ndarray, share: float, seed: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, split_off)`` of the rows of ``conditions`` ``[N, A]``, ``split_off`` holding
    ``share`` of them, stratified by condition row.

    The items are lined up row by row (shuffled within a row, rows in sorted order) and every
    ``N / k``-th is split off from a random phase, ``k = round(share * N)`` kept between 1 and
    N - 1: each condition row gives its share (rounded up or down), a row too small for one item
    sometimes does and sometimes not, and both sides are never empty. ``seed`` seeds the draw
    (``np.random.default_rng``), so the same items and seed give the same split.
    """
    if not 0 < share < 1:
        raise SynthscapeError(f"a split's share must lie strictly between 0 and 1, got {share}")
    rows = np.asarray(conditions)
    count = len(rows)
    if count < 2:
        raise SynthscapeError(f"{count} item(s) cannot be split in two: a split needs at least 2")
    fraction = min(max(round(share * count), 1), count - 1) / count
    rng = np.random.default_rng(seed)
    _, groups = np.unique(rows.reshape(count, -1), axis=0, return_inverse=True)
    groups = groups.reshape(-1)  # numpy 2 keeps an axis here for axis=0
    order = np.concatenate([rng.permutation(np.flatnonzero(groups == g)) for g in np.unique(groups)])
    position = np.arange(count) + rng.random()  # a random phase: which item of each stride
    off = np.zeros(count, dtype=bool)
    off[order[np.floor((position + 1) * fraction) > np.floor(position * fraction)]] = True
    return np.flatnonzero(~off), np.flatnonzero(off)
