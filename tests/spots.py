"""A tiny layout data set for the layout tests: a dark box (class 1) holding a bright sphere (class 2)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from synthscape.core.schema.conditions import ConditionSchema
from synthscape.core.schema.labelmap import LabelMapSchema

SCHEMA = ConditionSchema({"spot": ["small", "big"]})
LABELS = LabelMapSchema(("background", "box", "spot"))


class Spots(Dataset):
    """``(image, condition, label map)`` items of ``size``^3: the box 1/8 of the side in from the edges,
    the sphere at a random place inside it, big or small as its condition says. A generator must
    learn to paint class 2 bright wherever the label map puts it."""

    def __init__(self, count: int, seed: int, size: int = 24):
        rng = np.random.default_rng(seed)
        grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"))
        margin, radii = max(2, size // 8), ((6, 16) if size >= 24 else (4, 9))
        self.items = []
        for _ in range(count):
            big = rng.random() < 0.5
            labels = np.zeros((size,) * 3, dtype=np.int64)
            labels[margin:-margin, margin:-margin, margin:-margin] = 1
            centre = rng.integers(margin + 3, size - margin - 3, 3)
            labels[((grid - centre[:, None, None, None]) ** 2).sum(0) <= radii[int(big)]] = 2
            image = np.select([labels == 2, labels == 1], [0.7, -0.6], -1.0) + rng.normal(0, 0.05, labels.shape)
            self.items.append((torch.tensor(image[None], dtype=torch.float32).clamp(-1, 1),
                               torch.tensor([int(big)]), torch.from_numpy(labels)))
        self.conditions = np.array([[int(item[1])] for item in self.items])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]
