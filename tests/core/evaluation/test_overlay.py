"""Mask outlines land exactly on a class's boundary pixels, and the three planes pass through the
nodule, in the radiological orientation of core/files/grids.py: three_planes."""

import subprocess
import sys

import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.overlay import GAP, PALETTE, outlined, outlined_planes

WHITE = (255, 255, 255)


def squares():
    """A grey ramp image and a 6x6 square of class 1 (rows and columns 4..9) holding a 2x2 class 2."""
    image = np.linspace(-1, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    labels = np.zeros((16, 16), np.uint8)
    labels[4:10, 4:10] = 1
    labels[6:8, 6:8] = 2
    return image, labels


def test_outline_pixels_are_exactly_the_square_boundary():
    image, labels = squares()
    picture = outlined(image, labels)
    assert picture.shape == (16, 16, 3) and picture.dtype == np.uint8
    ring = np.zeros((16, 16), bool)
    ring[4:10, 4:10] = True
    ring[5:9, 5:9] = False
    nodule = labels == 2  # 2x2: every pixel is a boundary pixel
    grey = np.clip((image + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    assert (picture[ring] == PALETTE[0]).all()
    assert (picture[nodule] == PALETTE[1]).all()
    rest = ~ring & ~nodule  # outside the square and the class-1 pixels round the nodule: untouched grey
    assert (picture[rest] == grey[rest][:, None]).all()
    assert picture[5, 6].tolist() == [grey[5, 6]] * 3  # no second, lung-coloured ring round the nodule


def test_grey_values_map_minus_one_to_one_onto_the_byte_range():
    image = np.array([[-1.0, 0.0, 1.0, 2.0]], np.float32)
    picture = outlined(image, np.zeros((1, 4), np.uint8))
    assert picture[0, :, 0].tolist() == [0, 128, 255, 255]
    assert (picture[..., 0] == picture[..., 2]).all()


def test_given_colours_draw_only_those_classes():
    image, labels = squares()
    picture = outlined(image, labels, colors={2: (1, 2, 3)})
    assert (picture[labels == 2] == (1, 2, 3)).all()
    assert picture[4, 4].tolist() == [picture[4, 4, 0]] * 3  # class 1 not drawn: grey


def test_refuses_a_label_map_of_another_shape():
    with pytest.raises(SynthscapeError, match="label map of its shape"):
        outlined(np.zeros((4, 4)), np.zeros((4, 5), np.uint8))
    with pytest.raises(SynthscapeError, match="integer class ids"):
        outlined(np.zeros((4, 4)), np.zeros((4, 4)))


@pytest.mark.parametrize("shape", [(16, 16, 16), (20, 12, 10)])
def test_planes_pass_through_the_nodule_centroid(shape):
    x, y, z = shape
    volume = np.full(shape, -1.0, np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[2:-2, 2:-2, 2:-2] = 1
    i, j, k = 13, 4, 6  # off centre on every axis
    labels[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2] = 2  # a 3^3 nodule: centroid (i, j, k)
    volume[i, j, k] = 1.0  # bright at the centroid only
    picture = outlined_planes(volume, labels, min_side=48)
    f = -(-48 // min(shape))
    assert picture.shape == (f * max(y, z), f * (x + x + y) + 2 * GAP, 3)

    def at(row, col, left=0):  # the middle of a voxel's f x f block
        return picture[row * f + f // 2, left + col * f + f // 2].tolist()

    # axial hu[::-1, ::-1, k].T: row = Y - 1 - j, column = X - 1 - i; coronal: row = Z - 1 - k,
    # column = X - 1 - i; sagittal: row = Z - 1 - k, column = j
    assert at(y - 1 - j, x - 1 - i) == list(WHITE)
    assert at(z - 1 - k, x - 1 - i, left=f * x + GAP) == list(WHITE)
    assert at(z - 1 - k, j, left=2 * (f * x + GAP)) == list(WHITE)
    assert at(y - 1 - j + 1, x - 1 - i) == [0, 0, 0]  # the nodule's other voxels stay dark inside the ring
    assert picture[(y - 1 - j - 1) * f, (x - 1 - i) * f + f // 2].tolist() == list(PALETTE[1])  # the ring's top edge
    assert (picture[:, f * x: f * x + GAP] == 0).all()  # the gap


def test_planes_without_a_class_go_through_the_centre():
    volume = np.full((8, 8, 8), -1.0, np.float32)
    volume[4, 4, 4] = 1.0
    picture = outlined_planes(volume, np.zeros((8, 8, 8), np.uint8), min_side=16)
    # axial row 8 - 1 - 4 = 3, column 3; factor 2, block middle at 2 * 3 + 1
    assert picture[7, 7].tolist() == list(WHITE)
    assert (picture[..., 0] == picture[..., 1]).all()  # nothing outlined


def test_imports_without_torch():
    script = ("import sys\nfor name in ('torch', 'monai'):\n    sys.modules[name] = None\n"
              "import synthscape.core.evaluation.overlay\n")
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
