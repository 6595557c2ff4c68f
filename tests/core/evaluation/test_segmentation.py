"""The segmenter finds a structure where the image shows it, so its Dice against a mask says whether
an image obeys that mask.

Known answers: bright spheres (class 2) in a darker box (class 1) are found on held-out volumes
(Dice > 0.7); on the same volumes with the sphere painted elsewhere than the mask says, Dice falls
below 0.3, which is what mask fidelity must catch. ``dice`` is checked by hand.
"""

import math

import numpy as np
import pytest
import torch

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.segmentation import (
    class_iou,
    dice,
    mask_fidelity,
    scene_iou,
    segmentation_utility,
    train_segmenter,
)

SIZE = 16
RADIUS = 2.5


def sphere_set(count: int, seed: int, moved: bool = False, spatial=(SIZE,) * 3):
    """Images ``[N, 1, *spatial]`` and label maps: background 0, a box of class 1, a sphere of class 2
    inside it. ``moved``: the image's sphere is painted away from where the label map puts it."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in spatial], indexing="ij")).astype(np.float64)
    shape = np.array(spatial, dtype=np.float64)
    images = np.zeros((count, 1, *spatial), np.float32)
    labels = np.zeros((count, *spatial), np.uint8)
    box = tuple(slice(2, n - 2) for n in spatial)

    def ball(centre):
        return ((grid - centre.reshape(-1, *[1] * len(spatial))) ** 2).sum(0) <= RADIUS ** 2

    for i in range(count):
        centre = rng.uniform(5, shape - 5)
        labels[i][box] = 1
        labels[i][ball(centre)] = 2
        painted = labels[i].copy()
        if moved:  # 7 voxels along the first axis, more than a diameter: no overlap with the mask's
            moved_centre = centre.copy()
            moved_centre[0] += 7 if centre[0] < shape[0] / 2 else -7
            painted[painted == 2] = 1
            painted[ball(moved_centre)] = 2
        values = np.array([-0.9, -0.3, 0.6], np.float32)[painted]
        images[i, 0] = np.clip(values + 0.1 * rng.standard_normal(spatial), -1, 1)
    return images, labels


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads made these tiny models up to ten
    times slower, not faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained():
    return train_segmenter(*sphere_set(24, seed=0), 3, steps=100, seed=0)


def test_finds_the_sphere_where_the_image_shows_it(trained):
    images, labels = sphere_set(8, seed=1)
    predicted = trained.predict(images)
    assert predicted.shape == labels.shape and predicted.dtype == np.uint8
    held_out = dice(predicted, labels, [2])
    assert held_out.min() > 0.7, f"held-out sphere Dice {np.round(held_out, 2)}"
    assert mask_fidelity(trained, images, labels, [2]) == pytest.approx(held_out.mean())


def test_a_sphere_away_from_its_mask_scores_low(trained):
    images, labels = sphere_set(8, seed=1, moved=True)
    assert mask_fidelity(trained, images, labels, [2]) < 0.3


def test_2d_any_size_and_deterministic():
    images, labels = sphere_set(16, seed=2, spatial=(18, 14))  # neither divides by 4: padded and cropped back
    first = train_segmenter(images, labels, 3, steps=15, seed=3).predict(images[:5], batch_size=2)
    again = train_segmenter(images, labels, 3, steps=15, seed=3).predict(images[:5])
    other = train_segmenter(images, labels, 3, steps=15, seed=4).predict(images[:5])
    assert first.shape == (5, 18, 14) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_dice_by_hand():
    truth = np.zeros((4, 2, 3), np.uint8)
    truth[0, 0, :2] = 2
    truth[1, 0, 0] = 2
    truth[3, 1, :] = [2, 3, 1]
    predicted = truth.copy()
    predicted[1] = 0
    predicted[1, 1, 2] = 2  # disjoint from the truth
    predicted[3, 1, :] = [3, 3, 3]  # ids 2 and 3 merged: 2 of 3 predicted voxels right
    scores = dice(predicted, truth, [2, 3])
    assert scores[0] == 1.0 and scores[1] == 0.0 and math.isnan(scores[2])  # item 2: both empty
    assert scores[3] == pytest.approx(2 * 2 / (3 + 2))
    assert dice(predicted, truth, [3])[3] == pytest.approx(2 * 1 / (3 + 1))
    with pytest.raises(SynthscapeError, match="one shape"):
        dice(predicted[:, :1], truth, [2])


def test_class_iou_by_hand():
    """Pixels summed over the whole set, per class; a class in neither map is NaN, one only
    predicted scores 0."""
    truth = np.array([[[0, 0, 1, 1]], [[2, 2, 2, 0]]], np.uint8)
    predicted = np.array([[[0, 1, 1, 1]], [[2, 2, 0, 3]]], np.uint8)
    iou = class_iou(predicted, truth, 5)
    # class 0: truth {0,1,7}, predicted {0,6}: 1 hit of 4; class 1: truth {2,3}, predicted {1,2,3}: 2 of 3
    # class 2: truth {4,5,6}, predicted {4,5}: 2 of 3; class 3: predicted only; class 4: nowhere
    np.testing.assert_allclose(iou[:4], [1 / 4, 2 / 3, 2 / 3, 0.0])
    assert math.isnan(iou[4])
    with pytest.raises(SynthscapeError, match="one shape"):
        class_iou(predicted[:1], truth, 5)


def test_scene_iou_finds_the_sphere_and_misses_it_when_moved(trained):
    images, labels = sphere_set(8, seed=1)
    found = scene_iou(trained, images, labels)
    moved = scene_iou(trained, *sphere_set(8, seed=1, moved=True))
    assert found.shape == (3,) and found[2] > 0.6 and moved[2] < 0.2, (found, moved)
    assert found[0] > 0.9 and found[1] > 0.8  # background and box: the easy classes


def test_mask_fidelity_counts_only_items_that_hold_the_structure(trained):
    images, labels = sphere_set(4, seed=5)
    labels[1:][labels[1:] == 2] = 1  # three masks without a sphere: left out, not scored 0
    assert mask_fidelity(trained, images, labels, [2]) == pytest.approx(dice(trained.predict(images[:1]), labels[:1], [2])[0])
    labels[0][labels[0] == 2] = 1
    assert math.isnan(mask_fidelity(trained, images, labels, [2]))


def test_segmentation_utility_ratio():
    """Synthetic pairs whose spheres sit away from their masks teach a segmenter the wrong place."""
    plane = (16, 16)
    real_train, real_test = sphere_set(16, seed=6, spatial=plane), sphere_set(8, seed=8, spatial=plane)
    synthetic = sphere_set(16, seed=7, moved=True, spatial=plane)
    scores = segmentation_utility(synthetic, real_train, real_test, 3, [2], steps=80, seed=0)
    assert set(scores) == {"tstr", "trtr", "ratio"}
    assert 0 <= scores["tstr"] < 0.3 and 0.7 < scores["trtr"] <= 1, scores
    assert scores["ratio"] == pytest.approx(scores["tstr"] / scores["trtr"])


def test_refuses_mismatched_sets():
    images, labels = sphere_set(3, seed=9)
    with pytest.raises(SynthscapeError, match="label maps must be"):
        train_segmenter(images, labels[:, :8], 3, steps=1)
    with pytest.raises(SynthscapeError, match="outside 0..1"):
        train_segmenter(images, labels, 2, steps=1)
    with pytest.raises(SynthscapeError, match="synthetic images must be"):
        segmentation_utility((images[:, :, :8], labels[:, :8]), (images, labels), (images, labels), 3, [2], steps=1)
