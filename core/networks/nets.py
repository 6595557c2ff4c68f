"""The three networks: conditional generator (= VAE decoder), projection critic, conditional encoder.

All three take condition indices int64 ``[B, A]`` and work for ``spatial_dims`` 2 and 3. None
draws random numbers in ``forward``: the latent comes in as an input, so export and seeding are
exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.blocks import ConditionalGroupNorm, ConditionEmbedding, DownTrunk, UpBlock, conv
from synthscape.core.networks.layout import LayoutGenerator, one_hot
from synthscape.core.schema.config import NetworkConfig


class ConditionalGenerator(nn.Module):
    """Latent ``[B, Z]`` + condition ``[B, A]`` -> image ``[B, C, *image_size]`` in [-1, 1].

    The condition embedding is concatenated to the latent and modulates every GroupNorm (FiLM),
    so the label reaches every resolution.
    """

    def __init__(self, config: NetworkConfig, cardinalities: Sequence[int]):
        super().__init__()
        self.config = config
        self.cardinalities = list(cardinalities)
        d, widths, e = config.spatial_dims, config.generator_channels, config.embed_dim
        self.embed = ConditionEmbedding(cardinalities, e, enabled=config.conditional)
        self.project = nn.Linear(config.latent_dim + e, widths[0] * math.prod(config.start_size))
        self.blocks = nn.ModuleList(
            UpBlock(d, c_in, c_out, e, config.norm_groups) for c_in, c_out in pairwise(widths)
        )
        self.out_norm = ConditionalGroupNorm(d, widths[-1], e, config.norm_groups)
        self.out_conv = conv(d, widths[-1], config.channels)
        self.act = nn.SiLU()

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Latent float ``[B, Z]`` + condition int64 ``[B, A]`` -> image ``[B, C, *image_size]``."""
        embedding = self.embed(condition)
        x = self.project(torch.cat([z, embedding], dim=1))
        x = x.unflatten(1, (self.config.generator_channels[0], *self.config.start_size))
        for block in self.blocks:
            x = block(x, embedding)
        return torch.tanh(self.out_conv(self.act(self.out_norm(x, embedding))))


class ProjectionDiscriminator(nn.Module):
    """Image + condition -> realness score ``[B]`` (Miyato & Koyama 2018, one projection per attribute).

    score = linear(features) + sum_a <embedding_a(y_a), features>. Spectral normalisation is a
    training-time option; it is a parametrisation, so plain weights come out with ``state_dict``.
    """

    def __init__(self, config: NetworkConfig, cardinalities: Sequence[int], classifier: bool = False):
        super().__init__()
        self.trunk = DownTrunk(config.spatial_dims, config.channels + config.layout_classes, config.critic_channels, groups=None)
        self.layout_classes = config.layout_classes
        width = config.critic_channels[-1]
        self.linear = nn.Linear(width, 1)
        self.embed = ConditionEmbedding(cardinalities, width, enabled=config.conditional)
        nn.init.normal_(self.embed.table.weight, std=0.02)
        if config.spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d, nn.Embedding)):
                    spectral_norm(module)
        # AC-GAN heads (Odena et al. 2017), one per attribute, on the same features: the generator
        # is then pushed to make its label readable, not only to be scored real for it. LayerNorm
        # first and no spectral norm: the trunk's mean activations are small (std 0.05-0.3), and a
        # unit-norm head on them, or a plain one that Adam grows by ~lr a step, stayed at the label
        # prior's cross-entropy for hundreds of steps (measured)
        self.heads = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n))
                                   for n in cardinalities) if classifier else None

    def forward(self, x: torch.Tensor, condition: torch.Tensor, layout: torch.Tensor | None = None, logits: bool = False):
        """The score ``[B]``; with ``logits`` also each attribute's logits (needs ``classifier``).
        A layout model's critic sees the label map beside the image (one-hot channels), so it can
        tell an image that ignores its layout from one that obeys it."""
        feature_map = self.trunk(with_layout(x, layout, self.layout_classes)).flatten(2)
        features = feature_map.sum(dim=2)
        projection = (self.embed.lookup(condition) * features.unsqueeze(1)).sum(dim=(1, 2))
        score = self.linear(features).squeeze(1) + projection
        if not logits:
            return score
        mean = feature_map.mean(dim=2)  # the heads read a mean: their scale does not grow with the image
        return score, [head(mean) for head in self.heads]


class ConditionalEncoder(nn.Module):
    """Image + condition -> (mu, logvar) of the latent, each ``[B, Z]``.

    The condition joins after the trunk, so the latent is free to hold what the label does not.
    The trunk's last feature map is flattened, not pooled: where things are matters.
    """

    def __init__(self, config: NetworkConfig, cardinalities: Sequence[int]):
        super().__init__()
        self.trunk = DownTrunk(config.spatial_dims, config.channels + config.layout_classes, config.critic_channels,
                               config.norm_groups)
        self.layout_classes = config.layout_classes
        self.embed = ConditionEmbedding(cardinalities, config.embed_dim, enabled=config.conditional)
        features = config.critic_channels[-1] * math.prod(config.end_size)
        self.head = nn.Linear(features + config.embed_dim, 2 * config.latent_dim)

    def forward(self, x: torch.Tensor, condition: torch.Tensor,
                layout: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``[B, C, *image_size]`` + condition ``[B, A]`` (+ a layout model's label map) ->
        ``(mu, logvar)``, each ``[B, Z]``; logvar is clamped to [-30, 20], which keeps
        ``exp(logvar)`` and the KL term finite. Given the label map, the latent is free to hold
        what the layout does not say (the texture, the vessels)."""
        features = self.trunk(with_layout(x, layout, self.layout_classes)).flatten(1)
        mu, logvar = self.head(torch.cat([features, self.embed(condition)], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)


def with_layout(x: torch.Tensor, layout: torch.Tensor | None, classes: int) -> torch.Tensor:
    """``x`` with the label map's one-hot channels appended (a layout model's critic and encoder input)."""
    if classes == 0:
        return x
    if layout is None:
        raise SynthscapeError("this network was built for a label map beside the image, and none was given")
    return torch.cat([x, one_hot(layout, classes, x.dtype)], dim=1)


def build_generator(config: NetworkConfig, cardinalities: Sequence[int]) -> nn.Module:
    """The generator the config describes: the layout generator when it takes a label map, else the class-only one."""
    if config.layout_classes:
        return LayoutGenerator(config, cardinalities)
    return ConditionalGenerator(config, cardinalities)


def check_inputs(config: NetworkConfig, cardinalities: Sequence[int], z: torch.Tensor | None,
                 condition: torch.Tensor, images: torch.Tensor | None = None, layout: torch.Tensor | None = None,
                 noise: torch.Tensor | None = None) -> None:
    """Refuse tensors of the wrong shape or dtype with a message that says what was expected.
    A layout model's label map may have any size its stages divide; its images are checked at that size."""
    batch = condition.shape[0] if condition.dim() else -1
    if condition.dtype != torch.int64 or tuple(condition.shape) != (batch, len(cardinalities)):
        raise SynthscapeError(f"condition must be int64 [batch, {len(cardinalities)}], got {condition.dtype} {list(condition.shape)}")
    if z is not None and (not z.is_floating_point() or tuple(z.shape) != (batch, config.latent_dim)):
        raise SynthscapeError(f"z must be float [{batch}, {config.latent_dim}], got {z.dtype} {list(z.shape)}")
    size = tuple(config.image_size)
    if layout is not None:
        size = check_layout(config, layout, batch)
        if noise is not None and (not noise.is_floating_point() or tuple(noise.shape) != (batch, 1, *size)):
            raise SynthscapeError(f"noise must be float {[batch, 1, *size]}, got {noise.dtype} {list(noise.shape)}")
    if images is not None:
        expected = (batch, config.channels, *size)
        if tuple(images.shape) != expected:
            raise SynthscapeError(f"images must have shape {list(expected)}, got {list(images.shape)}")


def check_layout(config: NetworkConfig, layout: torch.Tensor, batch: int) -> tuple[int, ...]:
    """A label map's spatial size, if it is int64 ``[batch, *size]`` with every side a multiple of the
    generator's ``2 ** stages`` and ids below ``layout_classes``."""
    factor = 2 ** (len(config.generator_channels) - 1)
    size = tuple(layout.shape[1:])
    if layout.dtype != torch.int64 or layout.dim() != config.spatial_dims + 1 or layout.shape[0] != batch:
        raise SynthscapeError(f"layout must be int64 [{batch}, {config.spatial_dims} sides], got {layout.dtype} {list(layout.shape)}")
    if any(s < factor or s % factor for s in size):
        raise SynthscapeError(f"a label map of size {list(size)} cannot be rendered: every side must be a multiple of {factor} "
                              f"(this generator's {len(config.generator_channels) - 1} upsampling stages)")
    if layout.numel() and (int(layout.min()) < 0 or int(layout.max()) >= config.layout_classes):
        raise SynthscapeError(f"layout holds ids {int(layout.min())}..{int(layout.max())}; this generator knows 0..{config.layout_classes - 1}")
    return size
