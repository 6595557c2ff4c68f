"""Per-sample time of exported generators under every onnxruntime execution provider present.

Torch-free (numpy + onnxruntime), so it runs where the models will: install the onnxruntime build
for the target (onnxruntime, onnxruntime-openvino, onnxruntime-gpu) and pass the .onnx files that
'synthscape export' wrote. Providers are timed interleaved in rounds, each against the default CPU
provider of the same build, with the largest difference of their images. Writes JSON.

    python benchmarks/onnx_providers.py lung.onnx driving.onnx --out benchmarks/results/onnx_providers.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort
from interleaved import summarise, time_interleaved

PROVIDER_OPTIONS = {"OpenVINOExecutionProvider": {"device_type": "CPU"}}
SKIPPED = {"TensorrtExecutionProvider", "AzureExecutionProvider"}  # per-shape engines; a remote endpoint


def inputs(session: ort.InferenceSession, batch: int) -> dict[str, np.ndarray]:
    z, condition = session.get_inputs()
    rng = np.random.default_rng(0)
    return {"z": rng.standard_normal((batch, z.shape[1]), dtype=np.float32),
            "condition": np.zeros((batch, condition.shape[1]), dtype=np.int64)}


def seconds_per_sample(session: ort.InferenceSession, feed: dict[str, np.ndarray], repeats: int) -> float:
    session.run(None, feed)  # warm up
    start = time.perf_counter()
    for _ in range(repeats):
        session.run(None, feed)
    return (time.perf_counter() - start) / (repeats * len(feed["z"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help=".onnx files written by 'synthscape export'")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/onnx_providers.json"), help="JSON output path")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per provider, batch and round (default 3)")
    args = parser.parse_args()

    providers = [p for p in ort.get_available_providers() if p not in SKIPPED]
    results = []
    for model in args.models:
        sessions = {p: ort.InferenceSession(str(model), providers=[(p, PROVIDER_OPTIONS.get(p, {}))] +
                                            (["CPUExecutionProvider"] if p != "CPUExecutionProvider" else []))
                    for p in providers}
        for batch in (1, 16):
            feed = inputs(sessions["CPUExecutionProvider"], batch)
            reference = sessions["CPUExecutionProvider"].run(None, feed)[0]
            timings = time_interleaved({name: partial(seconds_per_sample, session, feed, args.repeats)
                                        for name, session in sessions.items()}, args.rounds)
            for row in summarise(timings, "CPUExecutionProvider"):
                name = row.pop("name")
                error = float(np.abs(sessions[name].run(None, feed)[0] - reference).max())
                results.append({"model": model.name, "batch": batch, "provider": name, "ms_per_sample": row.pop("ms_per_sample"),
                                "ratio_to_cpu_provider": row.pop("ratio"), "max_abs_diff_to_cpu_provider": error, **row})
                print(f"{model.name:24s} batch {batch:2d} {name:26s} {results[-1]['ms_per_sample']:8.2f} ms/sample  "
                      f"x{results[-1]['ratio_to_cpu_provider']:.2f} of CPU provider  max |diff| {error:.1e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                                                "python": platform.python_version(), "onnxruntime": ort.__version__},
                                    "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
