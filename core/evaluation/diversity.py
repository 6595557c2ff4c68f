"""Diversity: does the generator draw many different images per condition, or one?

Label fidelity alone rewards a collapsed generator that draws one image per label, so the report
puts diversity beside it: ``1 - mean pairwise MS-SSIM`` between different samples of the same
condition (MONAI's ``MultiScaleSSIMMetric``), against the same on real data. Copies of one image
score 0; unrelated images score well above it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import MultiScaleSSIMMetric

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.distances import as_image_set

# MONAI's (and Wang et al.'s) defaults: 5 scales, 11-wide Gaussian windows of sigma 1.5.
STANDARD_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
STANDARD_KERNEL = 11


def _fits(side: int, scales: int, kernel: int) -> bool:
    """Whether ``scales`` scales with a ``kernel``-wide window fit an image ``side`` voxels wide.

    Two conditions: the coarsest scale (``side / 2^(scales-1)``) must still hold one window, and
    MONAI's own size check (``side // (scales-1)^2 > kernel - 1``) must pass.
    """
    return side // max(1, scales - 1) ** 2 > kernel - 1 and side // 2 ** (scales - 1) >= kernel


def ms_ssim_metric(spatial_shape: Sequence[int]) -> MultiScaleSSIMMetric:
    """MONAI's MS-SSIM, sized for images of ``spatial_shape``, for data in [-1, 1].

    The standard setting (5 scales, 11-wide windows) needs about 176 voxels a side; our volumes
    are 16-32. The rule for smaller images: as many scales as fit (up to 5) with a window of at
    least 3, then the widest odd window up to 7 that fits at that many scales (16 -> 3 scales of
    3; 32 -> 4 scales of 3; 64 -> 5 scales of 3; 128 -> 5 scales of 7). Structure at several scales
    matters more for telling apart images than a wide window at one. The Gaussian's sigma keeps
    the window about +-2 sigma wide (``kernel / 4``), so a 3-window still averages its
    neighbours instead of reducing to one voxel. The scale weights are the standard ones, first
    ``scales`` of them, renormalised to sum to 1 (as pytorch-msssim and TensorFlow do).
    ``data_range`` is 2: the images span [-1, 1].
    """
    side = int(min(spatial_shape))
    spatial_dims = len(spatial_shape)
    if spatial_dims not in (2, 3):
        raise SynthscapeError(f"MS-SSIM needs 2 or 3 spatial axes, got shape {list(spatial_shape)}")
    if _fits(side, len(STANDARD_WEIGHTS), STANDARD_KERNEL):
        return MultiScaleSSIMMetric(spatial_dims, data_range=2.0, reduction="none")
    for scales in range(len(STANDARD_WEIGHTS), 0, -1):
        kernel = next((k for k in (7, 5, 3) if _fits(side, scales, k)), None)
        if kernel is not None:
            weights = np.asarray(STANDARD_WEIGHTS[:scales]) / sum(STANDARD_WEIGHTS[:scales])
            return MultiScaleSSIMMetric(
                spatial_dims, data_range=2.0, kernel_size=kernel, kernel_sigma=kernel / 4,
                weights=tuple(float(w) for w in weights), reduction="none")
    raise SynthscapeError(f"MS-SSIM needs images at least 3 voxels a side, got spatial shape {list(spatial_shape)}")


def _pairs(count: int, pairs: int | None, seed: int) -> np.ndarray:
    """Index pairs ``[P, 2]`` of different samples: all of them, or ``pairs`` drawn at random."""
    first, second = np.triu_indices(count, k=1)
    everything = np.stack([first, second], axis=1)
    if pairs is None or pairs >= len(everything):
        return everything
    if pairs < 1:
        raise SynthscapeError(f"pairs must be a positive number or None (all pairs), got {pairs}")
    chosen = np.random.default_rng(seed).choice(len(everything), pairs, replace=False)
    return everything[np.sort(chosen)]


def pairwise_ms_ssim(images: np.ndarray, pairs: int | None = None, seed: int = 0, batch: int = 64) -> float:
    """Mean MS-SSIM over pairs of different samples of a set (1 = all the same image).

    ``pairs=None`` takes every pair; a number draws that many distinct pairs (seeded), which
    bounds the cost on large sets: the mean of a few hundred pairs is already stable to about
    0.01. Pairs are scored ``batch`` at a time.
    """
    array = as_image_set(images, "images", min_count=2)
    metric = ms_ssim_metric(array.shape[2:])
    index = _pairs(len(array), pairs, seed)
    tensor = torch.from_numpy(array)
    scores = []
    with torch.no_grad():
        for start in range(0, len(index), batch):
            chunk = torch.from_numpy(index[start:start + batch])
            scores.append(metric(y_pred=tensor[chunk[:, 0]], y=tensor[chunk[:, 1]]).reshape(-1))
    return float(torch.cat(scores).double().mean())


def condition_key(row: Sequence[int]) -> str:
    """A condition row as a stable string key, e.g. ``[1, 0, 2] -> "1,0,2"``."""
    return ",".join(str(int(v)) for v in row)


def within_condition_diversity(
    images: np.ndarray, conditions: np.ndarray, min_group: int = 2, pairs_per_group: int | None = 200, seed: int = 0
) -> dict:
    """``1 - mean pairwise MS-SSIM`` within each condition, and their weighted mean.

    Samples are grouped by their full condition row, because diversity across labels is no
    evidence of diversity within one: a generator that draws one image per label looks diverse
    over the whole set. Groups smaller than ``min_group`` are left out (one sample has no pair).
    The overall value weights each group by its number of samples, so it describes the data as
    drawn. Returns ``{"diversity": float, "groups": {condition_key(row): float}}``.
    """
    array = as_image_set(images, "images")
    rows = np.asarray(conditions)
    if rows.ndim != 2 or len(rows) != len(array):
        raise SynthscapeError(f"conditions must be [N, A] with N = {len(array)} images, got shape {list(rows.shape)}")
    if min_group < 2:
        raise SynthscapeError(f"min_group must be at least 2 (a pair), got {min_group}")
    unique, inverse, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    groups, weights = {}, []
    for g, (row, size) in enumerate(zip(unique, counts)):
        if size < min_group:
            continue
        members = array[inverse == g]
        groups[condition_key(row)] = 1.0 - pairwise_ms_ssim(members, pairs_per_group, seed + g)
        weights.append(size)
    if not groups:
        raise SynthscapeError(
            f"no condition has {min_group} or more samples to compare (largest group: {int(counts.max())}); draw more per condition")
    return {"diversity": float(np.average(list(groups.values()), weights=weights)), "groups": groups}
