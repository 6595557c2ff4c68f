"""What a layout run settles before its first step: the network's shape and the items its grids show."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.config import NetworkConfig, TrainConfig
from synthscape.core.schema.labelmap import LabelMapSchema

# Crop side by spatial dims: a 32^3 crop is an eighth of a 64^3 volume's step cost and holds a
# 30 mm nodule at 1.25 mm; 128^2 keeps a pedestrian whole in a 256^2 scene.
DEFAULT_CROP = {2: 128, 3: 32}


def layout_network(network: NetworkConfig | None, shape: Sequence[int], labels: LabelMapSchema,
                   crop: int | None, train: TrainConfig) -> NetworkConfig:
    """The layout generator's config for items of ``shape`` ``[C, *S]``: ``network`` if given
    (its ``layout_classes`` must match), else the defaults below at the crop size."""
    if train.private:
        raise SynthscapeError("differentially private training of layout models is not supported: the generator "
                              "renders real label maps, which DP-SGD on the critic alone does not cover")
    if network is not None:
        if network.layout_classes != len(labels):
            raise SynthscapeError(f"the network takes {network.layout_classes} label-map classes; the domain has {len(labels)}")
        return network
    dims, sizes = len(shape) - 1, tuple(int(s) for s in shape[1:])
    side = crop or DEFAULT_CROP[dims]
    if side > min(sizes):
        side = min(sizes)
    stages = 3 if side >= 16 else 2
    if dims == 3:
        gen, critic = (64, 64, 32, 16)[-stages - 1:], (16, 32, 64, 128)[: stages + 1]
    else:
        gen, critic = (128, 128, 64, 32)[-stages - 1:], (32, 64, 128, 256)[: stages + 1]
    return NetworkConfig(dims, (side,) * dims, int(shape[0]), generator_channels=gen, critic_channels=critic,
                         layout_classes=len(labels))


def grid_items(dataset: Dataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The label maps ``[n, *S]`` and conditions ``[n, A]`` of the first ``count`` items: what a
    layout run's sample grids render at every evaluation, so successive grids compare."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    return (np.stack([np.asarray(item[2]) for item in items]).astype(np.uint8),
            np.stack([np.asarray(item[1]) for item in items]).astype(np.int64))
