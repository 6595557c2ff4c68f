"""Conditioning really works: the label decides where the blob is, and a rule reads it back.

The same check fails for the same network with conditioning switched off, so it can fail.
"""

import numpy as np
import pytest
from blobs import SCHEMA, Blobs, recover_position
from conftest import tiny_network, tiny_train

from synthscape.core.networks.artifacts import load_run
from synthscape.core.training.loop import train

STEPS = {("gan", 2): 250, ("gan", 3): 250, ("vae", 2): 300, ("vae", 3): 200}  # each reached fidelity >= 0.96 here
SIDE = {2: 16, 3: 8}  # 3D at 8^3: the same conditioning path as 16^3 at an eighth of the cost (fidelity 1.0 at 8^3)
R1_EVERY = 16  # the default: the R1 penalty's double backward is a third of a 3D critic step at tiny_train's 4


def label_fidelity(run, count: int = 48) -> float:
    generator = load_run(run)
    hits = []
    for k, value in enumerate(SCHEMA.values("position")):
        samples = generator.sample(count, {"position": value}, seed=123)
        assert [c["position"] for c in samples.conditions] == [value] * count
        hits.append(recover_position(samples.images) == k)
    return float(np.mean(hits))


def train_blobs(tmp_path, model, spatial_dims, conditional=True, steps=None):
    steps = steps or STEPS[(model, spatial_dims)]
    run, side = tmp_path / f"{model}{spatial_dims}d", SIDE[spatial_dims]
    train(Blobs(spatial_dims, side, 256), run, model=model, schema=SCHEMA,
          network=tiny_network(spatial_dims, conditional=conditional, image_size=(side,) * spatial_dims),
          config=tiny_train(steps=steps, batch_size=16, eval_every=steps, checkpoint_every=steps, log_every=50,
                            r1_every=R1_EVERY),
          progress=False)
    return run


@pytest.mark.parametrize("model", ["gan", "vae"])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_samples_carry_their_label(tmp_path, model, spatial_dims):
    fidelity = label_fidelity(train_blobs(tmp_path, model, spatial_dims))
    assert fidelity >= 0.9, f"{model} {spatial_dims}D label fidelity {fidelity:.2f}"


@pytest.mark.parametrize("model", ["gan", "vae"])
def test_without_conditioning_the_check_fails(tmp_path, model):
    # 100 steps: without the label the network cannot place the blob by it however long it trains
    fidelity = label_fidelity(train_blobs(tmp_path, model, 2, conditional=False, steps=100))
    assert fidelity < 0.5, f"unconditional {model} reached label fidelity {fidelity:.2f}"
