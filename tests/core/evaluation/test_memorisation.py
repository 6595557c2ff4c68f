"""Memorisation: exact copies of training data, near copies, and fresh draws from the same
distribution must come out as copying, copying, and healthy."""

import numpy as np
import pytest
from blobs import Blobs

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.memorisation import distance_to_closest_record, nearest_distances


def test_nearest_distance_is_the_rms_gap_per_voxel_to_the_nearest_reference():
    references = np.stack([np.full((1, 8, 8), level) for level in (-0.5, -0.25, 0.0, 0.25, 0.5)])
    queries = np.stack([np.full((1, 8, 8), level) for level in (0.3, -0.5, 0.45)])
    queries[2, 0, :4] = 0.55  # half the pixels 0.05 above 0.5, half 0.05 below: RMS 0.05
    for batch in (1, 2, 256):
        distances, indices = nearest_distances(queries, references, batch=batch)
        assert indices.tolist() == [3, 0, 4]
        np.testing.assert_allclose(distances, [0.05, 0.0, 0.05], atol=1e-6)
    with pytest.raises(SynthscapeError, match="same sample shape"):
        nearest_distances(queries, references[:, :, :4])


@pytest.fixture(scope="module", params=[2, 3])
def data(request):
    dims = request.param
    return {
        "train": Blobs(dims, 16, 128, seed=1).images,
        "holdout": Blobs(dims, 16, 128, seed=2).images,
        "fresh": Blobs(dims, 16, 128, seed=3).images,
    }


def test_exact_copies_of_training_data_are_caught_and_paired(data):
    train = data["train"]
    copied = np.random.default_rng(0).permutation(len(train))[:64]
    result = distance_to_closest_record(train[copied], train, data["holdout"])
    assert result["ratio"] == pytest.approx(0.0, abs=1e-6)
    assert result["near_copy_share"] == 1.0 and result["exact_copy_share"] == 1.0
    assert len(result["closest_pairs"]) == 8
    for generated, nearest, distance in result["closest_pairs"]:
        assert nearest == copied[generated] and distance < 1e-6


def test_near_copies_are_caught_though_not_exact(data):
    train = data["train"]
    noisy = train[:64] + np.random.default_rng(1).normal(0, 0.01, train[:64].shape).astype(np.float32)
    result = distance_to_closest_record(noisy, train, data["holdout"])
    assert result["exact_copy_share"] == 0.0
    assert result["near_copy_share"] > 0.9 and result["ratio"] < 0.5


def test_fresh_draws_from_the_training_distribution_look_healthy(data):
    result = distance_to_closest_record(data["fresh"], data["train"], data["holdout"])
    assert 0.7 < result["ratio"] < 1.4
    assert result["near_copy_share"] < 0.2 and result["exact_copy_share"] == 0.0
    distances = [d for _, _, d in result["closest_pairs"]]
    assert distances == sorted(distances) and distances[0] > 0


def test_a_holdout_that_duplicates_training_data_is_refused(data):
    with pytest.raises(SynthscapeError, match="held-out samples are copies"):
        distance_to_closest_record(data["fresh"], data["train"], data["train"][:32])
