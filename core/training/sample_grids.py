"""The sample grids a run writes as it trains (``samples/step-N/``): pictures to look at, not metrics.

A class-only model gets one grid per attribute value (the other attributes drawn from the data),
with the same seeds each time, so grids of successive steps compare. A layout model gets one grid
of the same few training label maps rendered with their own conditions at every evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.grids import grid, write_png
from synthscape.core.networks.artifacts import TorchSampler
from synthscape.core.sampling.sampler import noise_map, plan
from synthscape.core.schema.config import ArtifactConfig


def write_grids(run: Path, step: int, config: ArtifactConfig, sampler: TorchSampler) -> None:
    """One grid per attribute value (other attributes drawn from the data), same seeds each time."""
    folder = run / "samples" / f"step-{step:08d}"
    for attribute, values in config.schema.attributes:
        for value in values:
            samples = sampler.sample(config.train.samples_per_grid, {attribute: value}, seed=config.train.seed)
            write_png(grid_path(folder, attribute, value), grid(samples.images))


def grid_path(folder: Path, attribute: str, value: str) -> Path:
    """``folder/ATTRIBUTE=VALUE.png``, refused unless it is a file directly inside ``folder``: the
    schema's names are checked where config.json is read (``checked_name``), and this checks again."""
    from synthscape.core.schema.conditions import checked_name

    path = folder / f"{checked_name(attribute, 'an attribute name')}={checked_name(value, 'a value')}.png"
    if path.parent != folder or path.resolve().parent != folder.resolve():
        raise SynthscapeError(f"the sample grid {path} would leave {folder}")
    return path


def write_layout_grid(run: Path, step: int, config: ArtifactConfig, sampler: TorchSampler,
                      layouts: np.ndarray, conditions: np.ndarray) -> None:
    """``layout=training.png``: the label maps ``layouts`` ``[n, *S]`` rendered with their conditions,
    each with the latent and noise of sample ``i`` of the run's seed (the same every time)."""
    seed, count = config.train.seed, len(layouts)
    latents = plan(config.schema, config.prior, config.network.latent_dim, count, seed=seed)[0]
    noise = np.stack([noise_map(seed, i, layouts.shape[1:]) for i in range(count)])
    images = sampler.generate(latents, conditions.astype(np.int64), layouts.astype(np.int64), noise)
    write_png(grid_path(run / "samples" / f"step-{step:08d}", "layout", "training"), grid(images))
