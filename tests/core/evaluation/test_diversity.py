"""Diversity: copies of one image score ~0, unrelated images well above, and a generator that
draws one image per label is caught within each condition even though the whole set looks varied."""

import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.diversity import ms_ssim_metric, pairwise_ms_ssim, within_condition_diversity

SHAPES = {"2d-colour": (3, (32, 32)), "3d": (1, (16, 16, 16))}


def random_blobs(count: int, channels: int, spatial: tuple[int, ...], seed: int) -> np.ndarray:
    """Independent images: 1-3 bright blobs of random place, size and colour, on a noisy background."""
    rng = np.random.default_rng(seed)
    axes = np.stack(np.meshgrid(*[np.arange(s) for s in spatial], indexing="ij"))
    images = np.full((count, channels, *spatial), -1.0)
    for image in images:
        for _ in range(rng.integers(1, 4)):
            centre = rng.uniform(0, spatial[0], len(spatial)).reshape(-1, *[1] * len(spatial))
            blob = np.exp(-((axes - centre) ** 2).sum(0) / (2 * rng.uniform(1.5, 4) ** 2))
            image += rng.uniform(0.5, 1.5, (channels, *[1] * len(spatial))) * blob
    images += rng.normal(0, 0.03, images.shape)
    return np.clip(images, -1, 1).astype(np.float32)


def collapsed(image: np.ndarray, count: int, seed: int) -> np.ndarray:
    """One image again and again, with a little noise: what a mode-collapsed generator draws."""
    noise = np.random.default_rng(seed).normal(0, 0.01, (count, *image.shape))
    return np.clip(image[None] + noise, -1, 1).astype(np.float32)


def test_ms_ssim_is_sized_to_the_image():
    small = ms_ssim_metric((16, 16, 16))
    assert (small.kernel_size, len(small.weights)) == ((3, 3, 3), 3)
    assert len(ms_ssim_metric((32, 32)).weights) == 4
    assert sum(ms_ssim_metric((32, 32)).weights) == pytest.approx(1.0)
    standard = ms_ssim_metric((192, 192))
    assert (standard.kernel_size, len(standard.weights)) == ((11, 11), 5)
    with pytest.raises(SynthscapeError, match="at least 3 voxels"):
        ms_ssim_metric((2, 2))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_collapsed_set_scores_far_below_a_diverse_one(shape):
    channels, spatial = SHAPES[shape]
    diverse = random_blobs(12, channels, spatial, seed=1)
    assert pairwise_ms_ssim(np.repeat(diverse[:1], 4, axis=0)) == pytest.approx(1.0, abs=1e-4)
    diversity_diverse = 1 - pairwise_ms_ssim(diverse)
    diversity_collapsed = 1 - pairwise_ms_ssim(collapsed(diverse[0], 12, seed=2))
    assert diversity_diverse > 0.3
    assert diversity_collapsed < 0.05
    assert diversity_collapsed < 0.5 * diversity_diverse  # so "generated >= half of real" can fail


def test_pair_sampling_is_seeded_and_close_to_all_pairs():
    images = random_blobs(16, 1, (16, 16, 16), seed=3)
    drawn = pairwise_ms_ssim(images, pairs=40, seed=5)
    assert drawn == pairwise_ms_ssim(images, pairs=40, seed=5)
    assert drawn == pytest.approx(pairwise_ms_ssim(images), abs=0.05)
    with pytest.raises(SynthscapeError, match="at least 2 samples"):
        pairwise_ms_ssim(images[:1])


def test_one_image_per_label_is_caught_within_conditions():
    """Across labels the set looks varied; within each label it is one image."""
    per_label = random_blobs(3, 3, (32, 32), seed=4)
    conditions = np.array([[label, 1] for label in range(3) for _ in range(6)])
    images = np.concatenate([collapsed(image, 6, seed=label) for label, image in enumerate(per_label)])
    assert 1 - pairwise_ms_ssim(images) > 0.2
    result = within_condition_diversity(images, conditions)
    assert set(result["groups"]) == {"0,1", "1,1", "2,1"}
    assert result["diversity"] < 0.05


def test_groups_are_scored_separately_and_weighted_by_size():
    diverse = random_blobs(8, 1, (16, 16, 16), seed=5)
    same = collapsed(diverse[0], 4, seed=6)
    lonely = random_blobs(1, 1, (16, 16, 16), seed=7)
    images = np.concatenate([diverse, same, lonely])
    conditions = np.array([[0, 0]] * 8 + [[1, 0]] * 4 + [[1, 1]])
    result = within_condition_diversity(images, conditions)
    assert set(result["groups"]) == {"0,0", "1,0"}  # the single [1, 1] sample has no pair
    assert result["groups"]["0,0"] > 0.3 and result["groups"]["1,0"] < 0.05
    weighted = (8 * result["groups"]["0,0"] + 4 * result["groups"]["1,0"]) / 12
    assert result["diversity"] == pytest.approx(weighted)


def test_within_condition_diversity_refuses_bad_input():
    images = random_blobs(4, 1, (16, 16), seed=8)
    with pytest.raises(SynthscapeError, match=r"conditions must be \[N, A\] with N = 4"):
        within_condition_diversity(images, np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(SynthscapeError, match="no condition has 2 or more"):
        within_condition_diversity(images, np.arange(8).reshape(4, 2))
