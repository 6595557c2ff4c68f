"""A trained layout model's ONNX graph at fp32, fp16 and int8: renders per second through onnxruntime
and each one's distance to fp32 on the simulator's own label maps, side by side.

For ``RUN`` (a layout run folder, e.g. ``runs/driving/run`` from ``synthscape run
examples/driving.yaml``) the three graphs are exported as ``synthscape export --precision`` does
(fp16 and int8 are checked there against fp32 on blob label maps, and int8 is calibrated on them);
here ``--count`` label maps that the domain's simulator draws for conditions sampling draws, at
the run's data size, are rendered by each, timed in ``--repeats`` interleaved rounds (the machines
are shared and noisy: read the ratios to fp32), and compared with fp32's renders: max and mean
absolute difference in [-1, 1], and the mean difference in 8-bit steps (what a written PNG or HU
volume shows). Writes JSON.

    python benchmarks/layout_precision.py runs/driving/run --out benchmarks/results/layout_precision_driving.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
from interleaved import summarise, time_interleaved

import synthscape
from synthscape.core.sampling.sampler import noise_map, plan
from synthscape.core.schema.labelmap import Layout
from synthscape.domains import get_domain
from synthscape.exports.onnx_export import export_onnx
from synthscape.layouts import simulated_layouts

PRECISIONS = ("fp32", "fp16", "int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a layout model's run folder (synthscape train --layout)")
    parser.add_argument("--out", type=Path, help="JSON file to write (default: print only)")
    parser.add_argument("--count", type=int, default=8, help="label maps rendered per precision and round (default 8)")
    parser.add_argument("--batch-size", type=int, default=8, help="render batch (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the TorchScript exporter's, as synthscape export silences them
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's advice on pre-processing

    with tempfile.TemporaryDirectory() as folder:
        exports = {p: export_onnx(args.run, Path(folder) / f"{p}.onnx", precision=p) for p in PRECISIONS}
        samplers = {p: synthscape.load(Path(folder) / f"{p}.onnx") for p in PRECISIONS}
        reference = samplers["fp32"]
        domain = get_domain(reference.domain)
        latents, encoded, conditions = plan(reference.schema, reference.prior, reference.latent_dim, args.count, seed=5)
        draw = simulated_layouts(reference, domain, None)
        drawn = [draw(c, 5, i) for i, c in enumerate(conditions)]
        layouts = np.stack([d.labels if isinstance(d, Layout) else d for d in drawn]).astype(np.int64)
        noise = np.stack([noise_map(5, i, layouts.shape[1:]) for i in range(args.count)])

        def render(sampler) -> np.ndarray:
            return np.concatenate([sampler.generate(latents[i:i + args.batch_size], encoded[i:i + args.batch_size],
                                                    layouts[i:i + args.batch_size], noise[i:i + args.batch_size])
                                   for i in range(0, args.count, args.batch_size)])

        def timed(sampler):
            def measure() -> float:
                start = time.perf_counter()
                render(sampler)
                return (time.perf_counter() - start) / args.count
            return measure

        images = {p: render(s) for p, s in samplers.items()}
        timings = time_interleaved({p: timed(s) for p, s in samplers.items()}, args.repeats)
        sizes = {p: (Path(folder) / f"{p}.onnx").stat().st_size for p in PRECISIONS}

    rows = summarise(timings, "fp32")
    for row in rows:
        p = row["name"]
        gap = np.abs(images[p] - images["fp32"])
        row.update({"renders_per_s": round(1000 / row["ms_per_sample"], 2), "file_mib": round(sizes[p] / 2**20, 2),
                    "max_abs_vs_fp32": float(gap.max()), "mean_abs_vs_fp32": float(gap.mean()),
                    "mean_8bit_steps_vs_fp32": float(gap.mean() * 127.5),
                    "export_check_vs_fp32": exports[p]["precision_error"]})
    result = {"benchmark": "layout_precision", "run": str(args.run), "domain": domain.name,
              "size": list(layouts.shape[1:]), "count": args.count, "batch_size": args.batch_size,
              "repeats": args.repeats, "threads": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "onnxruntime": version("onnxruntime"), "rows": rows}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
