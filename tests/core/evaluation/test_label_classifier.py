"""The label classifier reads labels back from real data, and only when images carry them.

Known answers: blob position is readable (accuracy >= 0.9 held out); with labels shuffled
relative to images nothing is learnable (accuracy ~ chance, the share of the commonest test
label); with labels cyclically swapped the classifier learns the swap (accuracy ~ 0 against the
true labels).
"""

import numpy as np
import pytest
import torch
from blobs import SCHEMA, Blobs

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.label_classifier import LabelClassifier, train_label_classifier

CARDINALITIES = SCHEMA.cardinalities  # position: 4, tint: 2
# 3D tint is learnt suddenly between 200 steps (held-out 0.52, chance) and 300 (0.99) on this machine's
# packages (torch 2.13, MONAI 1.6.1, numpy 2.4); 200 passed on earlier installs, so 300 keeps a margin
STEPS = {2: 100, 3: 300}


def blobs(spatial_dims):
    return Blobs(spatial_dims, 16, 256, seed=0), Blobs(spatial_dims, 16, 128, seed=1)


@pytest.fixture(scope="module")
def trained_2d():
    train, test = blobs(2)
    return train_label_classifier(train.images, train.conditions, CARDINALITIES, 2, steps=STEPS[2], seed=0), test


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_reads_labels_of_held_out_items(spatial_dims, trained_2d):
    if spatial_dims == 2:
        classifier, test = trained_2d
    else:
        train, test = blobs(3)
        classifier = train_label_classifier(train.images, train.conditions, CARDINALITIES, 3, steps=STEPS[3], seed=0)
    position, tint = classifier.accuracy(test.images, test.conditions)
    assert position >= 0.9 and tint >= 0.9, f"{spatial_dims}D held-out accuracy {position:.2f}, {tint:.2f}"


def test_shuffled_labels_fall_to_chance():
    train, test = blobs(2)
    chance = np.bincount(test.conditions[:, 0]).max() / len(test)  # always answering the commonest label
    accuracies = []
    for seed in range(3):  # one shuffle maps whole blob clusters to one label: average a few
        shuffled = train.conditions[np.random.default_rng(seed).permutation(len(train))]
        classifier = train_label_classifier(train.images, shuffled, CARDINALITIES, 2, steps=STEPS[2], seed=seed)
        accuracies.append(classifier.accuracy(test.images, test.conditions)[0])
    assert np.mean(accuracies) < min(0.6, chance + 0.15), f"shuffled labels: {accuracies}, chance {chance:.2f}"


def test_swapped_labels_are_learned_as_swapped():
    train, test = blobs(2)
    swapped = train.conditions.copy()
    swapped[:, 0] = (swapped[:, 0] + 1) % 4
    classifier = train_label_classifier(train.images, swapped, CARDINALITIES, 2, steps=STEPS[2], seed=0)
    assert classifier.accuracy(test.images, test.conditions)[0] < 0.1
    test_swapped = test.conditions.copy()
    test_swapped[:, 0] = (test_swapped[:, 0] + 1) % 4
    assert classifier.accuracy(test.images, test_swapped)[0] >= 0.9


def test_outputs_shapes_dtypes_and_batching(trained_2d):
    classifier, test = trained_2d
    predicted, features = classifier.predict(test.images), classifier.features(test.images)
    assert predicted.shape == (128, 2) and predicted.dtype == np.int64
    assert predicted.min() >= 0 and (predicted.max(0) < np.array(CARDINALITIES)).all()
    assert features.shape == (128, classifier.model.feature_dim) and features.dtype == np.float32
    assert np.isfinite(features).all() and features.std(0).max() > 0
    assert classifier.predict(test.images[:0]).shape == (0, 2)
    assert classifier.features(test.images[:0]).shape == (0, classifier.model.feature_dim)
    classifier.batch_size = 7
    try:
        assert (classifier.predict(test.images) == predicted).all()
        np.testing.assert_allclose(classifier.features(test.images), features, rtol=1e-4, atol=1e-5)
    finally:
        classifier.batch_size = 64


def test_deterministic_for_a_seed_and_leaves_global_rng_alone():
    train, _ = blobs(2)
    state = torch.get_rng_state()
    runs = [train_label_classifier(train.images, train.conditions, CARDINALITIES, 2, steps=5, seed=seed)
            for seed in (3, 3, 4)]
    assert torch.equal(torch.get_rng_state(), state)
    features = [run.features(train.images[:16]) for run in runs]
    np.testing.assert_array_equal(features[0], features[1])
    assert not np.allclose(features[0], features[2])


def test_network_works_for_3_channels_and_3d():
    for spatial_dims, channels in [(2, 3), (3, 1)]:
        model = LabelClassifier(spatial_dims, channels, [4, 2, 3])
        x = torch.zeros(2, channels, *(16,) * spatial_dims)
        assert [tuple(logits.shape) for logits in model(x)] == [(2, 4), (2, 2), (2, 3)]
        assert tuple(model.features(x).shape) == (2, model.feature_dim)


@pytest.mark.parametrize("case, match", [
    ("channels", "must have 1 channel"),
    ("spatial_dims", "must be a 2D image array"),
    ("size", "must be of size"),
    ("dtype", "floating point"),
])
def test_bad_images_are_refused_in_one_line(trained_2d, case, match):
    classifier, test = trained_2d
    bad = {
        "channels": np.repeat(test.images, 3, axis=1),
        "spatial_dims": test.images[..., None],
        "size": test.images[..., :8, :8],
        "dtype": test.images.astype(np.int64),
    }[case]
    with pytest.raises(SynthscapeError, match=match) as error:
        classifier.predict(bad)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("case, match", [
    ("odd size", "even spatial sizes"),
    ("too small", "at least"),
    ("label out of range", "must lie in 0..3"),
    ("row count", "rows for"),
    ("nan", "NaN"),
    ("3d flag on 2d images", "must be a 3D image array"),
])
def test_bad_training_input_is_refused_in_one_line(case, match):
    data = Blobs(2, 16, 16, seed=0)
    images, conditions, spatial_dims = data.images, data.conditions.copy(), 2
    if case == "odd size":
        images = images[..., :15, :15]
    elif case == "too small":
        images = images[..., :4, :4]
    elif case == "label out of range":
        conditions[0, 0] = 4
    elif case == "row count":
        conditions = conditions[:-1]
    elif case == "nan":
        images = images.copy()
        images[0, 0, 0, 0] = np.nan
    else:
        spatial_dims = 3
    with pytest.raises(SynthscapeError, match=match) as error:
        train_label_classifier(images, conditions, CARDINALITIES, spatial_dims, steps=1)
    assert "\n" not in str(error.value)
