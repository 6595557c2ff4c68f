"""Chest phantoms per second at 64^3: the phantom alone and the whole ``simulate`` (NIfTI volume
and masks written), in one process and on every core, timed interleaved in rounds (the machines
are shared and noisy; read the ratios). Writes JSON.

    python benchmarks/lung_simulate.py --out benchmarks/results/lung_simulate.json
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
from pathlib import Path

import numpy as np
from interleaved import time_interleaved

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: it reads TQDM_* once

from synthscape.domains.lung_ct.domain import DOMAIN, draw_condition
from synthscape.domains.lung_ct.phantom import chest_phantom, default_spacing

SIZE = 64


def phantom(index: int) -> None:
    rng = np.random.default_rng([0, index])
    chest_phantom(SIZE, default_spacing(SIZE), draw_condition(rng), rng)


def phantoms(count: int, workers: int) -> float:
    """Seconds for ``count`` phantoms (no files) on ``workers`` processes."""
    start = time.perf_counter()
    if workers == 1:
        for i in range(count):
            phantom(i)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(phantom, range(count), chunksize=max(1, count // (4 * workers))))
    return time.perf_counter() - start


def simulate(count: int, workers: int) -> float:
    """Seconds for ``simulate lung-ct`` of ``count`` volumes with files, on ``workers`` processes."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        DOMAIN.simulate(Path(folder) / "data", count=count, seed=0, size=SIZE, workers=workers)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lung_simulate.json"), help="JSON output path")
    parser.add_argument("--count", type=int, default=32, help="phantoms per timing (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    variants = {f"{what} x{w}": (lambda fn=fn, w=w: fn(args.count, w))
                for what, fn in (("phantom", phantoms), ("simulate", simulate)) for w in sorted({1, cores})}
    timings = time_interleaved(variants, args.rounds)
    results = {name: {"seconds": statistics.median(times), "per_second": args.count / statistics.median(times)}
               for name, times in timings.items()}
    for name, result in results.items():
        print(f"{name:14s} {result['per_second']:.1f} phantoms/s at {SIZE}^3")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "cores": cores,
                                    "size": SIZE, "count": args.count, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
