"""Images that people would rather look at than read: sample grids and 3D three-plane views.

numpy + OpenCV only.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import write_bytes


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> uint8, clipped."""
    return np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def three_planes(volume: np.ndarray) -> np.ndarray:
    """``[C, X, Y, Z]`` RAS+ -> ``[C, H, 3 * W]``: the middle axial, coronal and sagittal planes.

    Shown as CT viewers show them (radiological convention): axial with anterior up and the
    patient's right on the screen's left, coronal with superior up and the right on the left,
    sagittal with superior up and anterior on the right. Planes are padded to a common square so
    volumes of any shape line up.
    """
    c, x, y, z = volume.shape
    volume = volume[:, ::-1]  # patient's right (high i) to the screen's left
    planes = [volume[:, :, :, z // 2], volume[:, :, y // 2, :], volume[:, x // 2, :, :]]
    side = max(x, y, z)
    padded = [np.pad(p, ((0, 0), (0, side - p.shape[1]), (0, side - p.shape[2])), constant_values=-1.0) for p in planes]
    # rows run along the plane's second axis (A or S), highest at the top
    return np.concatenate([np.swapaxes(p, 1, 2)[:, ::-1] for p in padded], axis=2)


def grid(images: np.ndarray, columns: int | None = None, gap: int = 2, min_side: int = 64) -> np.ndarray:
    """``[N, C, *spatial]`` in [-1, 1] -> one uint8 picture ``[H, W]`` or ``[H, W, 3]``.

    3D samples become three-plane strips, two per row (8 images per row for 2D). Images smaller
    than ``min_side`` are enlarged by an integer factor (nearest neighbour, so voxels stay
    visible as voxels): a 16^3 volume is otherwise too small to judge.
    """
    images = np.asarray(images)
    if images.ndim == 5:
        images = np.stack([three_planes(v) for v in images])
        columns = columns or 2
    columns = columns or 8
    if images.ndim == 4 and (factor := -(-min_side // min(images.shape[2:]))) > 1:
        images = images.repeat(factor, axis=2).repeat(factor, axis=3)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise SynthscapeError(f"a sample grid needs [N, 1 or 3, H, W] or [N, C, X, Y, Z] images, got {list(images.shape)}")
    n, c, h, w = images.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    canvas = np.full((c, rows * (h + gap) - gap, columns * (w + gap) - gap), -1.0, dtype=np.float32)
    for i, image in enumerate(images):
        r, q = divmod(i, columns)
        canvas[:, r * (h + gap): r * (h + gap) + h, q * (w + gap): q * (w + gap) + w] = image
    picture = to_uint8(canvas)
    return picture[0] if c == 1 else np.moveaxis(picture, 0, -1)


def encode_png(picture: np.ndarray, what: str) -> bytes:
    """A uint8 grey or RGB picture (or a uint16 grey one: instance maps) as PNG bytes; ``what`` names it in the error."""
    bgr = picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", bgr)
    if not ok:
        raise SynthscapeError(f"OpenCV could not encode {what}")
    return encoded.tobytes()


def write_png(path: str | Path, picture: np.ndarray) -> Path:
    """Write a uint8 grey or RGB picture (or a uint16 grey one) as PNG, atomically."""
    path = Path(path)
    return write_bytes(path, encode_png(picture, str(path)))
