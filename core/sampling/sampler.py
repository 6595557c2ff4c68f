"""Sampling that any backend shares: per-sample latents and conditions from (seed, index).

Sample ``i`` of seed ``s`` draws its latent and its missing condition attributes from its own
random stream, ``numpy.random.default_rng([s, i])``. So its inputs are the same drawn alone or in a
batch of 64, on torch or on onnxruntime, in one process or sharded over many: (artifact, seed,
index) decide them alone. Its image is bit for bit the same wherever the network sees the same
batch (a rerun, a shard: ``orders.py`` keeps the batches); at another batch size a batched
convolution may round differently in the last float bit (a few voxels 1 HU apart). numpy only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.progress import progress as show_progress
from synthscape.core.schema.conditions import ConditionPrior, ConditionSchema


@dataclass
class Samples:
    """Generated images with the condition each was asked for.

    ``images`` is float32 ``[N, C, *spatial]`` in the generator's output range [-1, 1];
    ``indices`` are the sample indices (``start`` .. ``start + N - 1``) under ``seed``.
    """

    images: np.ndarray
    conditions: list[dict[str, str]]
    seed: int
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def sample_stream(seed: int, index: int) -> np.random.Generator:
    """The random stream of one sample; nothing else draws from it."""
    if seed < 0 or index < 0:
        raise SynthscapeError(f"seed and sample index must be non-negative, got seed={seed} index={index}")
    return np.random.default_rng([int(seed), int(index)])


def plan(
    schema: ConditionSchema,
    prior: ConditionPrior,
    latent_dim: int,
    count: int,
    condition: Mapping[str, str] | None = None,
    seed: int = 0,
    start: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Latents float32 ``[N, Z]``, condition indices int64 ``[N, A]`` and condition dicts."""
    if count < 0:
        raise SynthscapeError(f"count must be non-negative, got {count}")
    requested = schema.validate(condition or {})
    latents = np.empty((count, latent_dim), dtype=np.float32)
    conditions = []
    for row in range(count):
        rng = sample_stream(seed, start + row)
        latents[row] = rng.standard_normal(latent_dim, dtype=np.float32)
        conditions.append(prior.complete(requested, rng))
    encoded = schema.encode(conditions) if count else np.zeros((0, len(schema)), dtype=np.int64)
    return latents, encoded, conditions


class Sampler(ABC):
    """``.sample(count, condition=..., seed=...)`` for any backend that maps (z, condition) -> image."""

    schema: ConditionSchema
    prior: ConditionPrior
    latent_dim: int
    domain: str
    domain_meta: dict

    @abstractmethod
    def generate(self, latents: np.ndarray, condition: np.ndarray) -> np.ndarray:
        """Run the network on one batch: float32 ``[B, Z]`` + int64 ``[B, A]`` -> float32 images."""

    def sample(
        self,
        count: int,
        condition: Mapping[str, str] | None = None,
        seed: int = 0,
        start: int = 0,
        batch_size: int = 16,
        progress: bool = False,
    ) -> Samples:
        """Draw samples ``start .. start + count - 1`` of ``seed``, all asked for ``condition``.

        Attributes left out of ``condition`` are drawn per sample from the training data's
        frequencies; the returned ``conditions`` say what each sample was given.
        """
        if batch_size < 1:
            raise SynthscapeError(f"batch_size must be at least 1, got {batch_size}")
        latents, encoded, conditions = plan(self.schema, self.prior, self.latent_dim, count, condition, seed, start)
        batches = show_progress(range(0, count, batch_size), desc="sampling", unit="batch", enabled=progress)
        images = [self.generate(latents[i : i + batch_size], encoded[i : i + batch_size]) for i in batches]
        stacked = np.concatenate(images) if images else np.zeros((0,), dtype=np.float32)
        return Samples(stacked, conditions, seed, np.arange(start, start + count))
