"""Scenes per second of the driving simulator: render alone, render + weather/time, and whole
``simulate`` (PNG, mask, YOLO, COCO written), in one process and in two side by side (two
processes is what ``simulate --workers 2``, the default on 2 cores, does).

The variants are timed interleaved in rounds (the machines are shared and noisy); read the
ratios. Writes JSON.

    python benchmarks/driving_render.py --out benchmarks/results/driving_render.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from interleaved import time_interleaved

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: it reads TQDM_* once

from synthscape.core.allocator import keep_freed_memory
from synthscape.domains.driving.domain import DOMAIN, RENDERERS, draw_condition, render


def render_only(view: str, size: int, count: int, seed: int) -> int:
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        RENDERERS[view](size, draw_condition(rng)["scenario"], rng)
    return count


def render_with_effects(view: str, size: int, count: int, seed: int) -> int:
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        render(view, size, draw_condition(rng), rng)
    return count


def simulate(view: str, size: int, count: int, seed: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        DOMAIN.simulate(Path(folder) / "data", count=count, seed=seed, size=size, view=view, workers=1)
    return count


def rate(task, view: str, size: int, count: int, processes: int, pool: ProcessPoolExecutor | None) -> float:
    """Scenes per second, ``count`` scenes per process."""
    start = time.perf_counter()
    if processes == 1:
        done = task(view, size, count, 0)
    else:
        done = sum(pool.map(task, [view] * processes, [size] * processes, [count] * processes, range(processes)))
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/driving_render.json"), help="JSON output path")
    parser.add_argument("--size", type=int, default=256, help="scene size in pixels (default 256)")
    parser.add_argument("--count", type=int, default=100, help="scenes per process per measurement (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()

    tasks = {"render": render_only, "render+effects": render_with_effects, "simulate (files)": simulate}
    results = []
    keep_freed_memory()  # as the CLI and its simulate workers do (core/allocator.py)
    with ProcessPoolExecutor(2, initializer=keep_freed_memory) as pool:
        pool.submit(int).result()  # start the workers before timing
        for view in RENDERERS:
            timings = time_interleaved({(name, processes): partial(rate, task, view, args.size, args.count, processes, pool)
                                        for name, task in tasks.items() for processes in (1, 2)}, args.rounds)
            for (name, processes), values in timings.items():
                median = statistics.median(values)
                results.append({"view": view, "what": name, "processes": processes,
                                "scenes_per_second": round(median, 1), "ms_per_scene": round(1000 * processes / median, 2),
                                "rounds": [round(v, 1) for v in values]})
                print(f"{view:8s} {name:18s} {processes} process(es): {median:7.1f} scenes/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                                    "size": args.size, "count_per_process": args.count, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
