"""``synthscape run``: the main job, simulate -> train -> sample, on the embedded lung-ct simulator.

Sized to finish in minutes on a laptop CPU (32^3 volumes, a few hundred GAN steps). Evaluation
and export join the pipeline as those parts land.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from synthscape.domains import get_domain
from synthscape.domains.base import write_samples

log = logging.getLogger("synthscape")


@dataclass
class Pipeline:
    domain: str = "lung-ct"
    simulate_count: int = 64
    size: int = 32
    seed: int = 0
    model: str = "gan"
    steps: int = 300
    batch_size: int = 8
    samples_per_condition: int = 4
    formats: tuple[str, ...] = ("nifti", "dicom")
    conditions: list[dict[str, str]] = field(default_factory=lambda: [
        {"nodule": "absent"},
        {"nodule": "present", "size": "large"},
        {"nodule": "present", "size": "medium", "kind": "solid"},
    ])


def run_pipeline(out: Path, pipeline: Pipeline, device: str = "auto") -> dict[str, float]:
    """Run every stage into ``out`` (data/, run/, samples/); returns seconds per stage."""
    from synthscape.core.artifacts import load_run
    from synthscape.core.config import TrainConfig
    from synthscape.core.fileio import atomic_dir
    from synthscape.core.training import train

    domain = get_domain(pipeline.domain)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with atomic_dir(out / "data") as tmp:
        domain.simulate(tmp, count=pipeline.simulate_count, seed=pipeline.seed, size=pipeline.size)
    seconds["simulate"] = time.perf_counter() - start
    log.info("simulated %d %s volumes in %.0f s -> %s", pipeline.simulate_count, domain.name, seconds["simulate"], out / "data")

    start = time.perf_counter()
    dataset = domain.dataset(out / "data")
    config = TrainConfig(steps=pipeline.steps, batch_size=pipeline.batch_size, seed=pipeline.seed,
                         eval_every=max(1, pipeline.steps // 3), checkpoint_every=max(1, pipeline.steps // 3))
    train(dataset, out / "run", model=pipeline.model, schema=domain.schema, domain=domain.name, config=config,
          domain_meta=dataset.meta, device=device)
    seconds["train"] = time.perf_counter() - start
    log.info("trained a %s for %d steps in %.0f s -> %s", pipeline.model, pipeline.steps, seconds["train"], out / "run")

    start = time.perf_counter()
    generator = load_run(out / "run")
    for condition in pipeline.conditions:
        name = ",".join(f"{k}={v}" for k, v in condition.items())
        samples = generator.sample(pipeline.samples_per_condition, condition, seed=pipeline.seed)
        with atomic_dir(out / "samples" / name) as tmp:
            write_samples(domain, samples, tmp, formats=pipeline.formats, meta=generator.domain_meta)
    seconds["sample"] = time.perf_counter() - start
    log.info("sampled %d conditions x %d volumes (%s) in %.0f s -> %s", len(pipeline.conditions),
             pipeline.samples_per_condition, "+".join(pipeline.formats), seconds["sample"], out / "samples")
    return seconds
