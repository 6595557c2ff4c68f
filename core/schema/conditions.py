"""Condition labels: what a sample is asked to show ("weather=fog time=night").

A ``ConditionSchema`` is an ordered list of named categorical attributes. A condition is a
mapping ``{attribute: value}``; encoded, a batch of conditions is an int64 array ``[B, A]`` of
value indices in schema order, which is what every network and ONNX file takes as input.

A ``ConditionPrior`` remembers how often each combination occurred in the training data, so that
an attribute the user leaves out is drawn the way the data has it: asking lung-ct for
``nodule=absent`` must give ``size=none``, never an independent draw of ``size=large``.

numpy only: the torch-free edge runtime uses this module as it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthscape.core.errors import SynthscapeError, shown

Condition = Mapping[str, str]


def _label(text: Any, what: str, forbidden: str = ",") -> str:
    """An attribute name or value: text (or a number) that survives the CLI spelling
    ``attribute=value`` and ``SyntheticDataset``'s ``"a=v,b=w"``, so every value can be asked for."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise SynthscapeError(f"{what} must be text, got {shown(repr(text))}")
    text = str(text)
    if not text or text != text.strip() or not text.isprintable() or any(c in text for c in forbidden):
        raise SynthscapeError(f"{what} must be non-empty printable text without surrounding spaces or "
                              f"{' or '.join(repr(c) for c in forbidden)}, got {shown(repr(text))}")
    return text


def _pairs(attributes: Any) -> list[tuple[Any, Any]]:
    """``{name: values}`` or ``[(name, values), ...]`` (as config.json or a caller gives it) -> pairs."""
    if isinstance(attributes, Mapping):
        return list(attributes.items())
    if isinstance(attributes, Sequence) and not isinstance(attributes, (str, bytes)) and all(
            isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) == 2 for item in attributes):
        return [tuple(item) for item in attributes]
    raise SynthscapeError(f"a condition schema is a mapping {{attribute: [values]}}, got {shown(repr(attributes))}")


@dataclass(frozen=True)
class ConditionSchema:
    """Ordered, named, categorical attributes, e.g. ``weather = clear | rain | fog | snow``."""

    attributes: tuple[tuple[str, tuple[str, ...]], ...]

    def __init__(self, attributes: Mapping[str, Sequence[str]] | Sequence[tuple[str, Sequence[str]]]):
        items = _pairs(attributes)
        if not items:
            raise SynthscapeError("a condition schema needs at least one attribute")
        normalised = []
        for name, values in items:
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise SynthscapeError(f"attribute {shown(repr(name))} needs a list of values, got {shown(repr(values))}")
            values = tuple(_label(v, f"a value of attribute {shown(repr(name))}") for v in values)
            if not values or len(set(values)) != len(values):
                raise SynthscapeError(f"attribute {shown(repr(name))} needs distinct values, got {shown(list(values))}")
            normalised.append((_label(name, "an attribute name", forbidden="=,"), values))
        if len({n for n, _ in normalised}) != len(normalised):
            raise SynthscapeError(f"attribute names repeat in {shown([n for n, _ in normalised])}")
        object.__setattr__(self, "attributes", tuple(normalised))

    # -- structure -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Attribute names in schema order: the column order of every encoded condition ``[B, A]``."""
        return [name for name, _ in self.attributes]

    @property
    def cardinalities(self) -> list[int]:
        """Number of values of each attribute, in schema order: the sizes of the networks'
        embedding tables and of the AC-GAN and label-classifier heads."""
        return [len(values) for _, values in self.attributes]

    def values(self, attribute: str) -> tuple[str, ...]:
        """The values of ``attribute`` in order (a value's position is its encoded index); an unknown
        attribute is refused with the valid ones listed."""
        return dict(self.attributes)[self._check_attribute(attribute)]

    def __len__(self) -> int:
        return len(self.attributes)

    def describe(self) -> str:
        """One line per attribute, as ``synthscape domains`` prints it."""
        return "\n".join(f"{name} = {' | '.join(values)}" for name, values in self.attributes)

    # -- validation ------------------------------------------------------------------------
    def _check_attribute(self, attribute: str) -> str:
        if attribute not in self.names:
            raise SynthscapeError(f"unknown condition attribute {shown(repr(attribute))}; valid attributes: {', '.join(self.names)}")
        return attribute

    def validate(self, condition: Condition) -> dict[str, str]:
        """Return ``condition`` as a plain dict after checking every attribute and value."""
        if not isinstance(condition, Mapping):
            raise SynthscapeError(f"a condition is a mapping {{attribute: value}}, got {type(condition).__name__}")
        checked = {}
        for attribute, value in condition.items():
            valid = self.values(attribute)
            if str(value) not in valid:
                raise SynthscapeError(
                    f"unknown value {shown(repr(value))} for condition attribute {attribute!r}; valid values: {', '.join(valid)}"
                )
            checked[attribute] = str(value)
        return checked

    @staticmethod
    def parse(pairs: Iterable[str]) -> dict[str, str]:
        """Parse the CLI spelling ``["weather=fog", "time=night"]`` (validate separately)."""
        condition: dict[str, str] = {}
        for pair in [pairs] if isinstance(pairs, str) else pairs:
            if not isinstance(pair, str):
                raise SynthscapeError(f"condition {shown(repr(pair))} is not text of the form attribute=value")
            attribute, sep, value = pair.partition("=")
            if not sep or not attribute.strip() or not value.strip():
                raise SynthscapeError(f"condition {shown(repr(pair))} is not of the form attribute=value")
            if attribute.strip() in condition:
                raise SynthscapeError(f"condition attribute {shown(repr(attribute.strip()))} given twice")
            condition[attribute.strip()] = value.strip()
        return condition

    # -- encoding --------------------------------------------------------------------------
    def encode(self, conditions: Sequence[Condition]) -> np.ndarray:
        """Complete conditions -> int64 ``[B, A]`` value indices in schema order."""
        encoded = np.empty((len(conditions), len(self)), dtype=np.int64)
        for row, condition in enumerate(conditions):
            checked = self.validate(condition)
            missing = [name for name in self.names if name not in checked]
            if missing:
                raise SynthscapeError(f"condition {checked} lacks attribute(s) {', '.join(missing)}")
            for column, (name, values) in enumerate(self.attributes):
                encoded[row, column] = values.index(checked[name])
        return encoded

    def decode(self, indices: Any) -> list[dict[str, str]]:
        """int ``[B, A]`` value indices -> list of condition dicts."""
        indices = np.asarray(indices)
        self.check_indices(indices)
        return [{name: values[int(i)] for (name, values), i in zip(self.attributes, row)} for row in indices]

    def check_indices(self, indices: Any, what: str = "condition") -> None:
        """Refuse an index array of the wrong shape or with an out-of-range value."""
        shape = tuple(indices.shape)
        if len(shape) != 2 or shape[1] != len(self):
            raise SynthscapeError(f"{what} must have shape [batch, {len(self)}] ({', '.join(self.names)}), got {list(shape)}")
        for column, (name, values) in enumerate(self.attributes):
            col = np.asarray(indices[:, column])
            if col.size and (col.min() < 0 or col.max() >= len(values)):
                raise SynthscapeError(f"{what} index for {name!r} must lie in 0..{len(values) - 1}, got {col.min()}..{col.max()}")

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, list[str]]:
        """``{attribute: [values]}`` in schema order, as config.json's ``schema`` stores it; the order
        of both is the encoding, so ``from_dict`` gives back the same indices."""
        return {name: list(values) for name, values in self.attributes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> ConditionSchema:
        """The schema from config.json's ``schema`` entry, with every check of the constructor."""
        return cls(data)


@dataclass
class ConditionPrior:
    """How often each full combination of attribute values occurred in the training data."""

    schema: ConditionSchema
    counts: dict[tuple[int, ...], int] = field(default_factory=dict)

    @classmethod
    def from_indices(cls, schema: ConditionSchema, indices: Any) -> ConditionPrior:
        """Count the combinations in encoded training conditions ``[N, A]``. An empty data set is
        refused: it leaves nothing to draw missing attributes from."""
        indices = np.asarray(indices, dtype=np.int64)
        schema.check_indices(indices, what="training conditions")
        if len(indices) == 0:
            raise SynthscapeError("cannot learn condition frequencies from an empty data set")
        return cls(schema, dict(Counter(tuple(int(v) for v in row) for row in indices)))

    @classmethod
    def uniform(cls, schema: ConditionSchema) -> ConditionPrior:
        """Every combination equally likely: for a model that saw no data (tests, exports)."""
        grids = np.meshgrid(*[np.arange(n) for n in schema.cardinalities], indexing="ij")
        rows = np.stack([g.ravel() for g in grids], axis=1)
        return cls(schema, {tuple(int(v) for v in row): 1 for row in rows})

    def complete(self, condition: Condition, rng: np.random.Generator) -> dict[str, str]:
        """Fill the attributes missing from ``condition`` with a draw from the training data.

        Drawn from the training combinations that agree with what was given; if none does (a
        combination the data never showed, which is often the point), each missing attribute
        is drawn from its own frequency instead.
        """
        given = self.schema.validate(condition)
        if len(given) == len(self.schema):
            return given
        fixed = {self.schema.names.index(a): self.schema.values(a).index(v) for a, v in given.items()}
        combos = [c for c in self.counts if all(c[i] == v for i, v in fixed.items())]
        if combos:
            weights = np.array([self.counts[c] for c in combos], dtype=np.float64)
            drawn = combos[int(rng.choice(len(combos), p=weights / weights.sum()))]
        else:
            drawn = tuple(
                fixed.get(i, int(rng.choice(len(p), p=p))) for i, p in enumerate(self.marginals())
            )
        return {name: values[drawn[i]] for i, (name, values) in enumerate(self.schema.attributes)}

    def marginals(self) -> list[np.ndarray]:
        """Per-attribute value frequencies, each summing to one."""
        out = [np.zeros(n) for n in self.schema.cardinalities]
        for combo, count in self.counts.items():
            for i, v in enumerate(combo):
                out[i][v] += count
        return [m / m.sum() for m in out]

    def to_list(self) -> list[list[Any]]:
        """The counts as sorted ``[[value indices], count]`` rows: config.json's ``condition_counts``
        (JSON has no tuple keys; sorted so the same data writes the same file)."""
        return [[list(combo), count] for combo, count in sorted(self.counts.items())]

    @classmethod
    def from_list(cls, schema: ConditionSchema, data: Sequence[Sequence[Any]]) -> ConditionPrior:
        """Read config.json's ``condition_counts`` back, refusing an empty list or an index outside
        the schema."""
        counts = {tuple(int(v) for v in combo): int(count) for combo, count in data}
        if not counts:
            raise SynthscapeError("condition_counts in config.json is empty")
        schema.check_indices(np.array(list(counts), dtype=np.int64), what="condition_counts")
        return cls(schema, counts)
