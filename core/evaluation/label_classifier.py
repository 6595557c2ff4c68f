"""A classifier that synthscape trains on the real data itself, one head per condition attribute.

Evaluation needs a network that knows what the data looks like, and nothing may be downloaded
(no ImageNet Inception for CT volumes or drone scenes). So the same small trunk that the critic
uses is trained here on the real training set to read every condition attribute back. It then
serves three purposes: label fidelity (does a sample show the condition it was asked for), the
feature space of the Frechet distance, and the downstream model of the utility metrics.

Training runs on CPU and is deterministic for a seed: the report must give the same numbers on a
rerun. Augmentation is small additive Gaussian noise only; a flip or a rotation can change a label
(a nodule in the left lung, a cyclist on the right of the road), so none is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.networks.layers.factories import Pool
from monai.networks.utils import pixelunshuffle
from torch import nn
from torch.nn import functional as F

from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.blocks import DownTrunk
from synthscape.core.schema.conditions import ConditionSchema

# Narrow on purpose: a 32^3 volume or a 64x64 image must train for a few hundred steps in tens of
# seconds on 2 CPU cores. Measured there, one training step of batch 32: 3D 32^3, widths 4-8-16-32
# at full resolution 2.1 s; widths 8-16-32 after the space-to-depth fold 0.33 s, channels-last
# 0.17 s (0.16 -> 0.09 s on one thread). 2D 64x64x3, 16-32-64 folded: 0.04 s, and channels-last
# made 2D three times slower, so it is used for 3D only.
DEFAULT_WIDTHS = {2: (16, 32, 64), 3: (8, 16, 32)}
MEMORY_FORMAT = {2: torch.contiguous_format, 3: torch.channels_last_3d}
NOISE_STD = 0.05  # the augmentation: small enough to change no label of a [-1, 1] image
LEARNING_RATE = 2e-3


def _coordinates(x: torch.Tensor) -> torch.Tensor:
    """One channel per spatial axis holding that axis's position in [-1, 1], batch-expanded."""
    axes = [torch.linspace(-1.0, 1.0, n, dtype=x.dtype, device=x.device) for n in x.shape[2:]]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return grid.expand(x.shape[0], *grid.shape)


class LabelClassifier(nn.Module):
    """Image ``[B, C, *spatial]`` -> one logit vector per condition attribute.

    The image is first folded space-to-depth (every 2^d block of pixels becomes 2^d channels):
    nothing is lost, a 2-voxel nodule is still all there, but no convolution runs at full
    resolution, where nearly all the cost of a 3D network goes. Coordinate channels join it
    (CoordConv) because the global pool below forgets *where* something is, and some labels are a
    place: which lung holds the nodule, which side of the road the cyclist is on. ``DownTrunk``
    (GroupNorm) and a global average pool give the feature vector ``[B, F]`` (F is the last
    width), one size whatever the image size; one linear head per attribute reads it.
    Spatial sizes must be even.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        cardinalities: Sequence[int],
        widths: Sequence[int] | None = None,
        groups: int = 4,
    ):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise SynthscapeError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if len(cardinalities) == 0 or min(cardinalities) < 1:
            raise SynthscapeError(f"cardinalities must be a non-empty list of counts >= 1, got {list(cardinalities)}")
        self.spatial_dims = spatial_dims
        self.in_channels = int(in_channels)
        self.cardinalities = [int(n) for n in cardinalities]
        self.widths = tuple(int(w) for w in (widths or DEFAULT_WIDTHS[spatial_dims]))
        folded = self.in_channels * 2 ** spatial_dims
        self.trunk = DownTrunk(spatial_dims, folded + spatial_dims, self.widths, groups)
        self.pool = nn.Sequential(Pool[Pool.ADAPTIVEAVG, spatial_dims](1), nn.Flatten(1))
        self.heads = nn.ModuleList(nn.Linear(self.widths[-1], n) for n in self.cardinalities)
        self.memory_format = MEMORY_FORMAT[spatial_dims]
        self.to(memory_format=self.memory_format)

    def min_size(self) -> int:
        """The smallest spatial size the network takes: one fold and a pool per width step."""
        return 2 ** len(self.widths)

    @property
    def feature_dim(self) -> int:
        """F, the width of ``features``: the last trunk width."""
        return self.widths[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled trunk output ``[B, F]``: the space the Frechet distance is measured in."""
        x = pixelunshuffle(x, self.spatial_dims, 2)
        x = torch.cat([x, _coordinates(x)], dim=1).contiguous(memory_format=self.memory_format)
        return self.pool(self.trunk(x))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One logit tensor ``[B, cardinality]`` per attribute, in schema order."""
        features = self.features(x)
        return [head(features) for head in self.heads]


def check_images(images: np.ndarray, spatial_dims: int, channels: int | None = None,
                 spatial_shape: Sequence[int] | None = None, what: str = "images") -> np.ndarray:
    """Refuse anything but a finite float array ``[N, C, *spatial]``; returns it as float32."""
    axes = "[N, C, H, W]" if spatial_dims == 2 else "[N, C, D, H, W]"
    if not isinstance(images, np.ndarray) or images.ndim != 2 + spatial_dims:
        shape = list(np.shape(images)) if hasattr(images, "shape") else type(images).__name__
        raise SynthscapeError(f"{what} must be a {spatial_dims}D image array {axes}, got shape {shape}")
    if channels is not None and images.shape[1] != channels:
        raise SynthscapeError(f"{what} must have {channels} channel(s) {axes}, got shape {list(images.shape)}")
    if spatial_shape is not None and tuple(images.shape[2:]) != tuple(spatial_shape):
        raise SynthscapeError(f"{what} must be of size {list(spatial_shape)}, got {list(images.shape[2:])}")
    if not np.issubdtype(images.dtype, np.floating):
        raise SynthscapeError(f"{what} must be floating point in [-1, 1], got dtype {images.dtype}")
    if images.size and not np.isfinite(images).all():
        raise SynthscapeError(f"{what} contain NaN or Inf")
    return images.astype(np.float32, copy=False)


def check_conditions(conditions: np.ndarray, cardinalities: Sequence[int], count: int,
                     what: str = "conditions") -> np.ndarray:
    """Refuse condition indices that are not int ``[count, A]`` within each attribute's range."""
    conditions = np.asarray(conditions)
    if not np.issubdtype(conditions.dtype, np.integer):
        raise SynthscapeError(f"{what} must be integer value indices, got dtype {conditions.dtype}")
    schema = ConditionSchema([(f"attribute_{i}", [str(v) for v in range(n)]) for i, n in enumerate(cardinalities)])
    schema.check_indices(conditions, what=what)
    if len(conditions) != count:
        raise SynthscapeError(f"{what} has {len(conditions)} rows for {count} images")
    return conditions.astype(np.int64, copy=False)


@dataclass
class TrainedClassifier:
    """A trained ``LabelClassifier`` behind a numpy interface: batched, no grad, eval mode."""

    model: LabelClassifier
    image_shape: tuple[int, ...]  # (C, *spatial) of the training images
    batch_size: int = 64

    @property
    def cardinalities(self) -> list[int]:
        """Values per attribute that the heads read, in schema order."""
        return self.model.cardinalities

    def _map(self, images: np.ndarray, fn: Callable[[torch.Tensor], torch.Tensor], width: int) -> np.ndarray:
        """``fn`` over ``images`` in batches, without grad; ``[0, width]`` for no images."""
        images = check_images(images, self.model.spatial_dims, self.image_shape[0], self.image_shape[1:])
        self.model.eval()
        with torch.no_grad():
            parts = [fn(torch.from_numpy(np.ascontiguousarray(images[i:i + self.batch_size])))
                     for i in range(0, len(images), self.batch_size)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, width))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The most likely value of every attribute: int64 ``[N, A]``."""
        def argmax(x: torch.Tensor) -> torch.Tensor:
            return torch.stack([logits.argmax(1) for logits in self.model(x)], 1)
        return self._map(images, argmax, len(self.cardinalities)).astype(np.int64)

    def features(self, images: np.ndarray) -> np.ndarray:
        """Pooled trunk features: float32 ``[N, F]``."""
        return self._map(images, self.model.features, self.model.feature_dim).astype(np.float32)

    def accuracy(self, images: np.ndarray, conditions: np.ndarray) -> list[float]:
        """Per attribute, the share of items whose value is read back as labelled."""
        conditions = check_conditions(conditions, self.cardinalities, len(images))
        if len(conditions) == 0:
            raise SynthscapeError("cannot measure accuracy on an empty set of images")
        return [float(v) for v in (self.predict(images) == conditions).mean(0)]


def train_label_classifier(
    images: np.ndarray,
    conditions: np.ndarray,
    cardinalities: Sequence[int],
    spatial_dims: int,
    steps: int = 300,
    batch_size: int = 32,
    seed: int = 0,
    widths: Sequence[int] | None = None,
    augment: bool = True,
) -> TrainedClassifier:
    """Train a ``LabelClassifier`` on labelled images (cross-entropy summed over heads, Adam).

    Deterministic for a seed: weights, batches and noise come from their own seeded generators,
    and the global torch RNG is left as it was.
    """
    images = check_images(images, spatial_dims)
    conditions = check_conditions(conditions, cardinalities, len(images))
    if len(images) == 0:
        raise SynthscapeError("cannot train a label classifier on an empty set of images")
    if steps < 1 or batch_size < 1:
        raise SynthscapeError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LabelClassifier(spatial_dims, images.shape[1], cardinalities, widths)
    size = list(images.shape[2:])
    if any(n % 2 or n < model.min_size() for n in size):
        raise SynthscapeError(f"images must have even spatial sizes of at least {model.min_size()} "
                              f"for widths {list(model.widths)}, got {size}")
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    order = np.random.default_rng(seed)
    noise = torch.Generator().manual_seed(seed + 1)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(conditions)
    model.train()
    for _ in range(steps):
        index = torch.from_numpy(order.choice(len(images), min(batch_size, len(images)), replace=False))
        x, y = x_all[index], y_all[index]
        if augment:
            x = x + NOISE_STD * torch.randn(x.shape, generator=noise)
        loss = sum(F.cross_entropy(logits, y[:, a]) for a, logits in enumerate(model(x)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    return TrainedClassifier(model, tuple(images.shape[1:]))
