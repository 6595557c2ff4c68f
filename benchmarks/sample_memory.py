"""Peak memory of ``synthscape sample`` against ``--count``: it must stay flat (issue 17).

Sampling streams: each batch is drawn, written and dropped before the next (``orders.draw_batches``,
``domains.base.write_samples``), so 3000 samples should peak where 200 do. A lung-ct generator at
32^3 with the default widths (untrained: memory does not depend on the weights) is sampled as NIfTI
by the real command line, each count in its own process; the peak RSS comes from the kernel
(``wait4``). Counts are interleaved over ``--repeats`` rounds. Writes JSON.

    python benchmarks/sample_memory.py --out benchmarks/results/sample_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from synthscape.core.networks.artifacts import save_generator
from synthscape.core.networks.nets import ConditionalGenerator
from synthscape.core.schema.conditions import ConditionPrior
from synthscape.core.schema.config import ArtifactConfig, default_network
from synthscape.domains import get_domain


def make_run(folder: Path, size: int) -> Path:
    """An untrained lung-ct generator at ``size``^3 with the default widths, as a run folder."""
    torch.manual_seed(0)
    domain = get_domain("lung-ct")
    network = default_network(3, (size,) * 3, 1)
    config = ArtifactConfig("lung-ct", "gan", domain.schema, ConditionPrior.uniform(domain.schema), network)
    save_generator(folder, config, ConditionalGenerator(network, domain.schema.cardinalities).eval())
    return folder


def peak_rss(command: list[str]) -> tuple[float, float]:
    """(peak resident MiB, seconds) of ``command`` run as a child of this process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start  # Linux: ru_maxrss is in KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="JSON file to write (default: print only)")
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 3000], help="sample counts (default 200 3000)")
    parser.add_argument("--size", type=int, default=32, help="volume side in voxels (default 32)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds (default 1)")
    args = parser.parse_args()
    results: dict[int, list] = {count: [] for count in args.counts}
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp) / "run", args.size)
        for round_ in range(args.repeats):
            for count in args.counts:
                out = Path(tmp) / f"samples-{count}-{round_}"
                mib, seconds = peak_rss([sys.executable, "-m", "synthscape", "-q", "sample", str(run),
                                         "--count", str(count), "--out", str(out)])
                results[count].append({"peak_rss_mib": round(mib, 1), "seconds": round(seconds, 1)})
                print(f"--count {count}: peak {mib:.0f} MiB, {seconds:.0f} s", flush=True)
    peaks = {count: min(r["peak_rss_mib"] for r in rows) for count, rows in results.items()}
    low, high = min(args.counts), max(args.counts)
    report = {
        "what": f"synthscape sample lung-ct {args.size}^3, NIfTI, batch 16: peak RSS against --count",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "runs": {str(count): rows for count, rows in results.items()},
        "peak_rss_mib": {str(count): peak for count, peak in peaks.items()},
        f"growth_mib_{low}_to_{high}": round(peaks[high] - peaks[low], 1),
        "held_in_memory_before_streaming_mib": round(high * args.size**3 * 4 / 2**20, 1),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
