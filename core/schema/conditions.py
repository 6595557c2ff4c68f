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

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthscape.core.errors import SynthscapeError, shown

Condition = Mapping[str, str]


# What a schema read from a file (config.json, ONNX metadata, a plug-in domain) may hold. Names and
# values become file names (a run's ``samples/step-N/ATTRIBUTE=VALUE.png``), labels.csv cells a
# spreadsheet may open, DICOM text (whose default character set is ASCII) and CLI text
# (``attribute=value``, ``"a=v,b=w"``). So: ASCII letters and digits, then also ``_ - .``; never a
# path separator, a space, ``=`` or ``,``; never first a dot (a hidden file, ``..``) or a character a
# spreadsheet reads as a formula (``= + - @``, tab, CR). ASCII only, not every Unicode letter: one
# name must be the same bytes on every file system (macOS stores decomposed accents) and must not
# hide look-alike letters or direction marks in a file name or a labels.csv cell.
NAME_MAX = 64  # characters: longer than any real label, and file names stay far below 255 bytes
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
MAX_ATTRIBUTES = 64  # attributes of one schema: each is a column of every encoded condition
MAX_VALUES = 1024  # values of one attribute: each is an embedding row, a classifier output and a sample grid
MAX_COMBINATIONS = 1_000_000  # rows of config.json's condition_counts: one per combination the data showed


def checked_name(text: Any, what: str) -> str:
    """``text`` (text or a whole number) as a name that may become part of a file name or a
    labels.csv cell (``NAME_RULE``, at most ``NAME_MAX`` characters); else one line naming it."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise SynthscapeError(f"{what} must be text, got {shown(repr(text))}")
    text = str(text)
    if len(text) > NAME_MAX or not NAME_RULE.fullmatch(text):
        raise SynthscapeError(f"{what} {shown(repr(text))} is not a valid name: 1 to {NAME_MAX} ASCII letters, "
                              "digits, '_', '-' or '.', starting with a letter or digit (names become file names)")
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
        if not items or len(items) > MAX_ATTRIBUTES:
            raise SynthscapeError(f"a condition schema needs 1 to {MAX_ATTRIBUTES} attributes, got {len(items):,}")
        normalised = []
        for name, values in items:
            name = checked_name(name, "an attribute name")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise SynthscapeError(f"attribute {name!r} needs a list of values, got {shown(repr(values))}")
            if len(values) > MAX_VALUES:
                raise SynthscapeError(f"attribute {name!r} has {len(values):,} values, more than the limit of {MAX_VALUES:,}")
            values = tuple(checked_name(v, f"a value of attribute {name!r}") for v in values)
            if not values or len({v.lower() for v in values}) != len(values):
                raise SynthscapeError(f"attribute {name!r} needs distinct values (also ignoring case: they name files), "
                                      f"got {shown(list(values))}")
            normalised.append((name, values))
        if len({n.lower() for n, _ in normalised}) != len(normalised):
            raise SynthscapeError(f"attribute names repeat (also ignoring case: they name files) in "
                                  f"{shown([n for n, _ in normalised])}")
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
        """Read config.json's ``condition_counts`` back: 1 to ``MAX_COMBINATIONS`` rows
        ``[[value indices], count]``, each combination once, with a positive whole count."""
        if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
            raise SynthscapeError(f"condition_counts must be a list of [[value indices], count] rows, got {shown(repr(data))}")
        if not data or len(data) > MAX_COMBINATIONS:
            raise SynthscapeError(f"condition_counts needs 1 to {MAX_COMBINATIONS:,} rows, got {len(data):,}")
        counts: dict[tuple[int, ...], int] = {}
        for number, row in enumerate(data, start=1):
            combo, count = _count_row(schema, row, number)
            if combo in counts:
                raise SynthscapeError(f"condition_counts row {number} repeats the combination {list(combo)}")
            counts[combo] = count
        return cls(schema, counts)


def _whole(value: Any) -> bool:
    """Whether ``value`` is a whole number as JSON gives it (not ``true``, not ``1.0``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _count_row(schema: ConditionSchema, row: Any, number: int) -> tuple[tuple[int, ...], int]:
    """One ``[[value indices], count]`` row of condition_counts, checked against ``schema``."""
    expected = f"[[{len(schema)} value indices], count]"
    if not (isinstance(row, Sequence) and not isinstance(row, (str, bytes)) and len(row) == 2
            and isinstance(row[0], Sequence) and not isinstance(row[0], (str, bytes))):
        raise SynthscapeError(f"condition_counts row {number} must be {expected}, got {shown(repr(row))}")
    combo, count = row
    if len(combo) != len(schema) or not all(_whole(i) and 0 <= i < n for i, n in zip(combo, schema.cardinalities)):
        raise SynthscapeError(f"condition_counts row {number} has value indices {shown(repr(combo))}, expected "
                              f"{len(schema)} whole numbers below {schema.cardinalities} ({', '.join(schema.names)})")
    if not _whole(count) or not 1 <= count <= 2**53:
        raise SynthscapeError(f"condition_counts row {number} has count {shown(repr(count))}, expected a whole number of 1 or more")
    return tuple(combo), count
