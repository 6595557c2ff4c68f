"""Loading a run and sampling it: reproducible per (seed, index), labelled, and strict on input."""

import numpy as np
import pytest
from blobs import SCHEMA, Blobs
from conftest import tiny_network, tiny_train

import synthscape
from synthscape.core.errors import SynthscapeError
from synthscape.core.training.loop import train


@pytest.fixture(scope="module", params=[2, 3])
def run(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / f"gan{request.param}d"
    data = Blobs(request.param, 16, 64)
    data.conditions[:, 1] = data.conditions[:, 0] % 2  # tint follows position: a, c dim; b, d bright
    train(data, path, model="gan", schema=SCHEMA, network=tiny_network(request.param),
          config=tiny_train(steps=10), progress=False)
    return path


def test_sample_i_is_the_same_alone_and_in_a_batch(run):
    generator = synthscape.load(run)
    batch = generator.sample(64, seed=7, batch_size=64)
    assert batch.images.shape[0] == 64 and batch.indices.tolist() == list(range(64))
    for i in (0, 17, 63):
        alone = generator.sample(1, seed=7, start=i, batch_size=1)
        np.testing.assert_allclose(alone.images[0], batch.images[i], rtol=0, atol=1e-5)
        assert alone.conditions[0] == batch.conditions[i]
    again = generator.sample(64, seed=7, batch_size=5)
    np.testing.assert_allclose(again.images, batch.images, rtol=0, atol=1e-5)


def test_different_seeds_differ(run):
    generator = synthscape.load(run)
    a = generator.sample(4, {"position": "a", "tint": "dim"}, seed=0).images
    b = generator.sample(4, {"position": "a", "tint": "dim"}, seed=1).images
    assert np.abs(a - b).mean() > 1e-3
    assert np.abs(a[0] - a[1]).mean() > 1e-3  # and samples within a seed differ too


def test_every_sample_reports_its_condition(run):
    samples = synthscape.load(run).sample(40, {"position": "b"}, seed=3)
    assert samples.images.dtype == np.float32
    assert all(c["position"] == "b" for c in samples.conditions)
    assert {c["tint"] for c in samples.conditions} == {"bright"}  # drawn as the training data has it


def test_unknown_condition_is_refused(run):
    generator = synthscape.load(run)
    with pytest.raises(SynthscapeError, match="unknown condition attribute 'colour'; valid attributes: position, tint"):
        generator.sample(2, {"colour": "red"})
    with pytest.raises(SynthscapeError, match="valid values: a, b, c, d"):
        generator.sample(2, {"position": "z"})


def test_wrong_tensor_shapes_are_refused(run):
    generator = synthscape.load(run)
    with pytest.raises(SynthscapeError, match=r"condition must be int64 \[batch, 2\]"):
        generator.generate(np.zeros((2, 16), np.float32), np.zeros((2, 1), np.int64))
    with pytest.raises(SynthscapeError, match=r"z must be float \[2, 16\]"):
        generator.generate(np.zeros((2, 9), np.float32), np.zeros((2, 2), np.int64))


@pytest.mark.parametrize("missing", ["config.json", "generator.safetensors"])
def test_missing_artifact_file_is_a_one_line_error(run, tmp_path, missing):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / missing).unlink()
    with pytest.raises(SynthscapeError) as info:
        synthscape.load(copy)
    assert str(copy / missing) in str(info.value) and "\n" not in str(info.value)


def test_corrupt_weights_are_a_one_line_error(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "generator.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(SynthscapeError, match="is not a readable safetensors file"):
        synthscape.load(copy)


def test_load_refuses_a_missing_path(tmp_path):
    with pytest.raises(SynthscapeError, match="does not exist"):
        synthscape.load(tmp_path / "nope")
