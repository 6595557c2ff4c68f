"""The layout generator: label map + latent + condition -> image, fully convolutional, 2D and 3D.

Where the class-only generator (``nets.ConditionalGenerator``) must invent structure, this one is
told it: the label map modulates every normalisation (spatially adaptive normalisation, SPADE;
Park et al. 2019, MONAI's ``SPADE`` block), so the generator learns appearance (what lung, a solid
nodule, the tissue around them look like), not anatomy. The condition and a global latent keep
modulating every stage as FiLM, as in the class-only generator.

One layout must give many images. A generator handed the label map learns to ignore a global
latent (measured: two renders of one layout differed by 0.047 where real volumes differ by 0.24),
so the noise is also spatial: a full-size noise map comes in as an input and is average-pooled to
every stage, rescaled to unit variance, and added with a learned per-channel weight (StyleGAN's
noise injection). Nothing is drawn inside ``forward``: export and seeding stay exact.

No layer depends on the image size, so a generator trained on crops renders a label map of any
size whose sides are multiples of ``2 ** stages``. Every convolution pads by repeating the edge
voxels, SPADE's own included: zero padding shows SPADE a border where no class is present, which
the interior never has, and a 64^3 render from 32^3 crops came out with bright seams on its faces.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from monai.networks.blocks import SPADE
from monai.networks.blocks import UpSample
from torch import nn

from synthscape.core.networks.blocks import ConditionEmbedding, HalvingPool, conv, group_count
from synthscape.core.schema.config import NetworkConfig


def one_hot(layout: torch.Tensor, classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """int64 label map ``[B, *spatial]`` -> one-hot ``[B, classes, *spatial]``, by comparison with
    ``0 .. classes - 1`` (an Equal node in ONNX, no OneHot operator needed)."""
    ids = torch.arange(classes, device=layout.device).view(1, classes, *([1] * (layout.dim() - 1)))
    return (layout.unsqueeze(1) == ids).to(dtype)


class SpatialNorm(nn.Module):
    """GroupNorm without affine, then MONAI's SPADE scale and shift read off the label map at this
    resolution, then FiLM from the style vector (condition embedding + latent), zero-initialised."""

    def __init__(self, spatial_dims: int, channels: int, classes: int, style_dim: int, groups: int):
        super().__init__()
        hidden = max(8, min(32, channels // 2))  # the SPADE convolutions run at the feature's resolution: keep them narrow
        self.spade = SPADE(classes, channels, kernel_size=3, spatial_dims=spatial_dims, hidden_channels=hidden,
                           norm="GROUP", norm_params={"num_groups": group_count(channels, groups), "affine": False})
        self.film = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor, segmap: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, C, *s]``, class fractions ``segmap`` ``[B, K, *s]``, style ``[B, S]``."""
        gamma, beta = self.film(style).unflatten(1, (2, -1)).unbind(1)
        spatial = (..., *([None] * self.spatial_dims))
        return self.spade(x, segmap) * (1 + gamma[spatial]) + beta[spatial]


class NoiseInjection(nn.Module):
    """``x + weight * noise``, one learned weight per channel, zero at first (StyleGAN)."""

    def __init__(self, spatial_dims: int, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, *([1] * spatial_dims)))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, C, *s]`` plus the weighted single-channel ``noise`` ``[B, 1, *s]``."""
        return x + self.weight * noise


class LayoutUpBlock(nn.Module):
    """A residual stage doubling the size, as ``blocks.UpBlock``, with SPADE norms and noise injected
    after the upsampling: norm, SiLU, conv (low resolution); nearest x2; noise; norm, SiLU, conv."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, classes: int, style_dim: int, groups: int):
        super().__init__()
        self.norm1 = SpatialNorm(spatial_dims, in_channels, classes, style_dim, groups)
        self.conv1 = conv(spatial_dims, in_channels, out_channels)
        self.up = UpSample(spatial_dims, out_channels, out_channels, scale_factor=2, mode="nontrainable",
                           pre_conv=None, interp_mode="nearest", align_corners=None)
        self.noise = NoiseInjection(spatial_dims, out_channels)
        self.norm2 = SpatialNorm(spatial_dims, out_channels, classes, style_dim, groups)
        self.conv2 = conv(spatial_dims, out_channels, out_channels)
        self.skip = conv(spatial_dims, in_channels, out_channels, kernel_size=1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, low: torch.Tensor, high: torch.Tensor, noise: torch.Tensor,
                style: torch.Tensor) -> torch.Tensor:
        """``x`` at the low resolution with its class fractions ``low``; ``high`` and ``noise`` at twice it."""
        h = self.noise(self.up(self.conv1(self.act(self.norm1(x, low, style)))), noise)
        h = self.conv2(self.act(self.norm2(h, high, style)))
        return self.up(self.skip(x)) + h


class LayoutGenerator(nn.Module):
    """Latent ``[B, Z]`` + condition ``[B, A]`` + label map int64 ``[B, *S]`` + noise ``[B, 1, *S]``
    -> image ``[B, C, *S]`` in [-1, 1], for any ``S`` divisible by ``2 ** (len(widths) - 1)``.

    The label map enters as class fractions at every resolution (the one-hot map average-pooled, so
    a nodule smaller than a coarse voxel still counts there); the stem starts from the coarsest
    fractions and noise, so nothing depends on the size."""

    def __init__(self, config: NetworkConfig, cardinalities: Sequence[int]):
        super().__init__()
        self.config = config
        d, widths, k = config.spatial_dims, config.generator_channels, config.layout_classes
        style = config.embed_dim + config.latent_dim
        self.embed = ConditionEmbedding(cardinalities, config.embed_dim, enabled=config.conditional)
        self.stages = len(widths) - 1
        self.pool_labels = HalvingPool(d, k)
        self.pool_noise = HalvingPool(d, 1)
        self.stem = conv(d, k + 1, widths[0])
        self.blocks = nn.ModuleList(LayoutUpBlock(d, a, b, k, style, config.norm_groups) for a, b in pairwise(widths))
        self.out_norm = SpatialNorm(d, widths[-1], k, style, config.norm_groups)
        self.out_conv = conv(d, widths[-1], config.channels)
        self.act = nn.SiLU()
        self.noise_gain = 2.0 ** (d / 2)  # the mean of 2^d unit-variance values has variance 2^-d
        for module in self.modules():  # edges repeated, not zeros (module docstring); MONAI's SPADE has no option for it
            if isinstance(module, nn.modules.conv._ConvNd) and any(module.padding):
                module.padding_mode = "replicate"

    def pyramids(self, layout: torch.Tensor, noise: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Class fractions and unit-variance noise at every resolution, full size first."""
        labels, noises = [one_hot(layout, self.config.layout_classes, noise.dtype)], [noise]
        for _ in range(self.stages):
            labels.append(self.pool_labels(labels[-1]))
            noises.append(self.pool_noise(noises[-1]) * self.noise_gain)
        return labels, noises

    def forward(self, z: torch.Tensor, condition: torch.Tensor, layout: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """See the class docstring; sizes are checked by ``nets.check_inputs`` where they come in."""
        labels, noises = self.pyramids(layout, noise)
        style = torch.cat([self.embed(condition), z], dim=1)
        x = self.stem(torch.cat([labels[-1], noises[-1]], dim=1))
        for i, block in enumerate(self.blocks):
            level = self.stages - i
            x = block(x, labels[level], labels[level - 1], noises[level - 1], style)
        return torch.tanh(self.out_conv(self.act(self.out_norm(x, labels[0], style))))
