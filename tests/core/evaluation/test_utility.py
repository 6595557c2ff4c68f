"""Utility of synthetic data, on blobs with known answers.

- TSTR/TRTR: exact copies of the real training set give ratio 1 exactly (same data, same seed,
  same model); fresh draws from the true distribution (a perfect generator) give about 1;
  shuffled labels give about chance / TRTR; cyclically swapped labels give TSTR ~ 0.
- Rare-condition gain: a small real set holding 1 item of position "d" gains from 40 correct
  samples of "d" and loses from 40 samples labelled "d" that show position "a".
"""

import numpy as np
import pytest
from blobs import SCHEMA, Blobs

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.utility import rare_condition_gain, rarest_value, tstr_trtr

CARDINALITIES = SCHEMA.cardinalities
POSITION, RARE = 0, 3
STEPS = 60


@pytest.fixture(scope="module")
def real():
    return Blobs(2, 16, 192, seed=0), Blobs(2, 16, 128, seed=1)


def tstr(real, images, conditions):
    train, test = real
    return tstr_trtr((images, conditions), (train.images, train.conditions), (test.images, test.conditions),
                     CARDINALITIES, 2, attribute=POSITION, steps=STEPS, seed=0)


def test_copies_of_real_data_score_like_real_data(real):
    train, _ = real
    assert tstr(real, train.images.copy(), train.conditions.copy())["ratio"] == pytest.approx(1.0)
    perfect = Blobs(2, 16, 192, seed=2)
    scores = tstr(real, perfect.images, perfect.conditions)
    assert scores["trtr"] >= 0.9 and scores["ratio"] >= 0.85, scores


def test_shuffled_labels_are_useless(real, classifiers_trained_once):  # TRTR trained once
    fresh = Blobs(2, 16, 192, seed=2)
    ratios = []
    for seed in range(3):  # one shuffle maps whole blob clusters to one label: average a few
        shuffled = fresh.conditions[np.random.default_rng(seed).permutation(len(fresh))]
        ratios.append(tstr(real, fresh.images, shuffled)["ratio"])
    assert np.mean(ratios) < 0.6, ratios


def test_swapped_labels_teach_the_wrong_answer(real, classifiers_trained_once):
    fresh = Blobs(2, 16, 192, seed=2)
    swapped = fresh.conditions.copy()
    swapped[:, POSITION] = (swapped[:, POSITION] + 1) % 4
    scores = tstr(real, fresh.images, swapped)
    assert scores["tstr"] < 0.1 and scores["ratio"] < 0.1, scores


def noisy(data, std, seed):
    """Blobs under heavy noise: clean, one example of a position is enough to learn it, so no
    added data could help and the gain test could not fail for the right reason."""
    noise = np.random.default_rng(seed).normal(0, std, data.images.shape)
    return np.clip(data.images + noise, -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def rare_setup():
    pool, test = Blobs(2, 16, 600, seed=3), Blobs(2, 16, 128, seed=1)
    images, test_images, position = noisy(pool, 1.0, 7), noisy(test, 1.0, 8), pool.conditions[:, POSITION]
    counts = {0: 30, 1: 30, 2: 30, RARE: 1}  # the rare position has one real example
    small = np.concatenate([np.flatnonzero(position == k)[:n] for k, n in counts.items()])
    return pool, images, small, test_images, test.conditions


def gain(rare_setup, synthetic_images, synthetic_conditions):
    pool, images, small, test_images, test_conditions = rare_setup
    return rare_condition_gain((images[small], pool.conditions[small]), (synthetic_images, synthetic_conditions),
                               (test_images, test_conditions), CARDINALITIES, 2, attribute=POSITION, value_index=RARE,
                               steps=80, seed=0)


def test_rarest_value_is_found(rare_setup):
    pool, _, small, _, _ = rare_setup
    assert rarest_value(pool.conditions[small], POSITION) == RARE
    assert rarest_value(np.array([[0, 1], [2, 1], [2, 0], [0, 1]]), 0) == 0  # a tie goes to the lower index
    with pytest.raises(SynthscapeError, match="attribute must be an index"):
        rarest_value(pool.conditions, 2)


def test_correct_rare_samples_help(rare_setup, classifiers_trained_once):  # real-only: once
    pool, images, _, _, test_conditions = rare_setup
    correct = np.flatnonzero(pool.conditions[:, POSITION] == RARE)[1:41]  # not the one in the small set
    result = gain(rare_setup, images[correct], pool.conditions[correct])
    assert result["test_count"] == int((test_conditions[:, POSITION] == RARE).sum())
    assert result["gain"] == pytest.approx(result["real_plus_synthetic"] - result["real_only"])
    assert result["gain"] > 0.1, result
    assert result["recall_real_plus_synthetic"] > result["recall_real_only"], result


def test_rare_samples_with_wrong_images_do_not_help(rare_setup, classifiers_trained_once):
    pool, images, _, _, _ = rare_setup
    wrong = np.flatnonzero(pool.conditions[:, POSITION] == 0)[30:70]  # position "a", not in the small set
    labels = pool.conditions[wrong].copy()
    labels[:, POSITION] = RARE
    result = gain(rare_setup, images[wrong], labels)
    assert result["gain"] < 0, result


def test_bad_input_is_refused_in_one_line(real, rare_setup):
    train, test = real
    real_sets = ((train.images, train.conditions), (test.images, test.conditions), CARDINALITIES, 2)
    cases = [
        (lambda: tstr_trtr((train.images[..., :8, :8], train.conditions), *real_sets, attribute=0, steps=1),
         "synthetic images must be of size"),
        (lambda: tstr_trtr((train.images, train.conditions), *real_sets, attribute=5, steps=1),
         "attribute must be an index"),
        (lambda: gain(rare_setup, train.images[:4], np.zeros((4, 2), np.int64)),
         "has 0 synthetic"),
        (lambda: rare_condition_gain((train.images, train.conditions), *real_sets, attribute=0, value_index=4, steps=1),
         "value_index must lie in 0..3"),
    ]
    for call, match in cases:
        with pytest.raises(SynthscapeError, match=match) as error:
            call()
        assert "\n" not in str(error.value)
