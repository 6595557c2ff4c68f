"""Side-by-side timing shared by the benchmarks: candidates timed in interleaved rounds, so that
load on a shared machine falls on all of them alike; medians and ratios to a baseline."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def time_interleaved(candidates: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call every candidate once per round, in turn; each returns its own measured seconds."""
    timings: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, measure in candidates.items():
            timings[name].append(measure())
    return timings


def summarise(timings: dict[str, list[float]], baseline: str) -> list[dict[str, object]]:
    """One row per candidate: median ms, ratio of medians to ``baseline``, every round's ms."""
    base = statistics.median(timings[baseline])
    return [{"name": name, "ms_per_sample": round(1000 * statistics.median(values), 2),
             "ratio": round(statistics.median(values) / base, 3), "rounds_ms": [round(1000 * v, 2) for v in values]}
            for name, values in timings.items()]
