"""Training crops for layout models: a fully convolutional generator learns from crops and renders any size.

A crop of a 64^3 volume costs an eighth of the whole one per step, and a generator that only ever
sees its label map and noise (``core/networks/layout.py``) has nothing tied to the size. Crops
are class-balanced, as MONAI's ``RandCropByLabelClasses`` draws them: each crop centres on a
voxel of a class drawn uniformly among the classes present in its item, so a nodule of a few
voxels is in the crop as often as the lung around it (a uniform crop would show a 32^3 crop of a
64^3 volume's nodule one time in eight). Positions come from the run's checkpointed noise
generator, so a resumed run crops exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def crop_starts(layout: torch.Tensor, size: Sequence[int], noise: torch.Generator) -> list[list[int]]:
    """One crop corner per item of ``layout`` ``[B, *S]``: centred on a voxel of a class drawn
    uniformly among the item's classes (background included), clamped to lie inside."""
    starts = []
    for item in layout:
        classes = torch.unique(item)
        chosen = classes[torch.randint(len(classes), (1,), generator=noise, device=noise.device).item()]
        voxels = torch.nonzero(item == chosen)
        centre = voxels[torch.randint(len(voxels), (1,), generator=noise, device=noise.device).item()]
        starts.append([min(max(int(c) - s // 2, 0), full - s) for c, s, full in zip(centre, size, item.shape)])
    return starts


def crop_batch(images: torch.Tensor, layout: torch.Tensor, size: Sequence[int],
               noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[B, C, *S]`` and label maps ``[B, *S]`` cut to ``size`` at class-balanced places
    (unchanged where ``S`` already is ``size``)."""
    if tuple(layout.shape[1:]) == tuple(size):
        return images, layout
    if any(s > full for s, full in zip(size, layout.shape[1:])):
        from synthscape.core.errors import SynthscapeError

        raise SynthscapeError(f"training crops of {list(size)} do not fit in items of {list(layout.shape[1:])}")
    cut_images, cut_layouts = [], []
    for image, item, start in zip(images, layout, crop_starts(layout, size, noise)):
        window = tuple(slice(a, a + s) for a, s in zip(start, size))
        cut_images.append(image[(slice(None), *window)])
        cut_layouts.append(item[window])
    return torch.stack(cut_images), torch.stack(cut_layouts)
