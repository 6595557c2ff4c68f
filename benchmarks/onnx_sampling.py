"""Per-sample sampling time: torch eager vs onnxruntime fp32, fp16 and int8, side by side.

The lung-ct generator at 64^3 and the driving generator at 128x128 (default network widths,
untrained weights: speed does not depend on them), batch 1 and 16, and fp32 in the upsampling form
the export does not choose for that case (exports/subpixel.py), to show the choice still holds. Backends are timed
interleaved in rounds (the machines are shared and noisy); read the ratios to torch. Writes JSON.

    python benchmarks/onnx_sampling.py --out benchmarks/results/onnx_sampling.json
    python benchmarks/onnx_sampling.py --profile   # where onnxruntime's time goes, per operator type
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from interleaved import summarise, time_interleaved

from synthscape.core.allocator import keep_freed_memory
from synthscape.core.networks.artifacts import load_run, save_generator
from synthscape.core.networks.nets import ConditionalGenerator
from synthscape.core.sampling.sampler import plan
from synthscape.core.schema.conditions import ConditionPrior
from synthscape.core.schema.config import ArtifactConfig, default_network
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


def operator_profile(path: Path, batch: int, runs: int = 10) -> tuple[float, list[tuple[str, float, int]]]:
    """(ms per run, [(operator type, ms per run, nodes per run)]) from onnxruntime's own profiler."""
    import onnxruntime as ort

    sampler = OnnxSampler(path)
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    z, condition, _ = plan(sampler.schema, sampler.prior, sampler.latent_dim, batch, seed=0)
    session.run(["image"], {"z": z, "condition": condition})
    start = time.perf_counter()
    for _ in range(runs):
        session.run(["image"], {"z": z, "condition": condition})
    ms = (time.perf_counter() - start) / runs * 1000
    events = json.loads(Path(session.end_profiling()).read_text())
    total, nodes = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            total[event["args"]["op_name"]] += event["dur"]
            nodes[event["args"]["op_name"]] += 1
    return ms, [(op, us / (runs + 1) / 1000, nodes[op] // (runs + 1)) for op, us in total.most_common()]


def write_profiles(out: Path, batches: tuple[int, ...] = (1, 16)) -> None:
    """Per-operator time of the fp32 and int8 exports at each batch size, as text next to the JSON."""
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        for case, (domain, dims, size, channels) in CASES.items():
            run = make_run(Path(folder) / domain, domain, dims, size, channels)
            for precision in ("fp32", "int8"):
                path = Path(folder) / f"{domain}-{precision}.onnx"
                export_onnx(run, path, precision=precision)
                for batch in batches:
                    ms, rows = operator_profile(path, batch)
                    lines.append(f"{case} {precision} batch {batch}: {ms:.2f} ms per call")
                    lines += [f"  {op:24s} {op_ms:7.2f} ms  {count:3d} nodes" for op, op_ms, count in rows[:12]]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/onnx_sampling.json"), help="JSON output path")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per backend, batch and round (default 3)")
    parser.add_argument("--profile", action="store_true", help="instead: onnxruntime's per-operator time of the fp32 "
                        "and int8 exports at batch 1 and 16, written to onnx_profile.txt next to --out")
    args = parser.parse_args()
    keep_freed_memory()  # torch eager as the CLI runs it (core/allocator.py)
    if args.profile:
        write_profiles(args.out.parent / "onnx_profile.txt")
        return

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
