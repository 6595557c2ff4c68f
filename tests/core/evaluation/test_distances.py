"""Fidelity distances between sets: 0 for identical sets, known values for known shifts, and
growing with the shift, so a generator whose intensities or features drift fails them."""

import numpy as np
import pytest
from blobs import Blobs

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.distances import frechet_distance, histograms, intensity_histogram_distance, mmd

SHAPES = {"2d-colour": (2, 32, 3), "3d": (3, 16, 1)}


@pytest.fixture(scope="module", params=list(SHAPES))
def sets(request):
    """Two independent draws of one distribution, squeezed into [-0.5, 0.5] so shifts stay in range."""
    dims, size, channels = SHAPES[request.param]
    a = Blobs(dims, size, 48, channels=channels, seed=1).images * 0.5
    b = Blobs(dims, size, 48, channels=channels, seed=2).images * 0.5
    return a, b


# -- Frechet distance ----------------------------------------------------------------------


def test_frechet_is_zero_for_identical_sets_and_the_squared_shift_for_a_moved_one():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))  # correlated features
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-9)
    shift = np.array([0.5, -1.0, 0.0, 2.0, 0.0, 0.0])
    assert frechet_distance(features, features + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    values = [frechet_distance(features, features + s * shift) for s in (0.25, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] > 0


def test_frechet_sees_a_change_of_spread_not_only_of_mean():
    # b = 2a: cov_b = 4 cov_a, so tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)) = tr(cov_a), plus |mu_a|^2
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 5)) * [1.0, 2.0, 0.5, 1.0, 3.0] + 0.3
    expected = float(a.mean(0) @ a.mean(0) + np.trace(np.cov(a.T)))
    assert frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-9)


def test_frechet_refuses_mismatched_features():
    with pytest.raises(SynthscapeError, match="same width"):
        frechet_distance(np.zeros((10, 4)), np.zeros((10, 5)))
    with pytest.raises(SynthscapeError, match=r"\[N >= 2, F\]"):
        frechet_distance(np.zeros(10), np.zeros((10, 1)))


# -- MMD -------------------------------------------------------------------------------------


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_a_shift(sets):
    a, b = sets
    same = abs(mmd(a, a))
    assert same < 5e-3 and abs(mmd(a, b)) < 5e-3
    shifted = [mmd(a, b + s) for s in (0.1, 0.2, 0.4)]
    assert shifted == sorted(shifted)
    assert shifted[1] > 10 * same


def test_mmd_catches_a_collapsed_set_with_plausible_images(sets):
    a, b = sets
    collapsed = np.repeat(b[:1], len(b), axis=0)
    # |mmd(a, a)| is the estimator's own spread (it is unbiased, so slightly negative there)
    assert mmd(a, collapsed) > 10 * max(abs(mmd(a, a)), abs(mmd(a, b)))


def test_mmd_takes_sets_of_different_sizes_and_refuses_different_shapes(sets):
    a, b = sets
    assert abs(mmd(a, b[:20])) < 5e-3
    with pytest.raises(SynthscapeError, match="same sample shape"):
        mmd(a, b[:, :, :8])


# -- intensity histograms --------------------------------------------------------------------


def test_histogram_distance_is_zero_for_identical_sets_and_the_shift_for_a_moved_one(sets):
    a, b = sets
    assert intensity_histogram_distance(a, a) == 0.0
    assert intensity_histogram_distance(a, b) < 0.01
    for shift in (0.1, 0.2, 0.3):  # W1 of a translated distribution is the translation (to a bin width)
        assert intensity_histogram_distance(a, a + shift) == pytest.approx(shift, abs=2 / 64)
    assert intensity_histogram_distance(a, 1.8 * a) > 0.05  # a contrast change, same mean-ish


def test_histogram_distance_compares_colour_channel_by_channel():
    a = Blobs(2, 32, 16, channels=3, seed=1).images * 0.5
    tinted = a.copy()
    tinted[:, 0] += 0.3  # only red brighter: 0.3 on one channel of three
    assert intensity_histogram_distance(a, tinted) == pytest.approx(0.1, abs=0.01)
    warm = a + np.array([0.2, 0.0, -0.2], dtype=np.float32).reshape(1, 3, 1, 1)
    # red and blue swapped: one pooled histogram would not change at all; per channel it is 0.4, 0, 0.4
    assert intensity_histogram_distance(warm, warm[:, ::-1]) == pytest.approx(0.8 / 3, abs=0.01)


def test_histograms_count_every_voxel_per_channel_clipping_out_of_range_values():
    images = np.full((2, 3, 4, 4), 0.0, dtype=np.float32)
    images[:, 1] = 5.0  # out of range: counted in the last bin
    images[:, 2] = -1.0
    edges, counts = histograms(images, bins=4)
    np.testing.assert_allclose(edges, [-1.0, -0.5, 0.0, 0.5, 1.0])
    assert counts.tolist() == [[0, 0, 32, 0], [0, 0, 0, 32], [32, 0, 0, 0]]
    with pytest.raises(SynthscapeError, match="low < high"):
        histograms(images, bins=4, value_range=(1, -1))
    with pytest.raises(SynthscapeError, match="same channels"):
        intensity_histogram_distance(images, images[:, :1])
