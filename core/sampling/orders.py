"""Ordering samples by condition: "50 of fog at night with a pedestrian crossing, 20 of snow".

An order is a list of (condition, count). It comes from the command line (``--condition ...
--count-per-condition N``) or from a plan file, a CSV with one column per condition attribute
and a ``count`` column, where an empty cell means "as the training data has it"::

    weather,time,scenario,count
    fog,night,pedestrian_crossing,50
    snow,,cyclist,20

Sample indices run on across the rows, so every sample of an order has its own (seed, index)
and a sharded or repeated run makes the same images. numpy only.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.progress import progress as show_progress
from synthscape.core.sampling.sampler import LayoutSource, Sampler, Samples
from synthscape.core.sampling.shards import Shard
from synthscape.core.schema.conditions import ConditionSchema

Order = list[tuple[dict[str, str], int]]


def read_plan(path: str | Path, schema: ConditionSchema, default_count: int | None = None) -> Order:
    """Read a plan CSV into an order; bad columns, values or counts are errors naming the line."""
    path = Path(path)
    if not path.is_file():
        raise SynthscapeError(f"plan file {path} not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        unknown = [h for h in header if h not in (*schema.names, "count")]
        if unknown or not header:
            raise SynthscapeError(f"{path}: unknown column(s) {', '.join(unknown) or '(none)'}; "
                                  f"expected any of {', '.join(schema.names)} and count")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    order: Order = []
    for line, row in enumerate(rows, start=2):
        condition = {k: v for k, v in row.items() if k != "count" and v}
        try:
            condition = schema.validate(condition)
        except SynthscapeError as exc:
            raise SynthscapeError(f"{path} line {line}: {exc}") from None
        order.append((condition, _count(row.get("count", ""), default_count, f"{path} line {line}")))
    if not order:
        raise SynthscapeError(f"{path} has no rows")
    return order


def _count(text: str, default: int | None, where: str) -> int:
    if not text:
        if default is None:
            raise SynthscapeError(f"{where}: no count (give one, or --count-per-condition)")
        return default
    if not text.isdigit() or int(text) < 1:
        raise SynthscapeError(f"{where}: count must be a positive integer, got {text!r}")
    return int(text)


def network_calls(order: Sequence[tuple[Mapping[str, str], int]], start: int = 0,
                  batch_size: int = 16) -> Iterator[tuple[Mapping[str, str], int, int]]:
    """``(condition, first index, count)`` of every network call that drawing ``order`` makes:
    each row cut into batches from its own first index, indices running on across the rows.
    Lazy, so an order of millions of samples costs no list of calls."""
    if batch_size < 1:
        raise SynthscapeError(f"batch_size must be at least 1, got {batch_size}")
    for condition, count in order:
        for first in range(start, start + count, batch_size):
            yield condition, first, min(batch_size, start + count - first)
        start += count


def count_network_calls(order: Sequence[tuple[Mapping[str, str], int]], batch_size: int = 16) -> int:
    """How many calls ``network_calls`` yields for ``order``, without making them."""
    return sum(-(-count // batch_size) for _, count in order)


def draw_batches(sampler: Sampler, order: Sequence[tuple[Mapping[str, str], int]], seed: int = 0, start: int = 0,
                 batch_size: int = 16, progress: bool = False, shard: Shard | None = None,
                 layouts: LayoutSource | None = None) -> Iterator[Samples]:
    """``order``'s samples one network call at a time, so a caller can write and free each batch
    (memory stays flat in the count). With ``shard``, only that shard's block of the calls: the
    same calls, on the same batches, as the whole order makes, so the shards together give the
    same samples bit for bit. ``layouts``: a layout model's label maps (``Sampler.sample``)."""
    calls = network_calls(order, start, batch_size)
    total = count_network_calls(order, batch_size)
    if total == 0 and shard is None:  # an order of zero samples: one empty batch, so writers still write their index
        yield sampler.sample(0, seed=seed, start=start, layouts=layouts)
        return
    if shard is not None:
        block = shard.block(total)
        if not block:
            raise SynthscapeError(f"shard {shard.index}/{shard.count} gets no samples: the order makes only {total} "
                                  f"network call(s) of batch size {batch_size}; use fewer shards or a smaller batch size")
        calls, total = itertools.islice(calls, block.start, block.stop), len(block)
    for condition, first, count in show_progress(calls, desc="sampling", unit="batch", total=total, enabled=progress):
        yield sampler.sample(count, condition, seed=seed, start=first, batch_size=batch_size, layouts=layouts)


def draw_order(sampler: Sampler, order: Sequence[tuple[Mapping[str, str], int]], seed: int = 0, start: int = 0,
               batch_size: int = 16, progress: bool = False, shard: Shard | None = None,
               layouts: LayoutSource | None = None) -> Samples:
    """Every row's samples, exactly its count, with indices running on from ``start``, in memory
    at once (for evaluation; ``draw_batches`` streams them)."""
    parts = list(draw_batches(sampler, order, seed, start, batch_size, progress, shard, layouts))
    maps = [p.layouts for p in parts if p.layouts is not None]
    objects = [p.instances for p in parts if p.instances is not None]
    return Samples(np.concatenate([p.images for p in parts]), [c for p in parts for c in p.conditions], seed,
                   np.concatenate([p.indices for p in parts]), np.concatenate(maps) if maps else None,
                   np.concatenate(objects) if objects and len(objects) == len(maps) else None)
