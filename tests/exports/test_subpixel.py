"""The sub-pixel rewrite of up-blocks: the same function as the trained network, in 2D and 3D."""

import pytest
import torch
import torch.nn.functional as F

from synthscape.core.networks.blocks import UpBlock
from synthscape.exports.subpixel import SubpixelUpBlock, depth_to_space, subpixel_kernel


def test_depth_to_space_2d_is_pixel_shuffle():
    x = torch.randn(3, 4 * 5, 6, 7)
    assert torch.equal(depth_to_space(x, 2), F.pixel_shuffle(x, 2))


def test_depth_to_space_3d_puts_each_phase_on_its_sub_voxel():
    x = torch.randn(2, 8 * 3, 4, 5, 6)
    out = depth_to_space(x, 3)
    assert out.shape == (2, 3, 8, 10, 12)
    for phase in range(8):
        a, b, c = phase >> 2, (phase >> 1) & 1, phase & 1
        assert torch.equal(out[:, :, a::2, b::2, c::2], x[:, phase::8])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_subpixel_block_computes_the_up_block(spatial_dims):
    torch.manual_seed(spatial_dims)
    block = UpBlock(spatial_dims, in_channels=6, out_channels=4, embed_dim=5, groups=2).eval()
    for film in (block.norm1.film, block.norm2.film):  # zero at initialisation: give the norms work
        torch.nn.init.normal_(film.weight, std=0.5)
        torch.nn.init.normal_(film.bias, std=0.5)
    x, embedding = torch.randn(3, 6, *[5] * spatial_dims), torch.randn(3, 5)
    with torch.no_grad():
        expected = block(x, embedding)
        got = SubpixelUpBlock(block)(x, embedding)
    assert got.shape == expected.shape == (3, 4, *[10] * spatial_dims)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_subpixel_kernel_refuses_other_kernel_sizes():
    with pytest.raises(ValueError, match="3\\^2 kernel"):
        subpixel_kernel(torch.zeros(2, 2, 5, 5), 2)
