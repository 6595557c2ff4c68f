"""SyntheticDataset: item i is sample start + i of seed, the same in every worker and epoch, with the
condition mix asked for, in the real data sets' item format; from a run folder and an .onnx file."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_network
from torch.utils.data import ConcatDataset, DataLoader

import synthscape
from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.artifacts import save_generator
from synthscape.core.networks.nets import ConditionalGenerator
from synthscape.core.schema.conditions import ConditionPrior
from synthscape.core.schema.config import ArtifactConfig
from synthscape.domains import get_domain
from synthscape.exports.onnx_export import export_onnx

LUNG = get_domain("lung-ct")
# Training frequencies of the untrained run: nodule present in 4 of 10, always with a size and a kind.
COUNTS = [[[0, 0, 0], 6], [[1, 1, 1], 1], [[1, 3, 2], 1], [[1, 2, 3], 2]]
MIX = {"nodule=present,size=large": 1, "nodule=absent": 3}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """An untrained 16^3 lung-ct generator: the data set only has to be the sampler's, not good."""
    torch.manual_seed(0)
    network = tiny_network(3, 1)
    config = ArtifactConfig("lung-ct", "gan", LUNG.schema, ConditionPrior.from_list(LUNG.schema, COUNTS), network,
                            domain_meta={"hu_window": [-1024, 600], "spacing": [2.0, 2.0, 2.0]})
    folder = tmp_path_factory.mktemp("synthetic") / "run"
    save_generator(folder, config, ConditionalGenerator(network, LUNG.schema.cardinalities).eval())
    return folder


@pytest.fixture(scope="module")
def onnx_file(run) -> Path:
    path = run.parent / "generator.onnx"
    export_onnx(run, path)
    return path


@pytest.fixture(params=["run", "onnx"])
def model(request, run) -> Path:
    return run if request.param == "run" else request.getfixturevalue("onnx_file")


def test_item_i_is_sample_start_plus_i_of_seed(model):
    dataset = synthscape.SyntheticDataset(model, MIX, length=6, seed=5, start=3)
    sampler = synthscape.load(model)
    for i in range(len(dataset)):
        image, condition = dataset[i]
        expected = sampler.sample(1, dataset.requested(i), seed=5, start=3 + i)
        assert torch.equal(image, torch.from_numpy(expected.images[0]))
        encoded = dataset.schema.encode(expected.conditions)[0]
        assert condition.tolist() == dataset.conditions[i].tolist() == encoded.tolist()
        assert dataset.schema.decode(condition[None])[0]["nodule"] == dataset.requested(i)["nodule"]
    # The same sample index gives the same item whatever the data set's start; a batch gives the items one by one.
    shifted = synthscape.SyntheticDataset(model, MIX, length=9, seed=5)
    batch = shifted.__getitems__([3, 4, 5, 6, 7, 8])
    for i, (image, condition) in enumerate(batch):
        np.testing.assert_allclose(image.numpy(), dataset[i][0].numpy(), rtol=0, atol=1e-5)
        assert torch.equal(condition, dataset[i][1])
    assert torch.equal(dataset[-1][0], dataset[5][0])
    with pytest.raises(IndexError):
        dataset[6]


def test_items_are_the_same_in_workers_and_epochs(model):
    dataset = synthscape.SyntheticDataset(model, MIX, length=10, seed=2)

    def epoch(workers: int) -> tuple[torch.Tensor, torch.Tensor]:
        batches = list(DataLoader(dataset, batch_size=4, num_workers=workers))
        return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])

    first, second, inline = epoch(2), epoch(2), epoch(0)
    assert first[0].shape == (10, 1, 16, 16, 16) and first[1].shape == (10, 3)
    assert torch.equal(second[0], first[0]) and torch.equal(second[1], first[1])
    # Workers run torch on one thread, this process on more: float sums may differ in the last bits.
    np.testing.assert_allclose(inline[0].numpy(), first[0].numpy(), rtol=0, atol=1e-5)
    assert torch.equal(inline[1], first[1])
    assert torch.equal(first[1], torch.from_numpy(dataset.conditions))
    assert not torch.allclose(first[0][0], first[0][1])  # different samples, not one repeated
    clone = pickle.loads(pickle.dumps(dataset))  # spawn workers: the live sampler is rebuilt from the path
    assert clone._sampler is None and torch.equal(clone[7][0], dataset[7][0])


def test_conditions_follow_the_weights_without_generating(run):
    mixed = synthscape.SyntheticDataset(run, MIX, length=800, seed=1)
    mixed.sampler.generate = None  # .conditions must not run the network
    conditions = mixed.schema.decode(mixed.conditions)
    present = [c for c in conditions if c["nodule"] == "present"]
    assert abs(len(present) / 800 - 0.25) < 0.05  # binomial sd 0.015
    assert all(c["size"] == "large" for c in present)
    assert all(c["size"] == "none" and c["kind"] == "none" for c in conditions if c["nodule"] == "absent")
    as_pairs = [({"nodule": "present", "size": "large"}, 0.5), ({"nodule": "absent"}, 1.5)]
    assert np.array_equal(synthscape.SyntheticDataset(run, as_pairs, length=800, seed=1).conditions, mixed.conditions)

    prior = synthscape.SyntheticDataset(run, None, length=800, seed=1).conditions  # the training frequencies
    assert abs((prior[:, 0] == 1).mean() - 0.4) < 0.06
    one = synthscape.SyntheticDataset(run, {"nodule": "present"}, length=300, seed=1).conditions
    assert (one[:, 0] == 1).all() and (one[:, 1] != 0).all()  # size drawn among the sizes nodules had
    assert abs((one[:, 1] == 2).mean() - 0.5) < 0.1  # medium: 2 of the 4 nodules in the training counts


def test_mixes_with_real_lung_ct_data(run, tmp_path):
    data = tmp_path / "real"
    assert main(["-q", "simulate", "lung-ct", "--out", str(data), "--count", "4", "--size", "16"]) == 0
    real = LUNG.dataset(data, progress=False)
    synthetic = synthscape.SyntheticDataset(run, {"nodule": "present"}, length=6)
    both = ConcatDataset([real, synthetic])
    assert len(both) == 10
    (real_image, real_condition), (fake_image, fake_condition) = both[0], both[4]
    assert real_image.shape == fake_image.shape == (1, 16, 16, 16)
    assert real_image.dtype == fake_image.dtype == torch.float32
    assert real_condition.shape == fake_condition.shape == (3,)
    assert real_condition.dtype == fake_condition.dtype == torch.int64
    assert -1 <= fake_image.min() and fake_image.max() <= 1
    images, conditions = next(iter(DataLoader(both, batch_size=10)))
    assert images.shape == (10, 1, 16, 16, 16) and conditions.shape == (10, 3)
    assert np.array_equal(np.concatenate([real.conditions, synthetic.conditions]), conditions.numpy())


@pytest.mark.parametrize(("conditions", "message"), [
    ({"colour": "red"}, r"unknown condition attribute 'colour'; valid attributes: nodule, size, kind"),
    ({"nodule=maybe": 1.0}, r"unknown value 'maybe' for condition attribute 'nodule'; valid values: absent, present"),
    ([({"size": "huge"}, 1.0)], r"valid values: none, small, medium, large"),
    ({"nodule": 1.0}, r"condition 'nodule' is not of the form attribute=value"),
    ({"nodule=present": -1.0}, r"must be finite and non-negative, got -1.0"),
    ({"nodule=present": 0, "nodule=absent": 0}, r"must not all be zero"),
    ("nodule=present", r"conditions must be None, a condition dict"),
])
def test_bad_conditions_are_refused(run, conditions, message):
    with pytest.raises(SynthscapeError, match=message):
        synthscape.SyntheticDataset(run, conditions, length=4)


def test_bad_arguments_are_refused(run, onnx_file, tmp_path):
    with pytest.raises(SynthscapeError, match="length must be a non-negative integer, got -1"):
        synthscape.SyntheticDataset(run, length=-1)
    with pytest.raises(SynthscapeError, match="does not exist"):
        synthscape.SyntheticDataset(tmp_path / "missing", length=4)
    loaded = synthscape.SyntheticDataset(synthscape.load(onnx_file), length=2)  # fine in this process ...
    assert loaded[0][0].shape == (1, 16, 16, 16)
    with pytest.raises(SynthscapeError, match="give SyntheticDataset the model's path instead"):
        pickle.dumps(loaded)  # ... but an onnxruntime session cannot go to a worker


def test_transform_is_applied_to_the_image(run):
    plain = synthscape.SyntheticDataset(run, length=2)
    flipped = synthscape.SyntheticDataset(run, length=2, transform=lambda image: image.flip(-1))
    assert torch.equal(flipped[1][0], plain[1][0].flip(-1))
    assert torch.equal(flipped.__getitems__([1])[0][0], plain.__getitems__([1])[0][0].flip(-1))


def test_import_synthscape_stays_torch_free():
    code = ("import sys, synthscape; assert 'torch' not in sys.modules; "
            "assert synthscape.SyntheticDataset.__module__ == 'synthscape.synthetic_dataset'")
    subprocess.run([sys.executable, "-c", code], check=True)
