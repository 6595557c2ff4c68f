"""A layout model on the edge install: simulated layouts (``--domain`` lung-ct, the default, or
driving) rendered through onnxruntime without torch, against the simulator alone; and the peak
memory of one large render, onnxruntime vs torch.

(a) Volumes (pictures) per second at ``--size`` (lung-ct 64^3; driving 256x256), in one torch-free
process (``torch`` unimportable):
``layouts`` the simulator drawing the label maps alone (``DOMAIN.draw_layout``); ``edge`` what
``synthscape sample model.onnx --count N --out S`` does, ``services.sample_order`` with
``layouts.simulated_layouts`` on an ``OnnxSampler`` (draw each label map, render it, write the
sample as the domain writes it: lung-ct the NIfTI volume and label map; driving the PNG, label
map, instance map and boxes, then COCO and the splits); ``simulate`` the simulator's own data set
for the same count (``DOMAIN.simulate``, one process: lung-ct phantom, NIfTI volume and three
masks; driving scene with weather, PNG, masks, YOLO, COCO). Timed interleaved in
``--repeats`` rounds (the machines are shared and noisy; read the ratios).
(b) Peak RSS of rendering one ``--memory-size`` (lung-ct 128^3) simulated label map at batch 1, each backend
in its own process (onnxruntime with torch unimportable; torch eager as ``synthscape sample`` runs
it), from the kernel (``wait4``), beside the child's own peak before the render (libraries,
session, and the simulator drawing the label map, which alone takes hundreds of MiB at 128^3).

The generator is an untrained layout network at the default layout widths
(``core/training/layout_runs.layout_network`` for the domain's data; timings and memory do not
depend on the weights), exported to fp32 ONNX as ``synthscape export`` does. Writes JSON.

    python benchmarks/layout_edge.py --out benchmarks/results/layout_edge.json
    python benchmarks/layout_edge.py --domain driving --size 256 --memory-size 1024 --count 16 \
        --out benchmarks/results/layout_edge_driving.json
    python benchmarks/layout_edge.py --count 4 --repeats 1   # a quick check that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: it reads TQDM_* once

SCRIPT = str(Path(__file__).resolve())
# Per domain: its module, the memory render's condition, what the edge writes and simulate takes,
# and the domain_meta of data at a side of ``size``.
DOMAINS = {
    "lung-ct": {"module": "synthscape.domains.lung_ct.domain", "formats": ["nifti"], "simulate": {"formats": ["nifti"]},
                "condition": {"nodule": "present", "size": "large", "kind": "solid"},
                "meta": lambda size: {"size": [size] * 3}},
    "driving": {"module": "synthscape.domains.driving.domain", "formats": ["png"], "simulate": {"view": "dashcam"},
                "condition": {"weather": "fog", "time": "night", "scenario": "pedestrian_crossing"},
                "meta": lambda size: {"size": size, "view": "dashcam"}},
}


def domain_of(name: str):
    """(the domain object, its module) of ``name``."""
    import importlib

    module = importlib.import_module(DOMAINS[name]["module"])
    return module.DOMAIN, module


def make_model(name: str, folder: Path, size: int) -> dict:
    """An untrained layout generator of domain ``name`` (default layout widths for data of side
    ``size``, its condition frequencies the simulator's mix), as a run folder and its fp32 ONNX export."""
    import numpy as np
    import torch

    from synthscape.core.networks.artifacts import save_generator
    from synthscape.core.networks.layout import LayoutGenerator
    from synthscape.core.schema.conditions import ConditionPrior
    from synthscape.core.schema.config import ArtifactConfig, TrainConfig
    from synthscape.core.training.layout_runs import layout_network
    from synthscape.exports.onnx_export import export_onnx

    domain, module = domain_of(name)
    torch.manual_seed(0)
    channels = 1 if domain.spatial_dims == 3 else 3
    network = layout_network(None, (channels, *[size] * domain.spatial_dims), domain.labels, None, TrainConfig())
    rng = np.random.default_rng(0)
    prior = ConditionPrior.from_indices(domain.schema, domain.schema.encode([module.draw_condition(rng) for _ in range(256)]))
    config = ArtifactConfig(name, "gan", domain.schema, prior, network, domain_meta=DOMAINS[name]["meta"](size),
                            label_map=domain.labels)
    run = folder / "run"
    save_generator(run, config, LayoutGenerator(network, domain.schema.cardinalities).eval())
    export_onnx(run, folder / "layout.onnx")
    return {"generator_channels": list(network.generator_channels), "trained_crop": list(network.image_size),
            "layout_classes": network.layout_classes}


def torch_free() -> None:
    """Make importing torch fail in this process, as on an edge device without it."""
    sys.modules["torch"] = None


def edge_rates(name: str, model: Path, folder: Path, count: int, size: int, batch_size: int, repeats: int) -> dict:
    """(a), in this (torch-free) process: seconds per round of each candidate, and items per second."""
    from interleaved import time_interleaved

    from synthscape.core.allocator import keep_freed_memory
    from synthscape.core.sampling.sampler import plan
    from synthscape.exports.runtime import OnnxSampler
    from synthscape.layouts import simulated_layouts
    from synthscape.services import sample_order

    keep_freed_memory()  # as the synthscape command does
    DOMAIN, _ = domain_of(name)
    sampler = OnnxSampler(model)
    layouts = simulated_layouts(sampler, DOMAIN, size)
    sampler.sample(1, seed=99, layouts=layouts)  # warm up the session at this size
    rounds = iter(range(10**6))

    conditions = plan(sampler.schema, sampler.prior, sampler.latent_dim, count, seed=0)[2]  # the edge's

    def draw() -> float:
        start = time.perf_counter()
        for i, condition in enumerate(conditions):
            layouts(condition, 0, i)
        return time.perf_counter() - start

    def edge() -> float:
        out = folder / f"edge-{next(rounds)}"
        start = time.perf_counter()
        sample_order(sampler, DOMAIN, [({}, count)], out, seed=0, batch_size=batch_size,
                     formats=DOMAINS[name]["formats"], layouts=layouts)
        return time.perf_counter() - start

    def simulate() -> float:
        out = folder / f"simulate-{next(rounds)}"
        start = time.perf_counter()
        DOMAIN.simulate(out, count, seed=0, size=size, workers=1, **DOMAINS[name]["simulate"])
        return time.perf_counter() - start

    timings = time_interleaved({"layouts": draw, "edge": edge, "simulate": simulate}, repeats)
    torch_loaded = any(name.split(".")[0] == "torch" and module is not None for name, module in sys.modules.items())
    return {"seconds": timings, "torch_imported": torch_loaded,
            "volumes_per_s": {name: round(count / statistics.median(values), 3) for name, values in timings.items()}}


def render_once(name: str, backend: str, run: Path, size: int) -> dict:
    """(b), in this process: one simulated label map of side ``size`` rendered at batch 1 by ``backend``."""
    import numpy as np

    from synthscape.core.allocator import keep_freed_memory
    from synthscape.core.sampling.sampler import layout_stream, noise_map, plan
    from synthscape.core.schema.labelmap import Layout

    keep_freed_memory()
    DOMAIN, _ = domain_of(name)
    condition = DOMAINS[name]["condition"]
    if backend == "onnxruntime":
        from synthscape.exports.runtime import OnnxSampler

        sampler = OnnxSampler(run.parent / "layout.onnx")
    else:
        from synthscape.core.networks.artifacts import load_run

        sampler = load_run(run)
    layout = DOMAIN.draw_layout(condition, (size,) * DOMAIN.spatial_dims, sampler.domain_meta, layout_stream(0, 0))
    layout = (layout.labels if isinstance(layout, Layout) else layout)[None].astype(np.int64)
    noise = noise_map(0, 0, layout.shape[1:])[None]
    z, c, _ = plan(sampler.schema, sampler.prior, sampler.latent_dim, 1, condition, seed=0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    start = time.perf_counter()
    image = sampler.generate(z, c, layout, noise)
    seconds = time.perf_counter() - start
    return {"peak_before_render_mib": round(before, 1), "render_s": round(seconds, 2), "shape": list(image.shape)}


def child(arguments: list[str]) -> tuple[dict, float]:
    """Run this script with ``arguments`` in a child process: (its JSON line, its peak RSS MiB from ``wait4``).
    Every piece of work runs in a child and this process stays small: Linux carries the peak RSS of
    the process that forked over into the child's (``maxrss`` survives ``exec``)."""
    process = subprocess.Popen([sys.executable, SCRIPT, *arguments], stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(arguments)} exited {code}")
    return json.loads(output.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="JSON file to write (default: print only)")
    parser.add_argument("--domain", choices=sorted(DOMAINS), default="lung-ct", help="whose layouts (default lung-ct)")
    parser.add_argument("--count", type=int, default=32, help="items per candidate and round (default 32)")
    parser.add_argument("--size", type=int, default=64, help="edge render side in voxels or pixels (default 64)")
    parser.add_argument("--memory-size", type=int, default=128, help="side of the memory render (default 128)")
    parser.add_argument("--batch-size", type=int, default=16, help="edge render batch (default 16, the CLI's)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--child", choices=["make", "edge", "onnxruntime", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child not in ("make", "torch"):
            torch_free()
        if args.child == "make":
            result = make_model(args.domain, args.folder, args.size)
        elif args.child == "edge":
            result = edge_rates(args.domain, args.folder / "layout.onnx", args.folder, args.count, args.size,
                                args.batch_size, args.repeats)
        else:
            result = render_once(args.domain, args.child, args.folder / "run", args.memory_size)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        common = ["--folder", str(folder), "--domain", args.domain, "--count", str(args.count), "--size", str(args.size),
                  "--memory-size", str(args.memory_size), "--batch-size", str(args.batch_size),
                  "--repeats", str(args.repeats)]
        network, _ = child(["--child", "make", *common])
        edge, _ = child(["--child", "edge", *common])
        print(f"items/s at side {args.size}: {edge['volumes_per_s']}", flush=True)
        memory = {}
        for backend in ("onnxruntime", "torch"):
            result, peak = child(["--child", backend, *common])
            memory[backend] = {"peak_rss_mib": round(peak, 1), **result,
                               "render_added_mib": round(peak - result["peak_before_render_mib"], 1)}
            print(f"{backend} side {args.memory_size}: peak {peak:.0f} MiB ({result['peak_before_render_mib']:.0f} "
                  f"before the render), {result['render_s']} s", flush=True)
    report = {
        "what": (f"{args.domain} layout model (untrained, default layout widths, fp32 ONNX): (a) items/s at side "
                 f"{args.size}, {args.count} per candidate and round, batch {args.batch_size}, torch-free process: "
                 "simulator label maps alone / edge sample (draw + onnxruntime render + the domain's files) / simulate "
                 f"(the simulator's data set, 1 process); (b) peak RSS rendering one label map of side "
                 f"{args.memory_size} at batch 1, each backend in its own process"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": version("torch"),
                    "onnxruntime": version("onnxruntime")},
        "network": network,
        "edge_volumes_per_s": edge["volumes_per_s"],
        "edge_rounds_s": {name: [round(v, 2) for v in values] for name, values in edge["seconds"].items()},
        "edge_torch_imported": edge["torch_imported"],
        "edge_to_simulate": round(edge["volumes_per_s"]["edge"] / edge["volumes_per_s"]["simulate"], 3),
        "memory": memory,
        "memory_onnxruntime_to_torch": round(memory["onnxruntime"]["peak_rss_mib"] / memory["torch"]["peak_rss_mib"], 3),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
