"""Is the synthetic data useful for training? Two answers, both measured on real held-out data.

- TSTR / TRTR: the same downstream model (a ``LabelClassifier`` for one attribute) trained on
  synthetic data only and on real training data, both tested on real held-out data. A ratio near
  1 means the synthetic set teaches what the real one does; swapped labels or off-target images
  push it towards chance / TRTR.
- Rare-condition gain: the reason to generate data at all is usually a condition the real data
  has too little of. A model trained on a small real set, then on that set plus synthetic
  samples of its rarest value, is scored on the real held-out data for that value (F1).

Every model here is trained with the same seed, steps and widths, so the only difference between
the two arms of a comparison is the data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.label_classifier import (
    TrainedClassifier,
    check_conditions,
    check_images,
    train_label_classifier,
)

T = TypeVar("T")
Labelled = tuple[np.ndarray, np.ndarray]  # images [N, C, *spatial], condition indices [N, A]


def _check_attribute(attribute: int, count: int) -> None:
    if not 0 <= attribute < count:
        raise SynthscapeError(f"attribute must be an index in 0..{count - 1}, got {attribute}")


def _labelled_set(images: np.ndarray, conditions: np.ndarray, cardinalities: Sequence[int], spatial_dims: int,
                  like: np.ndarray | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked images and conditions; ``like`` (another image array) fixes channels and size."""
    channels, size = (like.shape[1], like.shape[2:]) if like is not None else (None, None)
    images = check_images(images, spatial_dims, channels, size, what=f"{what} images")
    return images, check_conditions(conditions, cardinalities, len(images), what=f"{what} conditions")


def _checked_sets(real: Labelled, synthetic: Labelled, test: Labelled, cardinalities: Sequence[int],
                  spatial_dims: int, real_what: str) -> tuple[Labelled, Labelled, Labelled]:
    """The three sets of a comparison, checked in this order; the real training set fixes the
    channels and size the synthetic and test sets must have."""
    real = _labelled_set(*real, cardinalities, spatial_dims, None, real_what)
    synthetic = _labelled_set(*synthetic, cardinalities, spatial_dims, real[0], "synthetic")
    return real, synthetic, _labelled_set(*test, cardinalities, spatial_dims, real[0], "real test")


def _train_for(images: np.ndarray, conditions: np.ndarray, cardinalities: Sequence[int], spatial_dims: int,
               attribute: int, steps: int, seed: int, widths: Sequence[int] | None) -> TrainedClassifier:
    """The downstream model: a one-head ``LabelClassifier`` for ``attribute`` alone."""
    return train_label_classifier(images, conditions[:, [attribute]], [cardinalities[attribute]], spatial_dims,
                                  steps=steps, seed=seed, widths=widths)


def _score_arms(arms: dict[str, Labelled], score: Callable[[TrainedClassifier], T], cardinalities: Sequence[int],
                spatial_dims: int, attribute: int, steps: int, seed: int, widths: Sequence[int] | None) -> dict[str, T]:
    """Per arm, in order: the downstream model trained on that arm's data, then ``score`` of it.
    Every arm gets the same seed, steps and widths, so the data is the only difference."""
    return {name: score(_train_for(x, y, cardinalities, spatial_dims, attribute, steps, seed, widths))
            for name, (x, y) in arms.items()}


def tstr_trtr(synthetic: Labelled, real_train: Labelled, real_test: Labelled, cardinalities: Sequence[int],
              spatial_dims: int, attribute: int, steps: int = 300, seed: int = 0,
              widths: Sequence[int] | None = None) -> dict[str, float]:
    """Train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

    Each set is ``(images [N, C, *spatial], condition indices [N, A])``.

    Returns ``{"tstr", "trtr", "ratio"}``: accuracies on ``attribute`` of the real test set and
    their ratio, NaN when TRTR is 0 (the real data itself teaches nothing to compare against).
    """
    _check_attribute(attribute, len(cardinalities))
    real, synthetic, (test_x, test_y) = _checked_sets(real_train, synthetic, real_test, cardinalities, spatial_dims,
                                                      "real train")
    scores = _score_arms({"tstr": synthetic, "trtr": real},
                         lambda model: model.accuracy(test_x, test_y[:, [attribute]])[0],
                         cardinalities, spatial_dims, attribute, steps, seed, widths)
    scores["ratio"] = scores["tstr"] / scores["trtr"] if scores["trtr"] > 0 else float("nan")
    return scores


def rarest_value(conditions: np.ndarray, attribute: int) -> int:
    """The value index of ``attribute`` that occurs least often (among those that occur at all;
    ties go to the lower index), the one a user most needs more data for."""
    conditions = np.asarray(conditions)
    if conditions.ndim != 2 or len(conditions) == 0 or not np.issubdtype(conditions.dtype, np.integer):
        raise SynthscapeError(f"conditions must be a non-empty integer array [N, A], got {list(conditions.shape)}")
    _check_attribute(attribute, conditions.shape[1])
    values, counts = np.unique(conditions[:, attribute], return_counts=True)
    return int(values[np.argmin(counts)])


def _rare_scores(predicted: np.ndarray, truth: np.ndarray, value: int) -> tuple[float, float]:
    """F1 and recall of ``value`` over a test set (both 0 where nothing is right)."""
    hits = float(np.sum((predicted == value) & (truth == value)))
    recall = hits / max(int(np.sum(truth == value)), 1)
    precision = hits / max(int(np.sum(predicted == value)), 1)
    return (2 * precision * recall / (precision + recall) if hits else 0.0), recall


def rare_condition_gain(small_real: Labelled, synthetic: Labelled, real_test: Labelled, cardinalities: Sequence[int],
                        spatial_dims: int, attribute: int, value_index: int, steps: int = 300, seed: int = 0,
                        widths: Sequence[int] | None = None) -> dict[str, float]:
    """How much synthetic samples of a rare value help a model trained on a small real set.

    Two models for ``attribute``: one on the small real set alone, one on it plus the synthetic
    samples whose ``attribute`` is ``value_index`` (other synthetic rows are left out). Each is
    scored on the real test set by its F1 for that value. Not by recall alone: adding many items
    labelled with the rare value shifts the model's prior towards it, and on blobs 40 *wrong*
    images labelled rare raised the recall of the rare value from 0.97 to 1.0 while overall
    accuracy fell from 0.99 to 0.86; precision catches that.

    Returns ``{"real_only", "real_plus_synthetic", "gain", "test_count"}`` (F1s, their
    difference, the number of real test items of that value) and the recalls beside them as
    ``recall_real_only`` / ``recall_real_plus_synthetic``.
    """
    _check_attribute(attribute, len(cardinalities))
    if not 0 <= value_index < cardinalities[attribute]:
        raise SynthscapeError(f"value_index must lie in 0..{cardinalities[attribute] - 1}, got {value_index}")
    (real_x, real_y), (synth_x, synth_y), (test_x, test_y) = _checked_sets(small_real, synthetic, real_test,
                                                                           cardinalities, spatial_dims, "small real")
    chosen = synth_y[:, attribute] == value_index
    truth = test_y[:, attribute]
    if not chosen.any() or not (truth == value_index).any():
        raise SynthscapeError(f"value {value_index} of attribute {attribute} has {int(chosen.sum())} synthetic and "
                              f"{int((truth == value_index).sum())} real test items; both must be at least 1")
    arms = {"real_only": (real_x, real_y),
            "real_plus_synthetic": (np.concatenate([real_x, synth_x[chosen]]),
                                    np.concatenate([real_y, synth_y[chosen]]))}
    result: dict[str, float] = {"test_count": int((truth == value_index).sum())}
    scores = _score_arms(arms, lambda model: _rare_scores(model.predict(test_x)[:, 0], truth, value_index),
                         cardinalities, spatial_dims, attribute, steps, seed, widths)
    for name, (f1, recall) in scores.items():
        result[name], result[f"recall_{name}"] = f1, recall
    result["gain"] = result["real_plus_synthetic"] - result["real_only"]
    return result
