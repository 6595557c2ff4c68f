"""A generated image with its conditioning mask drawn on it, for a person to judge mask fidelity.

A Dice number says how far a sample strays from its mask; a picture says how: a nodule shifted,
smeared, or missing. Each class is drawn as its 1-pixel outline, so the image under it stays
visible. 3D volumes are shown as the three orthogonal planes through the nodule, since the middle
planes that sample grids show usually miss it.

numpy + OpenCV only, like core/files/grids.py, so the report can draw these where torch is absent.
"""

from __future__ import annotations

import cv2
import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.grids import to_uint8

# Class 1 (lung, box: the large context class) muted so it does not hide the image; the smaller
# classes (nodule kinds) bright and far apart in hue. Ids past the palette reuse it in turn.
PALETTE = ((70, 130, 160), (255, 40, 40), (255, 220, 0), (0, 230, 80), (255, 0, 255), (0, 220, 255), (255, 140, 0))
GAP = 4  # black pixels between the planes of a montage


def _color(class_id: int) -> tuple[int, int, int]:
    """The default colour of ``class_id`` (>= 1)."""
    return PALETTE[(class_id - 1) % len(PALETTE)]


def _check_labels(image: np.ndarray, labels: np.ndarray, ndim: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``image`` as float32 and ``labels`` as int64, both ``ndim``-D of one shape, or one line why not."""
    image, labels = np.asarray(image), np.asarray(labels)
    if image.ndim != ndim or labels.shape != image.shape or 0 in image.shape:
        raise SynthscapeError(f"{what} needs a {ndim}D image and a label map of its shape, "
                              f"got {list(image.shape)} and {list(labels.shape)}")
    if labels.dtype.kind not in "iub" or not np.issubdtype(image.dtype, np.number):
        raise SynthscapeError(f"{what} needs a numeric image and integer class ids, got {image.dtype} and {labels.dtype}")
    return image.astype(np.float32, copy=False), labels.astype(np.int64, copy=False)


def outlined(image: np.ndarray, labels: np.ndarray, colors: dict[int, tuple[int, int, int]] | None = None) -> np.ndarray:
    """A grey image ``[H, W]`` in [-1, 1] with the outline of each class of ``labels`` ``[H, W]`` drawn
    on it: RGB uint8 ``[H, W, 3]``.

    The outline is the class's own boundary pixels (inside it, 1 pixel wide), so a pixel coloured
    is a pixel the mask claims. Higher ids count as inside a class (its outline leaves out its
    border with them; they draw their own): a nodule in the lung gets one ring, not a second one
    of lung colour around it; a hole of background in a class is outlined. ``colors`` maps class id -> RGB and then only
    those classes are drawn (say, the nodule alone); ``None`` draws every class but the background
    in the default palette, higher ids last (on top).
    """
    image, labels = _check_labels(image, labels, 2, "an outline")
    picture = np.ascontiguousarray(np.repeat(to_uint8(image)[:, :, None], 3, axis=2))
    present = [int(c) for c in np.unique(labels) if c > 0]
    palette = {c: _color(c) for c in present} if colors is None else colors
    for class_id in sorted(palette):
        mask = np.ascontiguousarray(labels >= class_id, dtype=np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(picture, contours, -1, tuple(int(v) for v in palette[class_id]), 1)
    return picture


def _focus(labels: np.ndarray) -> tuple[int, ...]:
    """The voxel the planes pass through: the rounded centroid of the highest class present (the
    nodule, in lung-ct ids), else the volume's centre."""
    top = int(labels.max())
    if top <= 0:
        return tuple(n // 2 for n in labels.shape)
    return tuple(round(float(c)) for c in np.argwhere(labels == top).mean(0))


def _planes(volume: np.ndarray, point: tuple[int, ...]) -> list[np.ndarray]:
    """Axial, coronal and sagittal planes of a RAS+ ``[X, Y, Z]`` array through ``point``, oriented
    as ``core.files.grids.three_planes`` shows them (radiological): axial ``v[::-1, ::-1, k].T``
    (anterior up, the patient's right on the left, as domains/lung_ct/phantom.py writes it),
    coronal superior up and right on the left, sagittal superior up and anterior on the right."""
    i, j, k = point
    return [volume[::-1, ::-1, k].T, volume[::-1, j, ::-1].T, volume[i, :, ::-1].T]


def outlined_planes(volume: np.ndarray, labels: np.ndarray, min_side: int = 96) -> np.ndarray:
    """RGB uint8 montage of the three planes of ``volume`` ``[X, Y, Z]`` (RAS+, in [-1, 1]) through
    the centroid of the highest class in ``labels`` (the nodule), each outlined by ``outlined``.

    Every plane is enlarged by one integer factor (nearest neighbour, so voxels stay square and
    the same size in all three) until the volume's shortest side reaches ``min_side`` pixels; the
    outline is drawn after that, so at 16^3 it is 1 pixel thin and the nodule stays visible inside
    it. Planes sit side by side, top-aligned, ``GAP`` black pixels apart.
    """
    volume, labels = _check_labels(volume, labels, 3, "a three-plane outline")
    factor = max(1, -(-int(min_side) // min(volume.shape)))
    point = _focus(labels)
    pictures = [outlined(v.repeat(factor, 0).repeat(factor, 1), m.repeat(factor, 0).repeat(factor, 1))
                for v, m in zip(_planes(volume, point), _planes(labels, point))]
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + GAP * (len(pictures) - 1)
    montage = np.zeros((height, width, 3), np.uint8)
    left = 0
    for p in pictures:
        montage[:p.shape[0], left:left + p.shape[1]] = p
        left += p.shape[1] + GAP
    return montage
