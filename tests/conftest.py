from __future__ import annotations

import csv
import hashlib
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


def tiny_network(spatial_dims: int = 2, channels: int = 1, image_size: tuple[int, ...] | None = None,
                 **overrides) -> NetworkConfig:
    settings = dict(latent_dim=16, embed_dim=16, generator_channels=(32, 16, 8), critic_channels=(8, 16, 32))
    settings.update(overrides)
    return NetworkConfig(spatial_dims, image_size or (16,) * spatial_dims, channels, **settings)


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


def content_key(value):
    """A hashable stand-in for an argument: arrays by shape, dtype and bytes, containers item by item."""
    if isinstance(value, np.ndarray):
        return "array", value.shape, value.dtype.str, hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
    if isinstance(value, (list, tuple)):
        return type(value).__name__, tuple(content_key(v) for v in value)
    return repr(value)


@pytest.fixture(scope="module")
def trained_classifiers() -> dict:
    """The classifiers ``classifiers_trained_once`` has trained in this module, by their inputs."""
    return {}


@pytest.fixture
def classifiers_trained_once(trained_classifiers, monkeypatch):
    """In the test that asks for it: ``train_label_classifier``, as the evaluation suite and the utility
    metrics call it, trains once per distinct input (the same images, labels and settings) in the module
    and hands the same classifier back after that. Training is deterministic for a seed
    (tests/core/evaluation/test_label_classifier.py checks it), so this changes no result: it spares
    retraining the classifiers on the real data that every evaluation of one real set trains. Not for a
    test that compares two trainings."""
    from synthscape.core.evaluation import suite, utility

    train = utility.train_label_classifier

    def once(*args, **kwargs):
        key = tuple(content_key(a) for a in args), tuple(sorted((k, content_key(v)) for k, v in kwargs.items()))
        if key not in trained_classifiers:
            trained_classifiers[key] = train(*args, **kwargs)
        return trained_classifiers[key]

    for module in (suite, utility):
        assert module.train_label_classifier is train
        monkeypatch.setattr(module, "train_label_classifier", once)
    return trained_classifiers
