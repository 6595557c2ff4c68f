"""Does a generated image obey its mask? A segmenter that synthscape trains on real data says.

A layout model renders an image from a label map, so every sample claims an exact mask. Nothing
in the image itself has to agree: a generator can put the nodule somewhere else, or nowhere. A
segmenter trained on real images (whose masks are true by construction) finds structures where
they are, so its Dice against the conditioning mask measures how well the sample obeys it:

- Mask fidelity: the segmenter, trained on real train images, run on generated images and scored
  against the masks they were asked for; the reference is the same segmenter on held-out real
  images with their own masks.
- Segmentation utility (TSTR / TRTR): the same segmenter trained on synthetic pairs and on real
  train pairs, both scored on the real held-out set. Synthetic data whose masks do not match its
  images teaches a segmenter the wrong places, and the ratio falls.

The network is MONAI's ``UNet`` with ``DiceCELoss`` (Dice copes with a nodule of a few voxels in a
volume of background, cross-entropy keeps the early gradients useful), small enough to train on
CPU in well under a minute at 32^3. Training is deterministic for a seed, like the label
classifier's: the report must give the same numbers on a rerun.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from torch.nn import functional as F

from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.crops import crop_batch
from synthscape.core.evaluation.label_classifier import check_images

# Three levels, two halvings: a 16^3 volume still has 4^3 at the bottom. No residual units: on
# one CPU thread a step of batch 8 at 32^3 took 0.08 s without them and 0.20 s with one each (the
# extra full-resolution convolution and norm dominate), and Dice on held-out spheres was about the
# same (0.97 against 0.98 after 300 steps). On a busy 2-core machine two threads were slower than
# one, not faster: see train_segmenter.
# In 2D one level wider and deeper: a street scene's 15 classes at 256x256 (segmenter_crop 64, 1000
# steps, 225 simulated scenes) scored held-out mIoU 0.17 with the 3D network, 0.25 with this one
# (58 s against 41 s on one thread).
ARCHITECTURE = {3: ((8, 16, 32), (2, 2)), 2: ((16, 32, 64, 128), (2, 2, 2))}  # spatial dims: (channels, strides)
RES_UNITS = 0
Pair = tuple[np.ndarray, np.ndarray]  # images [N, C, *spatial] in [-1, 1], label maps [N, *spatial]


def check_pair(images: np.ndarray, label_maps: np.ndarray, num_classes: int, what: str = "real") -> Pair:
    """Checked float32 images ``[N, C, *spatial]`` and int64 label maps ``[N, *spatial]`` of the
    same items, class ids in ``0 .. num_classes - 1``; refused with one line naming ``what``."""
    spatial_dims = np.ndim(images) - 2
    if spatial_dims not in (2, 3):
        raise SynthscapeError(f"{what} images must be [N, C, H, W] or [N, C, D, H, W], got shape {list(np.shape(images))}")
    images = check_images(images, spatial_dims, what=f"{what} images")
    label_maps = np.asarray(label_maps)
    if label_maps.shape != (images.shape[0], *images.shape[2:]):
        raise SynthscapeError(f"{what} label maps must be [N, *spatial] = {[images.shape[0], *images.shape[2:]]} "
                              f"like their images, got {list(label_maps.shape)}")
    if label_maps.dtype.kind not in "iub":
        raise SynthscapeError(f"{what} label maps must hold integer class ids, got dtype {label_maps.dtype}")
    if label_maps.size and (label_maps.min() < 0 or label_maps.max() >= num_classes):
        raise SynthscapeError(f"{what} label maps hold ids {int(label_maps.min())}..{int(label_maps.max())}, "
                              f"outside 0..{num_classes - 1}")
    return images, label_maps.astype(np.int64)


def _padded_forward(model: UNet, x: torch.Tensor) -> torch.Tensor:
    """Logits of ``model`` at ``x``'s own size, whatever it is: the UNet halves at each stride, so
    the input is padded (at the far end, with -1, the [-1, 1] background) to a multiple of their
    product and the logits cropped back. Any size works, and the loss sees no padded voxel."""
    size, multiple = x.shape[2:], int(np.prod(model.strides))
    pad = [p for n in reversed(size) for p in (0, -n % multiple)]
    logits = model(F.pad(x, pad, value=-1.0))
    return logits[(slice(None), slice(None), *(slice(0, n) for n in size))]


@dataclass
class Segmenter:
    """A trained UNet behind a numpy interface: batched, no grad, eval mode."""

    model: UNet
    num_classes: int
    image_shape: tuple[int, ...]  # (C, *spatial) of the training images

    def predict(self, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """The most likely class of every voxel: uint8 ``[N, *spatial]``."""
        images = check_images(images, len(self.image_shape) - 1, self.image_shape[0])
        self.model.eval()
        with torch.no_grad():
            parts = [_padded_forward(self.model, torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])))
                     .argmax(1).to(torch.uint8) for i in range(0, len(images), max(1, batch_size))]
        return torch.cat(parts).numpy() if parts else np.zeros((0, *images.shape[2:]), np.uint8)


def _flip(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Image and mask flipped together along a random subset of the spatial axes. Unlike the
    label classifier's labels (which lung, which side), a mask moves with its image, so a flip
    is a free new example."""
    axes = [2 + a for a in range(x.ndim - 2) if torch.rand((), generator=generator) < 0.5]
    return (x.flip(axes), y.flip(axes)) if axes else (x, y)


def train_segmenter(images: np.ndarray, label_maps: np.ndarray, num_classes: int, *, steps: int = 300,
                    batch_size: int = 8, seed: int = 0, lr: float = 2e-3, crop: int | None = None) -> Segmenter:
    """Train a MONAI ``UNet`` (``ARCHITECTURE``: in 3D channels 8-16-32, strides 2-2; no residual units, instance norm)
    with ``DiceCELoss`` and Adam on images ``[N, C, *spatial]`` in [-1, 1] and their label maps
    ``[N, *spatial]``; 2D or 3D is read from the arrays, and any spatial size works.

    Measured on a shared 2-core machine: N=60 at 32^3, 300 steps of batch 8, 46 s wall (31 s CPU)
    with ``torch.set_num_threads(1)``; with 2 threads on the same busy cores, 390 s. The caller
    owns the thread count (a library that set it would change every other model in the process).

    Deterministic for a seed: weights, batch order and flips come from seeded generators, and the
    global torch RNG is left as it was. ``crop``: train on class-balanced crops of that side
    (``core.networks.crops``, as layout models train), an eighth of a 64^3 volume's cost at 32;
    the UNet is fully convolutional, so it still segments whole volumes.
    """
    images, label_maps = check_pair(images, label_maps, num_classes)
    if len(images) == 0:
        raise SynthscapeError("cannot train a segmenter on an empty set of images")
    if num_classes < 2 or steps < 1 or batch_size < 1:
        raise SynthscapeError(f"num_classes must be >= 2, steps and batch_size >= 1, got "
                              f"num_classes={num_classes}, steps={steps}, batch_size={batch_size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        channels, strides = ARCHITECTURE[images.ndim - 2]
        model = UNet(images.ndim - 2, images.shape[1], num_classes, channels, strides, num_res_units=RES_UNITS)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(label_maps).unsqueeze(1)
    model.train()
    for _ in range(steps):
        index = torch.randperm(len(images), generator=generator)[:batch_size]
        x, y = _flip(x_all[index], y_all[index], generator)
        if crop is not None and crop < min(x.shape[2:]):
            x, cut = crop_batch(x, y[:, 0], (crop,) * (x.ndim - 2), generator)
            y = cut.unsqueeze(1)
        loss = loss_fn(_padded_forward(model, x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    return Segmenter(model, num_classes, tuple(images.shape[1:]))


def dice(predicted: np.ndarray, truth: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Per item, the Dice of the union of classes ``ids`` (all nodule kinds as one "nodule"):
    float64 ``[N]``, NaN where neither map holds any of them (nothing to find, nothing found).

    A few numpy lines rather than MONAI's ``compute_dice``: that one either scores an empty truth
    as NaN whatever was predicted (``ignore_empty``) or as 1, while a structure predicted where
    there is none must score 0 here.
    """
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape or predicted.ndim < 2:
        raise SynthscapeError(f"predicted and true label maps must be [N, *spatial] of one shape, "
                              f"got {list(predicted.shape)} and {list(truth.shape)}")
    if len(ids) == 0:
        raise SynthscapeError("dice needs at least one class id")
    p = np.isin(predicted, ids).reshape(len(predicted), -1)
    t = np.isin(truth, ids).reshape(len(truth), -1)
    total = p.sum(1) + t.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * (p & t).sum(1) / total, np.nan)


def class_iou(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Per class, the intersection over union of its pixels summed over the whole set (as the
    Cityscapes benchmark scores, so a class's small instances weigh by their area, not by their
    count): float64 ``[num_classes]``, NaN for a class neither map holds."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape:
        raise SynthscapeError(f"predicted and true label maps must have one shape, got {list(predicted.shape)} and "
                              f"{list(truth.shape)}")
    pairs = truth.astype(np.int64).ravel() * num_classes + predicted.astype(np.int64).ravel()
    confusion = np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    hit = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - hit
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, hit / union, np.nan)


def scene_iou(segmenter: Segmenter, images: np.ndarray, label_maps: np.ndarray) -> np.ndarray:
    """``class_iou`` of the segmenter's prediction on ``images`` against ``label_maps``: its
    ``nanmean`` is the mIoU. For a segmenter trained on real data and generated images rendered
    from ``label_maps``, every class found where the map says; against real images, the reference."""
    images, label_maps = check_pair(images, label_maps, segmenter.num_classes, "scored")
    return class_iou(segmenter.predict(images), label_maps, segmenter.num_classes)


def mask_fidelity(segmenter: Segmenter, images: np.ndarray, label_maps: np.ndarray, ids: Sequence[int]) -> float:
    """Mean Dice of ``ids`` over the items whose mask holds them: the segmenter trained on real
    train images finds the structure where the conditioning mask says. Reference: the same
    segmenter on held-out real images with their own masks.

    Items whose mask lacks the structure are left out (their Dice is 0 or NaN whatever the image
    shows, and would only dilute the mean by how many there are); NaN when no item holds it.
    """
    images, label_maps = check_pair(images, label_maps, segmenter.num_classes, "scored")
    scores = dice(segmenter.predict(images), label_maps, ids)
    holds = np.isin(label_maps, ids).reshape(len(label_maps), -1).any(1)
    return float(np.nanmean(scores[holds])) if holds.any() else float("nan")


def segmentation_utility(synthetic: Pair, real_train: Pair, real_test: Pair, num_classes: int, ids: Sequence[int],
                         *, steps: int = 300, seed: int = 0) -> dict[str, float]:
    """Train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

    Each set is ``(images [N, C, *spatial], label maps [N, *spatial])``. Both segmenters get the
    same seed and steps, so the data is the only difference. Returns ``{"tstr", "trtr",
    "ratio"}``: mean Dice of ``ids`` on the real test set (``mask_fidelity``) and their ratio,
    NaN when TRTR is 0 or NaN (the real data itself teaches nothing to compare against).
    """
    real = check_pair(*real_train, num_classes, "real train")
    shape = real[0].shape[1:]
    sets = {"synthetic": check_pair(*synthetic, num_classes, "synthetic"),
            "real test": check_pair(*real_test, num_classes, "real test")}
    for what, (x, _) in sets.items():
        if x.shape[1:] != shape:
            raise SynthscapeError(f"{what} images must be [N, {', '.join(map(str, shape))}] like the real train "
                                  f"images, got {list(x.shape)}")
    scores = {name: mask_fidelity(train_segmenter(*pair, num_classes, steps=steps, seed=seed), *sets["real test"], ids)
              for name, pair in (("tstr", sets["synthetic"]), ("trtr", real))}
    trtr = scores["trtr"]
    scores["ratio"] = scores["tstr"] / trtr if np.isfinite(trtr) and trtr > 0 else float("nan")
    return scores
