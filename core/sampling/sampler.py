"""Sampling that any backend shares: per-sample latents and conditions from (seed, index).

Sample ``i`` of seed ``s`` draws its latent and its missing condition attributes from its own
random stream, ``numpy.random.default_rng([s, i])``. So its inputs are the same drawn alone or in a
batch of 64, on torch or on onnxruntime, in one process or sharded over many: (artifact, seed,
index) decide them alone. A layout model's sample also takes a label map, from a ``LayoutSource``
(the domain's simulator draws it from the sample's condition with ``layout_stream(seed, i)``, or
a folder gives it), and a noise map of the label map's size from a stream of its own
(``noise_map``). Its image is bit for bit the same wherever the network sees the same
batch (a rerun, a shard: ``orders.py`` keeps the batches); at another batch size a batched
convolution may round differently in the last float bit (a few voxels 1 HU apart). numpy only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.progress import progress as show_progress
from synthscape.core.schema.conditions import ConditionPrior, ConditionSchema
from synthscape.core.schema.labelmap import LabelMapSchema, Layout

# A layout model's label maps: (complete condition, seed, sample index) -> label map [*spatial] or Layout
LayoutSource = Callable[[dict[str, str], int, int], "np.ndarray | Layout"]


@dataclass
class Samples:
    """Generated images with the condition each was asked for.

    ``images`` is float32 ``[N, C, *spatial]`` in the generator's output range [-1, 1];
    ``indices`` are the sample indices (``start`` .. ``start + N - 1``) under ``seed``;
    ``layouts`` (layout models) the uint8 label map ``[N, *spatial]`` each was rendered from, and
    ``instances`` their int32 instance maps where the layout source gave them (``Layout``).
    """

    images: np.ndarray
    conditions: list[dict[str, str]]
    seed: int
    indices: np.ndarray
    layouts: np.ndarray | None = None
    instances: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)


def sample_stream(seed: int, index: int) -> np.random.Generator:
    """The random stream of one sample; nothing else draws from it."""
    if seed < 0 or index < 0:
        raise SynthscapeError(f"seed and sample index must be non-negative, got seed={seed} index={index}")
    return np.random.default_rng([int(seed), int(index)])


def layout_stream(seed: int, index: int) -> np.random.Generator:
    """The stream a domain's simulator draws sample ``index``'s label map from (apart from its latent's)."""
    return np.random.default_rng([int(seed), int(index), 2])


def noise_map(seed: int, index: int, size: tuple[int, ...]) -> np.ndarray:
    """Sample ``index``'s noise map float32 ``[1, *size]``, from its own stream: the same at any batch size."""
    return np.random.default_rng([int(seed), int(index), 1]).standard_normal((1, *size), dtype=np.float32)


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
    label_map: LabelMapSchema | None = None  # layout models: the classes of the label map they take

    @abstractmethod
    def generate(self, latents: np.ndarray, condition: np.ndarray, layout: np.ndarray | None = None,
                 noise: np.ndarray | None = None) -> np.ndarray:
        """Run the network on one batch: float32 ``[B, Z]`` + int64 ``[B, A]`` (+ a layout model's int64
        label maps ``[B, *S]`` and float32 noise ``[B, 1, *S]``) -> float32 images."""

    def sample(
        self,
        count: int,
        condition: Mapping[str, str] | None = None,
        seed: int = 0,
        start: int = 0,
        batch_size: int = 16,
        progress: bool = False,
        layouts: LayoutSource | None = None,
    ) -> Samples:
        """Draw samples ``start .. start + count - 1`` of ``seed``, all asked for ``condition``.

        Attributes left out of ``condition`` are drawn per sample from the training data's
        frequencies; the returned ``conditions`` say what each sample was given. A layout model
        renders the label map ``layouts`` gives for each sample's complete condition (all of one size).
        """
        if batch_size < 1:
            raise SynthscapeError(f"batch_size must be at least 1, got {batch_size}")
        latents, encoded, conditions = plan(self.schema, self.prior, self.latent_dim, count, condition, seed, start)
        maps, instances = self.label_maps(conditions, seed, start, layouts)
        batches = show_progress(range(0, count, batch_size), desc="sampling", unit="batch", enabled=progress)
        images = []
        for i in batches:
            part = slice(i, i + batch_size)
            if maps is None:
                images.append(self.generate(latents[part], encoded[part]))
                continue
            noise = np.stack([noise_map(seed, start + r, maps.shape[1:]) for r in range(i, min(i + batch_size, count))])
            images.append(self.generate(latents[part], encoded[part], maps[part].astype(np.int64), noise))
        stacked = np.concatenate(images) if images else np.zeros((0,), dtype=np.float32)
        return Samples(stacked, conditions, seed, np.arange(start, start + count), maps, instances)

    def label_maps(self, conditions: list[dict[str, str]], seed: int, start: int,
                   layouts: LayoutSource | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The uint8 label maps ``[N, *S]`` of samples ``start ..`` (None for a class-only model), and
        their int32 instance maps where the source gave every one (else None)."""
        if self.label_map is None:
            if layouts is not None:
                raise SynthscapeError("this generator renders no label maps: layouts (--layouts, --size) are for models "
                                      "trained with --layout")
            return None, None
        if layouts is None:
            raise SynthscapeError("this is a layout model: it renders label maps, and none were given (the domain's "
                                  "simulator draws them, or --layouts DIR)")
        drawn = [layouts(c, seed, start + r) for r, c in enumerate(conditions)]
        drawn = [d if isinstance(d, Layout) else Layout(d) for d in drawn]
        maps = [self.label_map.check(d.labels, f"the label map of sample {start + r}") for r, d in enumerate(drawn)]
        if len({m.shape for m in maps}) > 1:
            raise SynthscapeError(f"the label maps of one batch must share one size, got {sorted({m.shape for m in maps})}")
        if not maps:
            return None, None
        if any(d.instances is None for d in drawn):
            return np.stack(maps), None
        for r, (m, d) in enumerate(zip(maps, drawn)):
            if np.shape(d.instances) != m.shape:
                raise SynthscapeError(f"the instance map of sample {start + r} is {list(np.shape(d.instances))}, its label "
                                      f"map {list(m.shape)}: they must be the same size")
        return np.stack(maps), np.stack([np.asarray(d.instances, dtype=np.int32) for d in drawn])
