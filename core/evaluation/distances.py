"""Fidelity: how far a generated set lies from a real one, as whole sets (no pairing of samples).

Three views, each blind where the others see:

- ``frechet_distance``: Gaussians fitted to feature vectors (a classifier's features in the
  report), compared by the Frechet distance -- the FID formula, with features trained on our
  own data instead of a downloaded Inception.
- ``mmd``: MONAI's unbiased maximum mean discrepancy on the images themselves, per voxel.
- ``intensity_histogram_distance``: the Wasserstein-1 distance between intensity histograms
  (HU for CT, colour for driving), in [-1, 1] units, so "the lungs are too dark" shows up even
  when the shapes are right.

``as_image_set`` is the one input check the evaluation modules share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import MMDMetric

from synthscape.core.errors import SynthscapeError


def as_image_set(images: np.ndarray, name: str = "images", min_count: int = 1) -> np.ndarray:
    """``images`` as float32 ``[N, C, *spatial]`` with 2 or 3 spatial axes, or a one-line error."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim not in (4, 5):
        raise SynthscapeError(f"{name} must be [N, C, H, W] or [N, C, X, Y, Z], got shape {list(array.shape)}")
    if len(array) < min_count:
        raise SynthscapeError(f"{name} needs at least {min_count} samples, got {len(array)}")
    if not np.isfinite(array).all():
        raise SynthscapeError(f"{name} holds NaN or Inf values")
    return array


def _same_sample_shape(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1:] != b.shape[1:]:
        raise SynthscapeError(f"{names} must have the same sample shape, got {list(a.shape[1:])} and {list(b.shape[1:])}")


# -- Frechet distance ----------------------------------------------------------------------


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clamped at 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to ``[N, F]`` and ``[M, F]`` feature sets.

    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, as in MONAI's ``FIDMetric``. MONAI
    takes the matrix root with ``scipy.linalg.sqrtm``, which this install does without, so the
    trace term is computed here in the equivalent symmetric form ``tr((A^(1/2) B A^(1/2))^(1/2))``:
    ``A^(1/2) B A^(1/2)`` is similar to ``A B`` (same eigenvalues) but symmetric PSD, so
    ``torch.linalg.eigh`` gives its root exactly, with no imaginary round-off to discard.
    Float64 throughout. 0 for identical sets; ``|shift|^2`` for a set moved by a constant vector.
    """
    a = torch.as_tensor(np.asarray(features_a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(features_b), dtype=torch.float64)
    for name, x in (("features_a", a), ("features_b", b)):
        if x.ndim != 2 or len(x) < 2:
            raise SynthscapeError(f"{name} must be [N >= 2, F] feature vectors, got shape {list(x.shape)}")
        if not torch.isfinite(x).all():
            raise SynthscapeError(f"{name} holds NaN or Inf values")
    if a.shape[1] != b.shape[1]:
        raise SynthscapeError(f"feature sets must have the same width, got {a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_root
    return max(float(distance), 0.0)


# -- MMD -------------------------------------------------------------------------------------


def _moments_map(max_side: int):
    """The feature map MMD compares: each voxel and its square, on a grid of at most ``max_side``.

    MONAI's MMD uses a linear kernel, which on raw voxels only compares the two mean images; a
    collapsed generator with the right mean image would pass. Adding the squared voxels makes it
    compare per-voxel second moments too (so spread per voxel counts). Images larger than
    ``max_side`` are average-pooled first: it bounds the Gram matrices' cost, and fidelity at that
    scale is what the other measures do not see.
    """

    def mapping(x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[2:]
        if max(spatial) > max_side:
            pool = getattr(F, f"adaptive_avg_pool{len(spatial)}d")
            x = pool(x, [min(s, max_side) for s in spatial])
        return torch.cat([x, x.square()], dim=1)

    return mapping


def mmd(images_a: np.ndarray, images_b: np.ndarray, max_side: int = 32, seed: int = 0) -> float:
    """Unbiased maximum mean discrepancy between two image sets, per voxel feature.

    ``monai.metrics.MMDMetric`` takes two batches of the same shape, but it does not pair them:
    it compares every sample with every other through Gram matrices (Gretton et al. 2012, eq. 3),
    so two unpaired sets are exactly what it measures. Sets of different sizes are brought to the
    smaller size by a seeded random subset of the larger. The kernel is linear on the features of
    ``_moments_map`` (voxels and their squares); the result is divided by the number of those
    features, so it does not grow with image size. Being unbiased it may fall slightly below 0
    when the sets come from one distribution; it is not clipped, so real-vs-real references are
    comparable.
    """
    a = as_image_set(images_a, "images_a", min_count=2)
    b = as_image_set(images_b, "images_b", min_count=2)
    _same_sample_shape(a, b, "images_a and images_b")
    count = min(len(a), len(b))
    rng = np.random.default_rng(seed)
    a, b = (x if len(x) == count else x[np.sort(rng.choice(len(x), count, replace=False))] for x in (a, b))
    mapping = _moments_map(max_side)
    y, y_pred = torch.from_numpy(a).double(), torch.from_numpy(b).double()
    width = mapping(y[:1]).numel()
    return float(MMDMetric(y_mapping=mapping)(y, y_pred)) / width


# -- intensity histograms --------------------------------------------------------------------


def histograms(
    images: np.ndarray, bins: int = 64, value_range: Sequence[float] = (-1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges ``[bins + 1]`` and counts per channel ``[C, bins]`` (int64), for a report to plot.

    Values outside ``value_range`` are clipped into the end bins rather than dropped, so every
    voxel is counted and a generator that saturates shows a spike at the edge.
    """
    array = as_image_set(images)
    low, high = float(value_range[0]), float(value_range[1])
    if not high > low or bins < 1:
        raise SynthscapeError(f"histograms need bins >= 1 and value_range low < high, got bins={bins} range={list(value_range)}")
    edges = np.linspace(low, high, bins + 1)
    channels = np.moveaxis(np.clip(array, low, high), 1, 0).reshape(array.shape[1], -1)
    counts = np.stack([np.histogram(c, bins=edges)[0] for c in channels]).astype(np.int64)
    return edges, counts


def intensity_histogram_distance(
    images_a: np.ndarray, images_b: np.ndarray, bins: int = 64, value_range: Sequence[float] = (-1.0, 1.0)
) -> float:
    """Wasserstein-1 distance between intensity histograms, averaged over channels.

    W1 of two 1-D distributions is the area between their cumulative distributions,
    ``sum |CDF_a - CDF_b| * bin_width``: the mean distance intensity must move to turn one
    histogram into the other, in the units of ``value_range`` ([-1, 1] here; a whole set made
    brighter by 0.1 is 0.1 away). Unlike a bin-by-bin distance it grows steadily with a shift
    instead of saturating once the histograms stop overlapping. Colour images are compared channel
    by channel (R with R ...), then averaged.
    """
    a, b = as_image_set(images_a, "images_a"), as_image_set(images_b, "images_b")
    if a.shape[1] != b.shape[1]:
        raise SynthscapeError(f"images_a and images_b must have the same channels, got {a.shape[1]} and {b.shape[1]}")
    edges, counts_a = histograms(a, bins, value_range)
    _, counts_b = histograms(b, bins, value_range)
    cdf_a = np.cumsum(counts_a, axis=1) / counts_a.sum(axis=1, keepdims=True)
    cdf_b = np.cumsum(counts_b, axis=1) / counts_b.sum(axis=1, keepdims=True)
    per_channel = (np.abs(cdf_a - cdf_b) * np.diff(edges)).sum(axis=1)
    return float(per_channel.mean())
