"""Simulating on every core: item ``i`` of a simulator depends on (seed, i) alone, so a pool of
processes writes exactly the files one process writes. numpy-free, torch-free."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from synthscape.core.allocator import keep_freed_memory
from synthscape.core.errors import SynthscapeError
from synthscape.core.progress import progress

T = TypeVar("T")
MAX_DEFAULT_WORKERS = 8
SERIAL_BELOW = 64  # fewer items than this: starting processes costs more than it saves


def default_workers(count: int) -> int:
    """One process per CPU core (up to 8) for 64 items or more; one below that."""
    return min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS) if count >= SERIAL_BELOW else 1


def parallel_map(task: Callable[[int], T], count: int, workers: int | None, desc: str, unit: str) -> list[T]:
    """``[task(0), ..., task(count - 1)]`` in order, on ``workers`` processes, with progress
    shown (core/progress.py).
    ``task`` must be picklable (a module-level function or a ``functools.partial`` of one)."""
    workers = default_workers(count) if workers is None else int(workers)
    if workers < 1:
        raise SynthscapeError(f"workers must be at least 1, got {workers}")
    # workers reuse freed memory as the CLI's process does (core/allocator.py), however they start
    with ProcessPoolExecutor(workers, initializer=keep_freed_memory) if workers > 1 else contextlib.nullcontext() as pool:
        mapped = pool.map(task, range(count), chunksize=max(1, min(16, count // (4 * workers)))) if pool else map(task, range(count))
        return list(progress(mapped, total=count, desc=desc, unit=unit))
