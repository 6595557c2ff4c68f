"""Training step time of the conditional GAN and VAE, contiguous vs channels-last, side by side.

Layouts are timed interleaved in one run (the machines are shared and noisy), and the ratio is
what to read. Writes JSON.

    python benchmarks/train_step.py --out benchmarks/results/train_step.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import torch
from interleaved import time_interleaved

from synthscape.core.schema.config import TrainConfig, default_network
from synthscape.core.training.gan import GAN
from synthscape.core.training.vae import VAE

KINDS = {"gan": GAN, "vae": VAE}


def build(kind: str, spatial_dims: int, size: int, batch: int, layout: torch.memory_format):
    torch.manual_seed(0)
    network = default_network(spatial_dims, (size,) * spatial_dims, 1)
    objective = KINDS[kind](network, TrainConfig(r1_every=16), [2, 4, 4], torch.device("cpu"))
    for module in objective.modules.values():
        module.to(memory_format=layout)
    images = (torch.rand(batch, 1, *(size,) * spatial_dims) * 2 - 1).contiguous(memory_format=layout)
    condition = torch.stack([torch.randint(0, n, (batch,)) for n in (2, 4, 4)], 1)
    return objective, images, condition, network


def seconds_per_step(objective, images, condition, steps: int, noise: torch.Generator) -> float:
    start = time.perf_counter()
    for step in range(steps):
        objective.step(images, condition, step + 2, noise)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_step.json"), help="JSON output path")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per layout and round (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    args = parser.parse_args()

    cases = [("gan", 3, 32), ("vae", 3, 32), ("gan", 2, 64)]
    layouts = {"contiguous": torch.contiguous_format}
    results = []
    for kind, dims, size in cases:
        layouts["channels_last"] = torch.channels_last_3d if dims == 3 else torch.channels_last
        built = {name: build(kind, dims, size, args.batch_size, fmt) for name, fmt in layouts.items()}
        noise = torch.Generator().manual_seed(0)
        for name, (objective, images, condition, _) in built.items():  # warm up
            objective.step(images, condition, 1, noise)
        times = time_interleaved({name: partial(seconds_per_step, *built[name][:3], args.steps, noise)
                                  for name in layouts}, args.rounds)
        network = built["contiguous"][3]
        median = {name: statistics.median(t) for name, t in times.items()}
        results.append({
            "model": kind, "spatial_dims": dims, "size": size, "batch_size": args.batch_size,
            "generator_channels": list(network.generator_channels), "critic_channels": list(network.critic_channels),
            "step_seconds": median,
            "channels_last_speedup": median["contiguous"] / median["channels_last"],
        })
        print(json.dumps(results[-1]))
    report = {"benchmark": "train_step", "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.machine(), "processor": platform.processor(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
