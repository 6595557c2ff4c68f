"""Synthetic samples as a torch ``Dataset``, to mix with real data in a user's own training loop.

``SyntheticDataset(run_or_onnx, conditions=..., length=N)`` draws item ``i`` on the fly as sample
``start + i`` of ``seed`` (``core/sampling/sampler.py``: a sample depends on (seed, index) alone). Which
condition item ``i`` is asked for comes from a third stream, ``default_rng([seed, start + i, 1])``.
So an item is the same in every epoch, in every DataLoader worker, alone or in a batch, and the
data set needs no storage: an epoch of fresh samples is a new ``seed`` (or ``start``).

Items have the format of the domains' real data sets (``domain.dataset(path)``): ``(image float32
[C, *spatial] in [-1, 1], condition int64 [A])``, so ``ConcatDataset([real, synthetic])`` works;
``.conditions`` (int64 ``[N, A]``) is known without generating an image, as for the real ones, so a
``WeightedRandomSampler`` can be built from it.

Worker safety: an onnxruntime session can be neither pickled (spawn workers) nor used after a fork
(its thread pool stays behind in the parent). The data set keeps the model's path and builds its
sampler on first use in each process; pickling drops the live sampler.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from synthscape import load  # a run folder (torch) or an .onnx file (onnxruntime)
from synthscape.core.errors import SynthscapeError
from synthscape.core.sampling.sampler import Sampler, plan
from synthscape.core.schema.conditions import ConditionSchema

# One condition dict (every item asks for it), a list of (condition dict, weight) pairs, or a
# dict {"nodule=present,size=large": weight}; None: everything as the training data has it.
Conditions = Mapping[str, str] | Sequence[tuple[Mapping[str, str], float]] | Mapping[str, float] | None
Item = tuple[torch.Tensor, torch.Tensor]
CHOICE_STREAM = 1  # third key of the per-item stream that picks its condition
_INHERITED: list[Sampler] = []  # samplers a forked process inherited; kept alive, never used


def parse_condition(text: str) -> dict[str, str]:
    """``"nodule=present,size=large"`` -> ``{"nodule": "present", "size": "large"}``; ``""`` -> ``{}``."""
    pairs = [pair for pair in (p.strip() for p in text.split(",")) if pair]
    return ConditionSchema.parse(pairs)


def weighted_conditions(conditions: Conditions, schema: ConditionSchema) -> list[tuple[dict[str, str], float]]:
    """Any accepted ``conditions`` form -> validated ``[(condition, probability)]``, probabilities summing to 1."""
    if conditions is None:
        pairs: list[tuple[Any, Any]] = [({}, 1.0)]
    elif isinstance(conditions, Mapping) and all(isinstance(v, str) for v in conditions.values()):
        pairs = [(conditions, 1.0)]  # one condition dict (an empty dict included)
    elif isinstance(conditions, Mapping):
        pairs = [(parse_condition(str(key)), weight) for key, weight in conditions.items()]
    elif isinstance(conditions, Sequence) and not isinstance(conditions, str) and conditions:
        pairs = list(conditions)
    else:
        raise SynthscapeError(
            f"conditions must be None, a condition dict, a list of (condition dict, weight) pairs or a dict "
            f"{{'attribute=value,...': weight}}, got {conditions!r}")
    checked = []
    for entry in pairs:
        if not (isinstance(entry, Sequence) and len(entry) == 2):
            raise SynthscapeError(f"each weighted condition must be a (condition dict, weight) pair, got {entry!r}")
        condition, weight = entry
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise SynthscapeError(f"weight of condition {condition!r} must be a number, got {weight!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise SynthscapeError(f"weight of condition {condition!r} must be finite and non-negative, got {weight}")
        checked.append((schema.validate(condition), weight))
    total = sum(weight for _, weight in checked)
    if total <= 0:
        raise SynthscapeError(f"condition weights must not all be zero, got {[w for _, w in checked]}")
    return [(condition, weight / total) for condition, weight in checked]


class SyntheticDataset(Dataset):
    """``(image [C, *spatial] in [-1, 1], condition int64 [A])`` drawn from a trained generator.

    ``model``: a run folder, an exported ``.onnx`` file, or a loaded ``Sampler`` (a loaded ONNX
    sampler works with ``num_workers=0`` only; pass its path for workers). ``conditions``: see
    ``weighted_conditions``. ``transform`` is applied to the image tensor of every item.
    """

    def __init__(self, model: str | Path | Sampler, conditions: Conditions = None, *, length: int,
                 seed: int = 0, start: int = 0, transform: Callable[[torch.Tensor], Any] | None = None,
                 device: str = "cpu"):
        for name, value in (("length", length), ("seed", seed), ("start", start)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise SynthscapeError(f"{name} must be a non-negative integer, got {value!r}")
        self.length, self.seed, self.start = int(length), int(seed), int(start)
        self.transform, self.device = transform, device
        if isinstance(model, Sampler):
            self.path, self._sampler, self._pid = None, model, os.getpid()
        else:
            self.path, self._sampler, self._pid = Path(model), None, None
        sampler = self.sampler  # loads (and checks) the model once, here, so errors surface early
        self.schema: ConditionSchema = sampler.schema
        self.prior, self.latent_dim = sampler.prior, sampler.latent_dim
        self.domain, self.meta = sampler.domain, dict(sampler.domain_meta)
        self.choices = weighted_conditions(conditions, self.schema)
        self._conditions: np.ndarray | None = None

    # -- the model, one per process --------------------------------------------------------
    @property
    def sampler(self) -> Sampler:
        """The generator, built on first use in each process (after a fork too)."""
        if self._sampler is None or self._pid != os.getpid():
            if self.path is None:
                self._check_travels()  # a loaded sampler, inherited through a fork
            else:
                if self._sampler is not None:
                    # Inherited through a fork: freeing an onnxruntime session joins its thread
                    # pool, whose threads stayed in the parent, and hangs. Never free it here.
                    _INHERITED.append(self._sampler)
                self._sampler = load(self.path, device=self.device)
            self._pid = os.getpid()
        return self._sampler

    def _check_travels(self) -> None:
        """Only a torch sampler survives pickling and forking; an onnxruntime session does neither."""
        from synthscape.core.networks.artifacts import TorchSampler

        if not isinstance(self._sampler, TorchSampler):
            raise SynthscapeError(f"a loaded {type(self._sampler).__name__} cannot go to a DataLoader worker: "
                                  "give SyntheticDataset the model's path instead")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.path is not None:
            state["_sampler"], state["_pid"] = None, None  # rebuilt from the path where it lands
        else:
            self._check_travels()
        return state

    # -- what each item is -----------------------------------------------------------------
    def __len__(self) -> int:
        return self.length

    def index(self, item: int) -> int:
        """The sample index (under ``seed``) of item ``item``."""
        item = int(item)
        if not -self.length <= item < self.length:
            raise IndexError(f"item {item} out of range for a SyntheticDataset of length {self.length}")
        return self.start + (item % self.length)

    def requested(self, item: int) -> dict[str, str]:
        """The condition item ``item`` asks for (attributes left out are drawn as the data has them)."""
        index = self.index(item)
        if len(self.choices) == 1:
            return dict(self.choices[0][0])
        rng = np.random.default_rng([self.seed, index, CHOICE_STREAM])
        pick = int(rng.choice(len(self.choices), p=[p for _, p in self.choices]))
        return dict(self.choices[pick][0])

    def plan_item(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Latent ``[1, Z]`` and full condition indices ``[1, A]`` of item ``item``, as ``Sampler.sample``
        draws them."""
        latents, encoded, _ = plan(self.schema, self.prior, self.latent_dim, 1, self.requested(item),
                                   self.seed, self.index(item))
        return latents, encoded

    @property
    def conditions(self) -> np.ndarray:
        """Full condition indices int64 ``[length, A]`` of every item; no image is generated."""
        if self._conditions is None:
            rows = [self.plan_item(i)[1] for i in range(self.length)]
            self._conditions = np.concatenate(rows) if rows else np.zeros((0, len(self.schema)), dtype=np.int64)
        return self._conditions

    # -- items -----------------------------------------------------------------------------
    def _item(self, image: np.ndarray, condition: np.ndarray) -> Item:
        tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor, torch.from_numpy(np.asarray(condition, dtype=np.int64))

    def __getitem__(self, item: int) -> Item:
        samples = self.sampler.sample(1, self.requested(item), seed=self.seed, start=self.index(item))
        return self._item(samples.images[0], self.schema.encode(samples.conditions)[0])

    def __getitems__(self, items: Sequence[int]) -> list[Item]:
        """A batch in one network call (torch's DataLoader uses this when present); each item is
        the one ``__getitem__`` gives, within float tolerance of a batched network run."""
        if not len(items):
            return []
        plans = [self.plan_item(i) for i in items]
        latents = np.concatenate([latent for latent, _ in plans])
        encoded = np.concatenate([condition for _, condition in plans])
        images = self.sampler.generate(latents, encoded)
        return [self._item(image, condition) for image, condition in zip(images, encoded)]

    def __repr__(self) -> str:
        source = self.path if self.path is not None else type(self._sampler).__name__
        return (f"SyntheticDataset({source}, {self.domain}, length={self.length}, seed={self.seed}, "
                f"start={self.start}, conditions={self.choices})")
