"""A tiny labelled data set where the label decides where a bright blob sits.

Label ``position`` k puts the blob in the k-th corner region (2D: 4 quadrants; 3D: 4 of the 8
octants); a simple rule (which region holds the most brightness) recovers the label.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import Dataset

from synthscape.core.schema.conditions import ConditionSchema

SCHEMA = ConditionSchema({"position": ["a", "b", "c", "d"], "tint": ["dim", "bright"]})


def corners(spatial_dims: int) -> list[tuple[int, ...]]:
    """Region of each label as a tuple of 0/1 halves per axis."""
    return list(itertools.product((0, 1), repeat=spatial_dims))[: 4] if spatial_dims == 2 else [
        (0, 0, 0), (1, 1, 0), (0, 1, 1), (1, 0, 1)]


class Blobs(Dataset):
    def __init__(self, spatial_dims: int = 2, size: int = 16, count: int = 256, channels: int = 1, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.conditions = np.stack([rng.integers(0, 4, count), rng.integers(0, 2, count)], axis=1)
        grid = np.stack(np.meshgrid(*[np.arange(size)] * spatial_dims, indexing="ij"))
        images = []
        for position, tint in self.conditions:
            half = corners(spatial_dims)[position]
            centre = np.array([(h + 0.5) * size / 2 for h in half]) + rng.uniform(-1.5, 1.5, spatial_dims)
            radius2 = ((grid - centre.reshape(-1, *[1] * spatial_dims)) ** 2).sum(0)
            blob = np.exp(-radius2 / (2 * (size / 10) ** 2))
            peak = 0.6 if tint == 0 else 1.0
            image = -1 + (1 + peak) * blob + rng.normal(0, 0.03, blob.shape)
            images.append(np.repeat(image[None], channels, 0))
        self.images = np.clip(np.stack(images), -1, 1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return torch.from_numpy(self.images[index]), torch.from_numpy(self.conditions[index])


def recover_position(images: np.ndarray) -> np.ndarray:
    """The label a simple rule reads off: the corner region with the most brightness."""
    spatial_dims = images.ndim - 2
    size = images.shape[2]
    half = size // 2
    bright = images.mean(1) + 1
    scores = []
    for corner in corners(spatial_dims):
        region = tuple(slice(h * half, (h + 1) * half) for h in corner)
        scores.append(bright[(slice(None), *region)].reshape(len(images), -1).sum(1))
    return np.argmax(np.stack(scores, 1), 1)
