"""stratified_split: each condition row gives its share, both sides are never empty, the seed fixes it."""

import re

import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.splits import stratified_split


def rows(*sizes):
    """A condition array with groups of the given sizes, shuffled."""
    labels = np.concatenate([np.full(n, g) for g, n in enumerate(sizes)])
    return np.random.default_rng(0).permutation(np.stack([labels, labels % 2], axis=1))


@pytest.mark.parametrize("sizes, share", [((50, 30, 20), 0.2), ((7, 5, 3, 1, 1), 0.25), ((2,), 0.2), ((13, 9), 0.5)])
def test_the_split_is_a_partition_of_the_rounded_share(sizes, share):
    conditions = rows(*sizes)
    kept, off = stratified_split(conditions, share, 3)
    assert np.array_equal(np.sort(np.concatenate([kept, off])), np.arange(len(conditions)))
    assert len(off) == min(max(round(share * len(conditions)), 1), len(conditions) - 1)
    assert len(kept) >= 1 and len(off) >= 1


@pytest.mark.parametrize("seed", range(5))
def test_every_condition_gives_its_share_rounded_up_or_down(seed):
    sizes = (41, 17, 9, 4, 2, 2)
    conditions = rows(*sizes)
    _, off = stratified_split(conditions, 0.3, seed)
    for group, size in enumerate(sizes):
        taken = int((conditions[off, 0] == group).sum())
        assert np.floor(0.3 * size) <= taken <= np.ceil(0.3 * size), (group, size, taken)


def test_groups_of_two_at_half_give_one_each():
    conditions = rows(*([2] * 10))
    _, off = stratified_split(conditions, 0.5, 0)
    assert sorted(conditions[off, 0].tolist()) == list(range(10))


def test_the_seed_fixes_the_split():
    conditions = rows(30, 20, 10)
    first = stratified_split(conditions, 0.2, [4, 2, 7])
    assert all(np.array_equal(a, b) for a, b in zip(first, stratified_split(conditions, 0.2, [4, 2, 7])))
    assert not np.array_equal(first[1], stratified_split(conditions, 0.2, [5, 2, 7])[1])


@pytest.mark.parametrize("count, share, message", [(1, 0.2, "1 item(s) cannot be split"), (10, 0.0, "strictly between"),
                                                   (10, 1.0, "strictly between")])
def test_impossible_splits_are_refused(count, share, message):
    with pytest.raises(SynthscapeError, match=re.escape(message)):
        stratified_split(rows(count), share, 0)
