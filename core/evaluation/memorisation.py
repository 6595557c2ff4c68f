"""Memorisation: is the generator handing back its training data?

Distance to closest record (DCR): for each generated sample, the distance to its nearest training
sample. On its own that number means little (how close is close?), so it is set against the same
distance for real held-out samples, which the generator never saw: a generator that learned the
distribution lands about as close to the training set as fresh real data does (ratio about 1); one
that copies lands much closer (ratio well below 1, and many near-copies).
"""

from __future__ import annotations

import numpy as np
import torch

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.distances import as_image_set

EXACT_COPY = 1e-3  # RMS per voxel in [-1, 1] units: below float16 export noise, far below any real difference
NEAR_COPY_PERCENTILE = 5.0


def _flat(images: np.ndarray, name: str) -> torch.Tensor:
    array = as_image_set(images, name)
    return torch.from_numpy(np.ascontiguousarray(array.reshape(len(array), -1)))


def nearest_distances(queries: np.ndarray, references: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the RMS distance per voxel to its nearest reference, and its index.

    RMS per voxel (``|q - r| / sqrt(voxels)``) keeps the number in intensity units: 0.1 means the
    images differ by 0.1 on the [-1, 1] scale on average, whatever their size. ``torch.cdist``
    runs ``batch`` queries at a time against all references, so memory stays ``batch x refs``.
    It finds the nearest one by matrix products in float32, whose round-off (about 1e-3 here)
    would hide an exact copy; so the chosen pair's distance is then recomputed directly in float64.
    Returns float64 ``[N]`` distances and int64 ``[N]`` indices.
    """
    q, r = _flat(queries, "queries"), _flat(references, "references")
    if q.shape[1] != r.shape[1]:
        raise SynthscapeError(
            f"queries and references must have the same sample shape, got {list(np.shape(queries)[1:])} and {list(np.shape(references)[1:])}")
    if batch < 1:
        raise SynthscapeError(f"batch must be a positive number, got {batch}")
    distances, indices = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(q), batch):
            chunk = q[start:start + batch]
            nearest = torch.cdist(chunk, r).argmin(dim=1)
            distances[start:start + batch] = (chunk.double() - r[nearest].double()).square().mean(dim=1).sqrt().numpy()
            indices[start:start + batch] = nearest.numpy()
    return distances, indices


def distance_to_closest_record(
    generated: np.ndarray, train: np.ndarray, holdout: np.ndarray, closest: int = 8, batch: int = 256
) -> dict:
    """DCR of generated samples against real held-out samples, both measured to the training set.

    - ``ratio``: median generated DCR / median holdout DCR. About 1 is healthy; well below 1
      means generated samples sit closer to training samples than unseen real data does.
    - ``near_copy_share``: the share of generated samples closer to the training set than the 5th
      percentile of holdout DCRs. A real sample the generator never saw is that close only 5% of
      the time, so a share well above 0.05 is more closeness than chance gives; the threshold
      adapts to the data (how alike its samples are) with no absolute number to tune.
    - ``exact_copy_share``: the share with DCR below 1e-3, i.e. a training image handed back.
    - ``closest_pairs``: the ``closest`` generated samples nearest to the training set, as
      ``(generated index, train index, distance)``, nearest first, to show side by side.
    """
    dcr_generated, nearest = nearest_distances(generated, train, batch)
    dcr_holdout, _ = nearest_distances(holdout, train, batch)
    holdout_median = float(np.median(dcr_holdout))
    if holdout_median <= EXACT_COPY:
        raise SynthscapeError(
            f"held-out samples are copies of training samples (median distance {holdout_median:.2g}); split the data without duplicates")
    threshold = float(np.percentile(dcr_holdout, NEAR_COPY_PERCENTILE))
    order = np.argsort(dcr_generated, kind="stable")[:closest]
    return {
        "dcr_generated_median": float(np.median(dcr_generated)),
        "dcr_holdout_median": holdout_median,
        "ratio": float(np.median(dcr_generated)) / holdout_median,
        "near_copy_threshold": threshold,
        "near_copy_share": float(np.mean(dcr_generated < threshold)),
        "exact_copy_share": float(np.mean(dcr_generated < EXACT_COPY)),
        "closest_pairs": [(int(g), int(nearest[g]), float(dcr_generated[g])) for g in order],
    }
