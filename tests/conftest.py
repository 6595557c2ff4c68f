from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

TESTS = Path(__file__).resolve().parent  # helpers (blobs.py, this file) import from here in every test folder
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))

from blobs import SCHEMA, Blobs  # noqa: E402

from synthscape.core.schema.config import NetworkConfig, TrainConfig  # noqa: E402
from synthscape.domains.base import read_meta, register, unregister  # noqa: E402


def tiny_network(spatial_dims: int = 2, channels: int = 1, **overrides) -> NetworkConfig:
    settings = dict(latent_dim=16, embed_dim=16, generator_channels=(32, 16, 8), critic_channels=(8, 16, 32))
    settings.update(overrides)
    return NetworkConfig(spatial_dims, (16,) * spatial_dims, channels, **settings)


def tiny_train(**overrides) -> TrainConfig:
    settings = dict(steps=20, batch_size=8, log_every=5, eval_every=10, checkpoint_every=10, samples_per_grid=4,
                    lr_generator=5e-4, lr_critic=5e-4, r1_every=4)
    settings.update(overrides)
    return TrainConfig(**settings)


@dataclass(frozen=True)
class BlobsMeta:
    """The blobs data set's meta: where it came from."""

    source: str = "blobs"


class BlobsDomain:
    """A real (if tiny) domain for the CLI tests: .npy files + labels.csv in, .npy + labels.csv out."""

    name = "blobs"
    schema = SCHEMA
    spatial_dims = 2
    meta_type = BlobsMeta

    def simulate(self, out: Path, count: int, seed: int, **options) -> Path:
        data = Blobs(2, 16, count, seed=seed)
        return self.write(data.images, SCHEMA.decode(data.conditions), out, formats=())

    def dataset(self, path: Path, **options):
        with (path / "labels.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        images = np.stack([np.load(path / row["path"]) for row in rows])
        conditions = SCHEMA.encode([{k: row[k] for k in SCHEMA.names} for row in rows])
        dataset = torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(conditions))
        dataset.conditions = conditions
        dataset.meta = {"source": "blobs"}
        return dataset

    def write(self, images, conditions, out: Path, formats=None, *, seed=None, indices=None, meta=None) -> list[Path]:
        read_meta(BlobsMeta, meta, self.name)
        out.mkdir(parents=True, exist_ok=True)
        files = []
        for i, image in zip(range(len(images)) if indices is None else indices, images):
            files.append(out / f"{i:05d}.npy")
            np.save(files[-1], image)
        with (out / "labels.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", *SCHEMA.names])
            for f, condition in zip(files, conditions):
                writer.writerow([f.name, *[condition[n] for n in SCHEMA.names]])
        return [*files, out / "labels.csv"]


def train_blobs_run(root: Path, checkpoint_every: int = 2) -> tuple[Path, Path]:
    """``synthscape simulate blobs`` (8 items) and a GAN trained 2 steps on them through the CLI, under
    ``root``: the run folder a user would have, in seconds. Returns (data, run). The blobs domain must
    be registered."""
    from synthscape.cli import main

    data, run = root / "data", root / "run"
    assert main(["-q", "simulate", "blobs", "--out", str(data), "--count", "8"]) == 0
    assert main(["-q", "train", "blobs", "--data", str(data), "--model", "gan", "--out", str(run), "--steps", "2",
                 "--batch-size", "4", "--checkpoint-every", str(checkpoint_every), "--eval-every", "2"]) == 0
    return data, run


@pytest.fixture
def blobs_domain():
    domain = register(BlobsDomain(), replace=True)
    yield domain
    unregister(domain.name)
