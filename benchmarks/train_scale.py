"""Training throughput, model FLOP utilisation and peak memory, and how they grow with size and batch.

Model FLOPs per step come from ``torch.utils.flop_counter`` (generator and critic / encoder and
decoder, forward and backward). Steps are timed and counted without the lazy R1 penalty, which
runs one step in 16 and whose double backward the FLOP counter cannot follow. MFU divides the
achieved model FLOP/s by the fp32 matmul FLOP/s measured in the same run, right before each case
(these machines are shared and noisy: read the ratio). Each case runs in its own process so that
its peak RSS is its own. Writes JSON.

    python benchmarks/train_scale.py --out benchmarks/results/train_scale.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from synthscape.core.allocator import keep_freed_memory
from synthscape.core.networks.artifacts import TorchSampler
from synthscape.core.networks.nets import ConditionalGenerator
from synthscape.core.schema.conditions import ConditionPrior, ConditionSchema
from synthscape.core.schema.config import ArtifactConfig, TrainConfig, default_network
from synthscape.core.schema.labelmap import LabelMapSchema
from synthscape.core.training.gan import GAN
from synthscape.core.training.devices import autocast_for, memory_format
from synthscape.core.training.layout_runs import layout_network
from synthscape.core.training.vae import VAE

KINDS = {"gan": GAN, "vae": VAE}
CARDINALITIES = [2, 4, 4]
R1_EVERY = 16

# (what, kind, spatial dims, size, batch, torch.compile, freed memory kept): the cases, the
# 3D GAN compiled and with glibc's malloc left as it is (core/allocator.py), then growth with size
# and batch
CASES = [
    ("lung-ct 64^3", "gan", 3, 64, 4, False, True), ("lung-ct 64^3", "gan", 3, 64, 4, True, True),
    ("malloc as is", "gan", 3, 64, 4, False, False),
    ("lung-ct 64^3", "vae", 3, 64, 4, False, True), ("malloc as is", "vae", 3, 64, 4, False, False),
    ("driving 128^2", "gan", 2, 128, 16, False, True), ("driving 128^2", "vae", 2, 128, 16, False, True),
    ("growth", "gan", 3, 32, 4, False, True), ("growth", "gan", 3, 48, 4, False, True),
    ("growth", "gan", 3, 96, 4, False, True), ("growth", "gan", 3, 64, 1, False, True),
    ("growth", "gan", 3, 64, 8, False, True),
    ("sampling", "sample", 3, 64, 16, False, True), ("sampling", "sample", 2, 128, 16, False, True),
    # layout models (core/networks/layout.py) train on 32^3 crops: beside the class-only GAN at the same size
    ("layout", "gan-layout", 3, 32, 4, False, True), ("layout", "gan-layout", 3, 32, 8, False, True),
    ("layout", "gan", 3, 32, 4, False, True),
]
LAYOUT_CLASSES = ("background", "lung", "nodule_solid", "nodule_ground_glass", "nodule_part_solid")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_second(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """The matmul rate this process gets now, the denominator of MFU: fp32 on CPU, bf16 on CUDA
    (where training runs under bf16 autocast)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n = n * 4 if device.type == "cuda" else n
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * n ** 3 / best


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def network_for(dims: int, size: int):
    """The default network of the domain's shape: lung-ct CT (1 channel, 3D) or driving RGB (2D)."""
    return default_network(dims, (size,) * dims, 1 if dims == 3 else 3)


def build(kind: str, dims: int, size: int, batch: int, device: torch.device):
    """The objective, a batch (images, conditions, and for ``*-layout`` kinds label maps) and the network."""
    torch.manual_seed(0)
    kind, _, layout_kind = kind.partition("-")
    labels = LabelMapSchema(LAYOUT_CLASSES) if layout_kind else None
    network = layout_network(None, (1, *(size,) * dims), labels, size, TrainConfig()) if labels else network_for(dims, size)
    objective = KINDS[kind](network, TrainConfig(r1_every=R1_EVERY, mode_seeking=0.2 if labels else 0.0),
                            CARDINALITIES, device)
    layout = memory_format(dims)
    for module in objective.modules.values():
        module.to(memory_format=layout)
    images = (torch.rand(batch, network.channels, *network.image_size, device=device) * 2 - 1).contiguous(memory_format=layout)
    condition = torch.stack([torch.randint(0, n, (batch,), device=device) for n in CARDINALITIES], 1)
    maps = torch.randint(0, len(labels), (batch, *network.image_size), device=device) if labels else None
    return objective, (images, condition, maps), network


def plain_steps(count: int) -> list[int]:
    """Step numbers at which the lazy R1 penalty does not run."""
    return [step for step in range(2, 2 * count + 2) if step % R1_EVERY][:count]


def step_flops(objective, batch, noise, autocast) -> float:
    """Model FLOPs of one (non-R1) step."""
    with FlopCounterMode(display=False) as counter:
        step(objective, batch, plain_steps(1)[0], noise, autocast)
    return float(counter.get_total_flops())


def step(objective, batch, number: int, noise, autocast) -> None:
    """One training step on ``batch`` (images, conditions, label maps or None)."""
    images, condition, maps = batch
    objective.step(images, condition, number, noise, autocast, layout=maps)


def run_case(kind: str, dims: int, size: int, batch: int, steps: int, device: torch.device, compiled: bool,
             malloc: bool) -> dict:
    """One training case, in this process: step time, model FLOPs, MFU, peak RSS. ``malloc``: keep
    freed memory for reuse, as training does (core/allocator.py); else glibc's default."""
    if malloc:
        keep_freed_memory()
    rss_start = peak_rss_mib()
    objective, data, network = build(kind, dims, size, batch, device)
    noise = torch.Generator(device).manual_seed(1)
    autocast = autocast_for(device)
    flops = step_flops(objective, data, noise, autocast)  # before compiling: the same model FLOPs
    if compiled:  # as TrainConfig.compile does
        for name in objective.compiled:
            objective.modules[name].compile()
    start = time.perf_counter()
    step(objective, data, 2, noise, autocast)  # warm-up (and compilation)
    first_step = time.perf_counter() - start
    peak = matmul_flops_per_second(device)
    synchronize(device)
    start = time.perf_counter()
    for number in plain_steps(steps):
        step(objective, data, number, noise, autocast)
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    return {
        "device": str(device), "kind": kind, "compiled": compiled, "malloc": "kept" if malloc else "glibc default",
        "first_step_seconds": first_step,
        "spatial_dims": dims, "size": size, "batch": batch, "threads": torch.get_num_threads(),
        "seconds_per_step": seconds, "steps_per_second": 1 / seconds, "model_gflop_per_step": flops / 1e9,
        "achieved_gflops": flops / seconds / 1e9, "matmul_gflops": peak / 1e9, "mfu": flops / seconds / peak,
        "peak_rss_mib_start": rss_start, "peak_rss_mib": peak_rss_mib(), **cuda_memory(device),
    }


def sample_case(dims: int, size: int, batch: int, device: torch.device) -> dict:
    """Sampling alone, in this process: the generator only, one batch, its time and peak RSS."""
    keep_freed_memory()  # as the CLI does
    rss_start = peak_rss_mib()
    network = network_for(dims, size)
    schema = ConditionSchema({f"a{i}": [str(v) for v in range(n)] for i, n in enumerate(CARDINALITIES)})
    art = ArtifactConfig("bench", "gan", schema, ConditionPrior.uniform(schema), network)
    torch.manual_seed(0)
    sampler = TorchSampler(art, ConditionalGenerator(network, CARDINALITIES).to(device), device)
    sampler.sample(batch, batch_size=batch)
    synchronize(device)
    start = time.perf_counter()
    sampler.sample(batch, batch_size=batch)
    synchronize(device)
    return {"device": str(device), "kind": "sample", "spatial_dims": dims, "size": size, "batch": batch,
            "seconds_per_batch": time.perf_counter() - start, "peak_rss_mib_start": rss_start,
            "peak_rss_mib": peak_rss_mib(), **cuda_memory(device)}


def cuda_memory(device: torch.device) -> dict:
    return {"cuda_max_allocated_mib": torch.cuda.max_memory_allocated(device) / 2 ** 20} if device.type == "cuda" else {}


def profile_case(kind: str, dims: int, size: int, batch: int, device: torch.device, out: Path) -> None:
    """Where one case's step time goes: torch.profiler's operator table over two steps, by self time.

    Without input shapes: recording them slowed the step itself (2.6 against 1.5 s at 64^3, with
    freed memory kept), which would misstate where the time goes."""
    from torch.profiler import ProfilerActivity, profile

    keep_freed_memory()
    objective, data, _ = build(kind, dims, size, batch, device)
    noise = torch.Generator(device).manual_seed(1)
    autocast = autocast_for(device)
    step(objective, data, 2, noise, autocast)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for number in plain_steps(2):
            step(objective, data, number, noise, autocast)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=25, max_name_column_width=40)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"{kind} {size}^{dims} batch {batch} on {device}, two steps\n{table}\n")
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_scale.json"), help="JSON output path")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (default 3)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cpu (fp32) or cuda (bf16 autocast)")
    parser.add_argument("--only", metavar="WHAT", help="run only the cases of this group (e.g. layout), into --out")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process, print JSON
    parser.add_argument("--profile", metavar="KIND,DIMS,SIZE,BATCH", help="instead: profile one case (e.g. gan,3,64,4) "
                        "and write its operator table next to --out")
    args = parser.parse_args()
    if args.profile:
        kind, dims, size, batch = args.profile.split(",")
        name = f"train_profile_{kind}_{dims}d{size}_b{batch}_{args.device}.txt"
        profile_case(kind, int(dims), int(size), int(batch), torch.device(args.device), args.out.parent / name)
        return
    if args.case:
        kind, dims, size, batch, compiled, kept = args.case.split(",")
        device = torch.device(args.device)
        result = (sample_case(int(dims), int(size), int(batch), device) if kind == "sample" else
                  run_case(kind, int(dims), int(size), int(batch), args.steps, device, compiled == "1", kept == "1"))
        print(json.dumps(result))
        return
    results = []
    for what, kind, dims, size, batch, compiled, kept in CASES:
        if args.only and what != args.only:
            continue
        command = [sys.executable, __file__, "--steps", str(args.steps), "--device", args.device,
                   "--case", f"{kind},{dims},{size},{batch},{int(compiled)},{int(kept)}"]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result = {"case": what, **json.loads(done.stdout.strip().splitlines()[-1])}
        results.append(result)
        if kind == "sample":
            print(f"{what:14s} {size}^{dims} batch {batch}: {result['seconds_per_batch']:.2f} s, "
                  f"peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
            continue
        print(f"{what:14s} {kind}{' compiled' if compiled else ''}{' malloc kept' if kept else ''} {size}^{dims} batch {batch}: "
              f"{result['seconds_per_step']:.2f} s/step (first {result['first_step_seconds']:.0f} s), "
              f"{result['model_gflop_per_step']:.1f} GFLOP/step, MFU {result['mfu']:.2f} "
              f"(matmul {result['matmul_gflops']:.0f} GFLOP/s), peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                                    "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
