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


def test_the_report_scores_a_layout_model_by_its_masks_and_by_renders_of_one_map(spots_run):
    """The layout rows of the evaluation on 24^3 spots: a segmenter trained on real finds the spot in
    renders where their label maps put it (the spot test above shows the generator paints it), its
    TSTR / TRTR is read off the same Dice, and renders of one label map differ less than real items
    whose spots lie elsewhere."""
    from synthscape.core.evaluation.suite import EvaluationSettings, evaluate

    data = Spots(24, seed=7)
    images = np.stack([item[0].numpy() for item in data.items])
    layouts = np.stack([item[2].numpy() for item in data.items]).astype(np.uint8)
    settings = EvaluationSettings(classifier_steps=20, utility_steps=10, per_condition=4, segmenter_steps=80,
                                  segmenter_crop=0, mask_focus="spot")
    result = evaluate(load_run(spots_run), images, data.conditions, 3, settings=settings, layouts=layouts)
    mask, utility, same = (result.values[k] for k in ("mask_fidelity", "segmentation_utility", "same_layout_diversity"))
    assert mask["classes"] == "spot"
    assert mask["real"] > 0.8 and mask["generated"] > 0.5, mask
    assert utility["trtr"] == mask["real"] and utility["ratio"] == pytest.approx(utility["tstr"] / utility["trtr"])
    assert 0 <= same["generated"] < same["real"] <= 1, same
    names = [row.name for row in result.rows]
    assert any(name.startswith("spot Dice") for name in names) and any("one label map" in name for name in names)


def test_the_report_scores_every_class_by_iou_when_the_domain_asks_for_miou(spots_run):
    """``mask_score="miou"`` (the driving domain's): one segmenter of every class; the mIoU row is the
    mean of the per-class IoU in metrics.json, the focus class has its own row, TSTR / TRTR is a
    ratio of mIoUs. On 24^3 spots the real reference finds background, box and spot."""
    from synthscape.core.evaluation.suite import EvaluationSettings, evaluate

    data = Spots(24, seed=7)
    images = np.stack([item[0].numpy() for item in data.items])
    layouts = np.stack([item[2].numpy() for item in data.items]).astype(np.uint8)
    settings = EvaluationSettings(classifier_steps=20, utility_steps=10, per_condition=4, segmenter_steps=80,
                                  segmenter_crop=0, mask_focus="spot", mask_score="miou")
    result = evaluate(load_run(spots_run), images, data.conditions, 3, settings=settings, layouts=layouts)
    mask, utility = result.values["mask_fidelity"], result.values["segmentation_utility"]
    assert mask["score"] == "miou" and set(mask["classes"]) == {"background", "box", "spot"}
    real = [mask["classes"][name]["real"] for name in ("background", "box", "spot")]
    assert mask["real"] == pytest.approx(np.mean(real)) and min(real) > 0.5, mask
    assert mask["generated"] == pytest.approx(np.mean([mask["classes"][n]["generated"] for n in mask["classes"]]))
    assert utility["trtr"] == mask["real"] and utility["ratio"] == pytest.approx(utility["tstr"] / utility["trtr"])
    rows = {row.name: row for row in result.rows}
    assert rows["spot IoU"].value == mask["classes"]["spot"]["generated"] and "box IoU" not in rows
    assert any(name.startswith("mIoU") for name in rows)
    with pytest.raises(SynthscapeError, match="mask_score must be one of dice, miou"):
        EvaluationSettings(mask_score="iou")


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


def test_the_reconstruction_term_is_the_l1_to_the_real_image_of_each_rendered_label_map():
    """``reconstruction``: loss_g is the hinge term plus the weight times the mean |render - real|,
    where with mode seeking (batch 5: pairs 0-1 and 2-3) render i + 2 is compared with real image i,
    whose label map it rendered; computed here by hand from the same latents and noise maps."""
    import contextlib
    import copy

    from synthscape.core.training.gan import GAN

    torch.manual_seed(0)
    gan = GAN(layout_config(), tiny_train(batch_size=5, mode_seeking=0.5, reconstruction=3.0), [2], torch.device("cpu"))
    data = Spots(5, seed=2)
    images = torch.stack([item[0] for item in data.items])
    layouts = torch.stack([item[2] for item in data.items]).long()
    condition = torch.zeros(5, 1, dtype=torch.long)
    generator, critic = copy.deepcopy(gan.generator), copy.deepcopy(gan.critic)
    noise = torch.Generator().manual_seed(1)
    state = noise.get_state()
    metrics = gan.generator_step(condition, 1, noise, contextlib.nullcontext, layouts, images)
    noise.set_state(state)
    z = gan.latents(5, noise)
    order = [0, 1, 0, 1, 4]
    noise_map = gan.spatial_noise(layouts[order], noise)
    with torch.no_grad():
        fake = generator(z, condition, layouts[order], noise_map)
        hinge = -critic(fake, condition, layouts[order]).mean()
        from synthscape.core.training.gan import mode_seeking_loss
        seeking = mode_seeking_loss(fake, z, 2, noise_map)
    l1 = (fake - images[order]).abs().mean()
    assert float(metrics["recon"]) == pytest.approx(float(l1), rel=1e-5)
    assert float(metrics["loss_g"]) == pytest.approx(float(hinge + 0.5 * seeking + 3.0 * l1), rel=1e-5)
    assert 3.0 * float(l1) > 1e-2  # large enough that leaving it out would fail the line above


@pytest.mark.parametrize("model, labels", [("gan", None), ("vae", LABELS)])
def test_reconstruction_outside_a_layout_gan_is_refused_before_anything_is_written(tmp_path, model, labels):
    items = Spots(4, seed=0)
    if labels is None:
        items.items = [item[:2] for item in items.items]
    with pytest.raises(SynthscapeError, match="reconstruction 1.0 compares a layout GAN's renders .* --layout"):
        train(items, tmp_path / "run", model=model, schema=SCHEMA, config=tiny_train(steps=1, reconstruction=1.0),
              labels=labels, crop=16, progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
