"""The evaluation as a whole, on generators whose answer is known: a faithful one (fresh draws of
the real distribution), a copier (replays training items) and a collapsed one (one image per label)."""

import numpy as np
import pytest
from blobs import SCHEMA, Blobs

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.suite import EvaluationSettings, evaluate, pooled, split
from synthscape.core.evaluation.verdicts import judge
from synthscape.core.sampling.sampler import Sampler
from synthscape.core.schema.conditions import ConditionPrior

SETTINGS = EvaluationSettings(classifier_steps=120, utility_steps=60, per_condition=6)
# Each evaluation trains its label classifier, TRTR and real-only models on the same real split: once here.
pytestmark = pytest.mark.usefixtures("classifiers_trained_once")


class Replay(Sampler):
    """A 'generator' that answers each condition with images from a fixed labelled pool."""

    def __init__(self, images, conditions, collapse=False):
        self.schema, self.latent_dim, self.domain, self.domain_meta = SCHEMA, 4, "blobs", {}
        self.prior = ConditionPrior.from_indices(SCHEMA, conditions)
        self.images, self.conditions, self.collapse = images, conditions, collapse

    def generate(self, latents, condition):
        out = []
        for z, row in zip(latents, condition):
            pool = np.flatnonzero((self.conditions == row).all(1))
            pick = 0 if self.collapse else int(abs(z[0]) * 1000) % len(pool)
            out.append(self.images[pool[pick]])
        return np.stack(out)


@pytest.fixture(scope="module")
def real():
    data = Blobs(2, 16, 160, seed=0)
    return data.images, data.conditions


def rows_by_group(evaluation):
    return {(r.group, r.name.split(":")[0]): r for r in evaluation.rows}


def run(sampler, real):
    return evaluate(sampler, *real, spatial_dims=2, seed=0, settings=SETTINGS)


def test_split_is_stratified_and_disjoint(real):
    train, held = split(real[1], 0.25, seed=0)
    assert not set(train) & set(held) and len(train) + len(held) == len(real[1])
    for row in np.unique(real[1], axis=0):
        members = (real[1] == row).all(1)
        assert members[held].any() and members[train].any()


def test_faithful_generator_scores_like_real(real):
    fresh = Blobs(2, 16, 160, seed=1)  # new draws of the same distribution
    result = run(Replay(fresh.images, fresh.conditions), real)
    rows = rows_by_group(result)
    assert rows[("label fidelity", "position")].value >= 0.9
    assert result.values["diversity"]["ratio"] > 0.5
    assert 0.6 < result.values["memorisation"]["ratio"] < 1.6
    assert judge(rows[("diversity", "within-condition diversity (1 - mean pairwise MS-SSIM)")]) == "ok"


def test_copier_is_caught_by_memorisation(real):
    images, conditions = real
    train, _ = split(conditions, 0.25, seed=0)
    result = run(Replay(images[train], conditions[train]), real)
    assert result.values["memorisation"]["exact_copy_share"] == 1.0
    assert result.values["memorisation"]["ratio"] < 0.05
    ratio_row = next(r for r in result.rows if r.name.startswith("distance to closest"))
    assert judge(ratio_row) == "check"


def test_collapsed_generator_fails_diversity_not_fidelity(real):
    fresh = Blobs(2, 16, 160, seed=2)
    result = run(Replay(fresh.images, fresh.conditions, collapse=True), real)
    assert rows_by_group(result)[("label fidelity", "position")].value >= 0.9  # fidelity alone is fooled
    assert result.values["diversity"]["generated"] < 0.05 and result.values["diversity"]["ratio"] < 0.5
    assert judge(next(r for r in result.rows if r.group == "diversity")) == "check"


def test_swapped_labels_fail_label_fidelity(real):
    fresh = Blobs(2, 16, 160, seed=3)
    swapped = fresh.conditions.copy()
    swapped[:, 0] = (swapped[:, 0] + 1) % 4  # every image answers the neighbouring position
    result = run(Replay(fresh.images, swapped), real)
    assert rows_by_group(result)[("label fidelity", "position")].value < 0.2


def test_pool_shows_the_classifiers_the_pooled_images_and_keeps_full_size_elsewhere():
    real, fresh = Blobs(2, 32, 160, seed=0), Blobs(2, 32, 160, seed=1)
    small = pooled(real.images, 2)
    assert small.shape == (160, 1, 16, 16)
    np.testing.assert_allclose(small[3, 0, 1, 2], real.images[3, 0, 2:4, 4:6].mean(), rtol=1e-6)
    big = evaluate(Replay(fresh.images, fresh.conditions), real.images, real.conditions, spatial_dims=2, seed=0,
                   settings=EvaluationSettings(classifier_steps=120, utility_steps=60, per_condition=6, pool=2))
    pre = evaluate(Replay(pooled(fresh.images, 2), fresh.conditions), small, real.conditions, spatial_dims=2, seed=0,
                   settings=SETTINGS)
    for key in ("label_fidelity", "label_fidelity_real", "fidelity", "utility"):
        assert big.values[key] == pre.values[key], key  # the classifiers saw the same pooled images
    assert big.generated.shape[2:] == (32, 32) and big.held_out.shape[2:] == (32, 32)  # pictures at full size
    with pytest.raises(SynthscapeError, match="pool 3 must divide every image side, got sides \\[32, 32\\]"):
        pooled(real.images, 3)
