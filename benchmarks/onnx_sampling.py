"""Per-sample sampling time: torch eager vs onnxruntime fp32, fp16 and int8, side by side.

The lung-ct generator at 64^3 and the driving generator at 128x128 (default network widths,
untrained weights: speed does not depend on them), batch 1 and 16, and fp32 in the upsampling form
the export does not choose for that case (exports/subpixel.py), to show the choice still holds. Backends are timed
interleaved in rounds (the machines are shared and noisy); read the ratios to torch. Writes JSON.

    python benchmarks/onnx_sampling.py --out benchmarks/results/onnx_sampling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from interleaved import summarise, time_interleaved

from synthscape.core.artifacts import load_run, save_generator
from synthscape.core.conditions import ConditionPrior
from synthscape.core.config import ArtifactConfig, default_network
from synthscape.core.networks import ConditionalGenerator
from synthscape.domains import get_domain
from synthscape.exports.onnx_export import FOLDED_DIMS, export_onnx
from synthscape.exports.runtime import OnnxSampler

CASES = {"lung-ct 64^3": ("lung-ct", 3, 64, 1), "driving 128x128": ("driving", 2, 128, 3)}


def make_run(folder: Path, domain_name: str, dims: int, size: int, channels: int) -> Path:
    torch.manual_seed(0)
    domain = get_domain(domain_name)
    network = default_network(dims, (size,) * dims, channels)
    prior = ConditionPrior.from_list(domain.schema, [[[0] * len(domain.schema), 1]])  # one condition: speed only
    config = ArtifactConfig(domain_name, "gan", domain.schema, prior, network)
    save_generator(folder, config, ConditionalGenerator(network, domain.schema.cardinalities).eval())
    return folder


def seconds_per_sample(sampler, batch: int, repeats: int) -> float:
    sampler.sample(batch, seed=0, batch_size=batch)  # warm up
    start = time.perf_counter()
    for r in range(repeats):
        sampler.sample(batch, seed=r, batch_size=batch)
    return (time.perf_counter() - start) / (repeats * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/onnx_sampling.json"), help="JSON output path")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per backend, batch and round (default 3)")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as folder:
        for case, (domain, dims, size, channels) in CASES.items():
            run = make_run(Path(folder) / domain, domain, dims, size, channels)
            backends = {"torch eager": load_run(run)}
            for precision in ("fp32", "fp16", "int8"):
                path = Path(folder) / f"{domain}-{precision}.onnx"
                export_onnx(run, path, precision=precision)
                backends[f"onnxruntime {precision}"] = OnnxSampler(path)
            # The upsampling form the export does not choose for these dims (FOLDED_DIMS), for comparison.
            other = dims not in FOLDED_DIMS
            export_onnx(run, Path(folder) / f"{domain}-other.onnx", fold=other)
            backends[f"onnxruntime fp32 {'sub-pixel' if other else 'resize'}, not default"] = OnnxSampler(Path(folder) / f"{domain}-other.onnx")
            for batch in (1, 16):
                timings = time_interleaved({name: partial(seconds_per_sample, sampler, batch, args.repeats)
                                            for name, sampler in backends.items()}, args.rounds)
                for row in summarise(timings, "torch eager"):
                    results.append({"case": case, "batch": batch, "backend": row.pop("name"),
                                    "ms_per_sample": row.pop("ms_per_sample"), "ratio_to_torch": row.pop("ratio"), **row})
                    print(f"{case:16s} batch {batch:2d} {results[-1]['backend']:34s} {results[-1]['ms_per_sample']:8.2f} ms/sample"
                          f"  x{results[-1]['ratio_to_torch']:.2f} of torch")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
                                    "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
