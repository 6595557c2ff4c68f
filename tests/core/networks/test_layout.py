"""The layout generator and its training: any size, the label map obeyed, noise that matters, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_network, tiny_train
from spots import LABELS, SCHEMA, Spots

from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.artifacts import load_run
from synthscape.core.networks.crops import crop_batch
from synthscape.core.networks.layout import LayoutGenerator, one_hot
from synthscape.core.networks.nets import ProjectionDiscriminator
from synthscape.core.schema.conditions import ConditionPrior
from synthscape.core.schema.config import ArtifactConfig
from synthscape.core.training.loop import train


def layout_config(spatial_dims: int = 3, **overrides):
    return tiny_network(spatial_dims, layout_classes=3, generator_channels=(16, 16, 8), **overrides)


def render(generator, layout, seed=0, batch=None):
    torch.manual_seed(seed)
    layout = torch.as_tensor(layout).long()
    batch = layout.shape[0]
    with torch.no_grad():
        return generator(torch.randn(batch, generator.config.latent_dim), torch.zeros(batch, 1, dtype=torch.long),
                         layout, torch.randn(batch, 1, *layout.shape[1:]))


@pytest.mark.parametrize("spatial_dims, size", [(3, (16, 24, 32)), (3, (8, 8, 8)), (2, (40, 24))])
def test_a_layout_generator_trained_at_one_size_renders_any_multiple_of_its_stride(spatial_dims, size):
    generator = LayoutGenerator(layout_config(spatial_dims), [2]).eval()
    image = render(generator, torch.randint(0, 3, (2, *size)))
    assert image.shape == (2, 1, *size)
    assert image.abs().max() <= 1


def test_noise_maps_change_the_image_of_one_layout():
    generator = LayoutGenerator(layout_config(), [2]).eval()
    layout = torch.randint(0, 3, (1, 16, 16, 16))
    a, b = render(generator, layout, seed=0), render(generator, layout, seed=1)
    assert (a - b).abs().mean() > 1e-3


def test_the_critic_sees_the_label_map():
    critic = ProjectionDiscriminator(layout_config(), [2]).eval()
    image, condition = torch.zeros(1, 1, 16, 16, 16), torch.zeros(1, 1, dtype=torch.long)
    with torch.no_grad():
        scores = [critic(image, condition, torch.full((1, 16, 16, 16), k)).item() for k in range(3)]
    assert len(set(scores)) == 3
    with pytest.raises(SynthscapeError, match="label map beside the image"):
        critic(image, condition)


def test_one_hot_is_exact():
    layout = torch.tensor([[0, 2], [1, 2]])
    assert one_hot(layout[None], 3)[0].argmax(0).tolist() == layout.tolist()


def test_crops_are_class_balanced_and_keep_image_and_map_aligned():
    data = Spots(6, seed=1)
    images = torch.stack([item[0] for item in data.items])
    layouts = torch.stack([item[2] for item in data.items])
    noise = torch.Generator().manual_seed(0)
    with_spot = 0
    for _ in range(20):
        cut_images, cut_layouts = crop_batch(images, layouts, (8, 8, 8), noise)
        assert cut_images.shape == (6, 1, 8, 8, 8) and cut_layouts.shape == (6, 8, 8, 8)
        assert torch.equal(cut_images[:, 0] > 0.3, cut_layouts == 2)  # the image's bright voxels are the spot's
        with_spot += int((cut_layouts == 2).flatten(1).any(1).sum())
    assert with_spot / 120 > 0.3  # a uniform 8^3 crop of 24^3 holds a 3-voxel spot far less often


@pytest.fixture(scope="module")
def spots_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("layout") / "run"
    config = tiny_train(steps=60, batch_size=8, checkpoint_every=30, eval_every=60, mode_seeking=0.1)
    train(Spots(32, seed=0), run, model="gan", schema=SCHEMA, config=config, labels=LABELS, crop=16, progress=False)
    return run


def test_a_short_training_paints_the_spot_where_the_label_map_says(spots_run):
    sampler = load_run(spots_run)
    assert sampler.label_map == LABELS and sampler.config.network.image_size == (16, 16, 16)
    held = Spots(8, seed=5, size=32)  # larger than the 16^3 crops it trained on, and unseen
    layouts = np.stack([item[2].numpy() for item in held.items])
    samples = sampler.sample(8, {"spot": "big"}, seed=3, layouts=lambda c, s, i: layouts[i])
    assert samples.images.shape == (8, 1, 32, 32, 32) and np.array_equal(samples.layouts, layouts)
    spot = samples.images[:, 0][layouts == 2].mean()
    box = samples.images[:, 0][layouts == 1].mean()
    assert spot - box > 0.3, (spot, box)


def test_a_sample_renders_the_same_alone_or_in_a_batch(spots_run):
    sampler = load_run(spots_run)
    layouts = np.stack([item[2].numpy() for item in Spots(4, seed=6).items])
    source = lambda c, s, i: layouts[i]
    together = sampler.sample(4, seed=9, layouts=source)
    alone = sampler.sample(1, seed=9, start=2, layouts=source)
    np.testing.assert_allclose(alone.images[0], together.images[2], atol=1e-5)
    assert alone.conditions[0] == together.conditions[2]


def test_a_resumed_layout_run_continues_exactly(tmp_path):
    # crops are drawn from the checkpointed noise generator: a run stopped at step 2 and resumed ends bitwise
    # where the uninterrupted one does (a few steps suffice; the spot test above shows what training learns)
    def run(folder, steps, resume=False):
        config = tiny_train(steps=steps, batch_size=4, checkpoint_every=2, eval_every=4, mode_seeking=0.1)
        train(Spots(8, seed=0), folder, model="gan", schema=SCHEMA, config=config, labels=LABELS, crop=16,
              progress=False, resume=resume)

    run(tmp_path / "whole", 4)
    run(tmp_path / "split", 2)
    run(tmp_path / "split", 4, resume=True)
    whole, split = load_run(tmp_path / "whole").network.state_dict(), load_run(tmp_path / "split").network.state_dict()
    for name, tensor in whole.items():
        assert torch.equal(tensor, split[name]), name


def test_a_layout_run_refuses_items_without_label_maps(tmp_path):
    items = Spots(8, seed=0)
    items.items = [item[:2] for item in items.items]
    with pytest.raises(SynthscapeError, match="label map"):
        train(items, tmp_path / "run", model="vae", schema=SCHEMA, config=tiny_train(steps=1), labels=LABELS, crop=16,
              progress=False)


def test_the_label_map_schema_travels_in_config_json_and_must_match_the_network():
    config = ArtifactConfig("spots", "gan", SCHEMA, ConditionPrior.uniform(SCHEMA), layout_config(), label_map=LABELS)
    again = ArtifactConfig.from_dict(config.to_dict())
    assert again.label_map == LABELS and again.network.layout_classes == 3
    data = config.to_dict()
    data["label_map"] = ["background", "box"]
    with pytest.raises(SynthscapeError, match="label_map has 2 classes but network.layout_classes is 3"):
        ArtifactConfig.from_dict(data)


@pytest.mark.parametrize("layout, message", [
    (torch.zeros(1, 10, 16, 16, dtype=torch.long), "multiple of 4"),
    (torch.full((1, 16, 16, 16), 3, dtype=torch.long), "knows 0..2"),
    (torch.zeros(1, 16, 16, 16, dtype=torch.int32), "int64"),
])
def test_a_bad_label_map_is_one_line(layout, message):
    from synthscape.core.networks.artifacts import TorchSampler

    config = ArtifactConfig("spots", "gan", SCHEMA, ConditionPrior.uniform(SCHEMA), layout_config(), label_map=LABELS)
    sampler = TorchSampler(config, LayoutGenerator(config.network, [2]))
    with pytest.raises(SynthscapeError, match=message):
        sampler.generate(np.zeros((1, 16), np.float32), np.zeros((1, 1), np.int64), layout.numpy(),
                         np.zeros((1, 1, *layout.shape[1:]), np.float32))


def test_a_layout_vae_trains_and_its_decoder_renders_any_size(tmp_path):
    run = tmp_path / "vae"
    train(Spots(8, seed=2), run, model="vae", schema=SCHEMA, config=tiny_train(steps=3, batch_size=4), labels=LABELS,
          crop=16, progress=False)
    sampler = load_run(run)
    layouts = np.stack([item[2].numpy() for item in Spots(2, seed=3, size=32).items])
    samples = sampler.sample(2, seed=0, layouts=lambda c, s, i: layouts[i])
    assert samples.images.shape == (2, 1, 32, 32, 32) and np.isfinite(samples.images).all()
    assert (run / "samples" / "step-00000003" / "layout=training.png").is_file()


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_a_uniform_label_map_renders_a_uniform_image_to_its_edges(spatial_dims):
    # edge padding: nothing marks the border, so a 64^3 render of 32^3 crops has no seams on its faces
    generator = LayoutGenerator(layout_config(spatial_dims), [2]).eval()
    size = (16,) * spatial_dims
    with torch.no_grad():
        image = generator(torch.randn(1, 16), torch.zeros(1, 1, dtype=torch.long), torch.ones(1, *size, dtype=torch.long),
                          torch.zeros(1, 1, *size))
    assert image.std() < 1e-5, image.std()
    assert image.abs().max() > 1e-3  # not trivially blank
