"""Feeding a training run: a data order that a resume can pick up mid-epoch, and label counts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.conditions import ConditionSchema


class ResumableSampler(Sampler[int]):
    """An endless stream of indices, one fresh permutation per epoch, that can start anywhere.

    Epoch ``e`` is ``randperm(n)`` under seed ``(seed, e)``, so position ``k`` of the stream is
    fixed by (seed, k) alone: a run resumed at step ``t`` starts at ``k = t * batch_size`` and
    sees exactly the batches an uninterrupted run would have seen.

    Under torchrun the ranks split that one stream as ``DistributedSampler`` splits an epoch,
    position ``k`` going to rank ``k % world``: ``start`` counts positions of the whole stream
    (``step * batch_size * world``), and the ranks' batches together are the batch of ``world``
    times the size that one process would have drawn.
    """

    def __init__(self, size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        if size < 1:
            raise SynthscapeError("the training data set is empty")
        if not 0 <= rank < world:
            raise SynthscapeError(f"rank must be within the world size, got rank {rank} of {world}")
        self.size, self.seed, self.start, self.rank, self.world = size, seed, start, rank, world

    def permutation(self, epoch: int) -> torch.Tensor:
        """Epoch ``epoch``'s order of the ``size`` indices, from (seed, epoch) alone, so a resume can
        recompute any epoch without replaying the ones before it."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=generator)

    def stream(self) -> Iterator[int]:
        """The whole stream from ``start``, every rank's positions included."""
        epoch, offset = divmod(self.start, self.size)
        while True:
            yield from self.permutation(epoch)[offset:].tolist()
            epoch, offset = epoch + 1, 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(self.stream(), self.rank, None, self.world)


def dataset_conditions(dataset: Dataset, schema: ConditionSchema) -> np.ndarray:
    """Condition indices ``[N, A]`` of every item: ``dataset.conditions`` when the data set has it
    (no image is loaded), otherwise read item by item."""
    conditions = getattr(dataset, "conditions", None)
    if conditions is None:
        conditions = [np.asarray(dataset[i][1]) for i in range(len(dataset))]
    indices = np.asarray(conditions, dtype=np.int64).reshape(len(dataset), -1)
    schema.check_indices(indices, what="training data conditions")
    return indices
