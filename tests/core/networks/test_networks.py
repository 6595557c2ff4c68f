import pytest
import torch
from conftest import tiny_network

from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.blocks import HalvingPool
from synthscape.core.networks.nets import (
    ConditionalEncoder,
    ConditionalGenerator,
    ProjectionDiscriminator,
    check_inputs,
)
from synthscape.core.schema.config import NetworkConfig, TrainConfig
from synthscape.core.training.gan import GAN
from synthscape.core.training.vae import VAE

CARDS = [4, 2]


def inputs(batch: int, latent_dim: int = 16):
    g = torch.Generator().manual_seed(batch)
    return torch.randn(batch, latent_dim, generator=g), torch.stack(
        [torch.randint(0, 4, (batch,), generator=g), torch.randint(0, 2, (batch,), generator=g)], 1)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_generator_critic_encoder_shapes_and_dtypes(spatial_dims, channels, batch):
    config = tiny_network(spatial_dims, channels)
    z, c = inputs(batch)
    image = ConditionalGenerator(config, CARDS)(z, c)
    assert image.shape == (batch, channels, *[16] * spatial_dims) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1  # tanh output
    score = ProjectionDiscriminator(config, CARDS)(image, c)
    assert score.shape == (batch,) and score.dtype == torch.float32
    mu, logvar = ConditionalEncoder(config, CARDS)(image, c)
    assert mu.shape == logvar.shape == (batch, config.latent_dim)


def test_non_cubic_sizes():
    config = NetworkConfig(2, (32, 64), 3, latent_dim=8, generator_channels=(16, 8, 8), critic_channels=(8, 8, 16))
    z, c = inputs(2, 8)
    assert ConditionalGenerator(config, CARDS)(z, c).shape == (2, 3, 32, 64)


@pytest.mark.parametrize("kind", [GAN, VAE])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_one_training_step_per_kind(kind, spatial_dims):
    config = tiny_network(spatial_dims, 3)
    objective = kind(config, TrainConfig(r1_every=1, classifier_loss=0.5), CARDS, torch.device("cpu"))
    images = torch.rand(3, 3, *[16] * spatial_dims) * 2 - 1
    _, c = inputs(3)
    metrics = objective.step(images, c, 1, torch.Generator().manual_seed(0))
    # r1_every=1: R1 at every step; the GAN's AC-GAN terms on; recon is a layout GAN's only
    assert set(metrics) == set(kind.metric_names) - {"recon"}
    assert all(torch.isfinite(v) for v in metrics.values())
    out = objective.sampler_network(*inputs(3))
    assert out.shape == images.shape


def test_forward_is_deterministic():
    """No random operation inside forward: the same inputs give the same image."""
    generator = ConditionalGenerator(tiny_network(3), CARDS).eval()
    z, c = inputs(4)
    assert torch.equal(generator(z, c), generator(z, c))


def test_condition_changes_the_output_only_when_conditional():
    z, c = inputs(4)
    other = (c + 1) % torch.tensor(CARDS)
    for conditional in (True, False):
        generator = ConditionalGenerator(tiny_network(2, conditional=conditional), CARDS)
        differs = not torch.allclose(generator(z, c), generator(z, other))
        assert differs == conditional


def test_bad_shapes_are_refused_with_one_line():
    config = tiny_network(2)
    z, c = inputs(2)
    with pytest.raises(SynthscapeError, match=r"condition must be int64 \[batch, 2\], got torch.int64 \[2, 3\]"):
        check_inputs(config, CARDS, z, torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(SynthscapeError, match=r"z must be float \[2, 16\]"):
        check_inputs(config, CARDS, torch.zeros(2, 7), c)
    with pytest.raises(SynthscapeError, match=r"images must have shape \[2, 1, 16, 16\]"):
        check_inputs(config, CARDS, None, c, torch.zeros(2, 1, 8, 8))


def test_bad_network_config_is_refused():
    with pytest.raises(SynthscapeError, match="multiple of 4"):
        NetworkConfig(2, (18, 16), generator_channels=(8, 8, 8), critic_channels=(8, 8, 8))
    with pytest.raises(SynthscapeError, match="spatial_dims must be 2 or 3"):
        NetworkConfig(1, (16,))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_halving_pool_is_average_pooling_that_keeps_channels_last(spatial_dims):
    torch.manual_seed(0)
    layout = torch.channels_last_3d if spatial_dims == 3 else torch.channels_last
    x = torch.randn(2, 6, *(9,) * spatial_dims).contiguous(memory_format=layout).requires_grad_()  # odd: floors
    pool = HalvingPool(spatial_dims, 6).to(memory_format=layout)
    average = torch.nn.functional.avg_pool3d if spatial_dims == 3 else torch.nn.functional.avg_pool2d
    y = pool(x)
    expected = average(x.detach(), 2)
    assert y.shape == expected.shape == (2, 6, *(4,) * spatial_dims)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
    assert y.is_contiguous(memory_format=layout)
    (grad,) = torch.autograd.grad((y * expected).sum(), x)
    x_ref = x.detach().requires_grad_()
    (grad_ref,) = torch.autograd.grad((average(x_ref, 2) * expected).sum(), x_ref)
    torch.testing.assert_close(grad, grad_ref, rtol=0, atol=1e-6)
    assert list(pool.state_dict()) == [] and not list(pool.parameters())  # checkpoints as with AvgPool
