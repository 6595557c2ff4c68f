"""The dashcam's batched drawing paths equal the scalar ones they replaced, bit for bit: projected
points, box corners, queued polygons, masked canvas copies, the ray-length map and the grain."""

import math

import numpy as np
import pytest

from synthscape.domains.driving.dashcam import _texture
from synthscape.domains.driving.dashcam_camera import Box3, Camera, Sprite, WorldPolys, box_corners, quad
from synthscape.domains.driving.scene import SEMANTIC_ID, Canvas

CAM = Camera(64, 96, 27.3, 61.7, 1.31)


def test_project_many_equals_project_including_the_near_clamp():
    pts = np.random.default_rng(0).uniform([-8, -1, -2], [8, 4, 60], (200, 3))
    pts[:5, 2] = [0.0, 0.01, 0.05, -1.0, 0.049]  # clamped to 0.05 like the scalar path
    expected = np.array([CAM.project(*p) for p in pts.tolist()])
    np.testing.assert_array_equal(CAM.project_many(pts), expected)


def test_box_corners_equal_box3_corners():
    boxes = [Box3(1.3, 12.7, 0.31, 0.9, 0.28, 0.8, -2.2, 2.1), Box3(-4.1, 30.2, math.pi + 0.02, 1.2, 0.5, 3.3, -4, 1)]
    expected = np.array([p for b in boxes for p in b.corners()])
    np.testing.assert_array_equal(box_corners(boxes), expected)


def test_world_polys_draw_what_quad_and_poly_draw_one_by_one():
    box = Box3(0.7, 9.3, 0.4, 0.9, 0.0, 1.4, -2.3, 2.3)
    faces = box.faces(CAM)
    ring = np.array([[0.2 + 0.3 * math.cos(t), 0.3 + 0.3 * math.sin(t), 8.1] for t in np.arange(8) * math.pi / 4])
    sprite_args = (10.2, 5.7, 80.1, 50.3)
    batched, scalar = Sprite(CAM, *sprite_args), Sprite(CAM, *sprite_args)
    polys = WorldPolys()
    spans = [(0.0, 1.0, 0.0, 1.0), (0.1, 0.9, 0.2, 0.6), (0.03, 0.2, 0.5, 0.8)]
    for k, face in enumerate(faces.values()):
        for st in spans:
            polys.quad(face, (k, 10, 20), *st)
            scalar.poly(quad(CAM, face, *st), (k, 10, 20))
    polys.points(ring, (1, 2, 3))
    scalar.poly([CAM.project(*p) for p in ring.tolist()], (1, 2, 3))
    corners = polys.fill(CAM, batched)
    assert (scalar.idx > 0).sum() > 100  # the test draws something
    np.testing.assert_array_equal(batched.idx, scalar.idx)
    assert batched.pal == scalar.pal
    expected = np.array([quad(CAM, face, *st) for face in faces.values() for st in spans])
    np.testing.assert_array_equal(corners, expected)


def _reference_paint(canvas: Canvas, mask, origin, colour, semantic, depth) -> None:
    """The numpy masked copies Canvas.paint used to do."""
    r0, c0 = origin
    h, w = mask.shape
    rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r0 + h, canvas.height), min(c0 + w, canvas.width)
    if rr1 <= rr0 or cc1 <= cc0:
        return
    local = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    where = mask[local].astype(bool)
    target = (slice(rr0, rr1), slice(cc0, cc1))
    colour = np.asarray(colour)
    np.copyto(canvas.image[target], colour[local] if colour.ndim == 3 else colour.astype(np.uint8),
              where=where[..., None])
    depth = np.asarray(depth, dtype=np.float32)
    np.copyto(canvas.depth[target], depth[local] if depth.ndim == 2 else depth, where=where)
    np.copyto(canvas.semantic[target], SEMANTIC_ID[semantic], where=where)
    if canvas._current:
        canvas.objects[-1].full_area += int(np.count_nonzero(where & (canvas.instances[target] != canvas._current)))
    np.copyto(canvas.instances[target], canvas._current, where=where)


@pytest.mark.parametrize("size", [(5, 7), (40, 30)])  # numpy path (few pixels) and cv2 path
def test_paint_equals_the_numpy_masked_copies(size):
    rng = np.random.default_rng(1)
    new, ref = Canvas(32, 48), Canvas(32, 48)
    for k, origin in enumerate([(3, 4), (-2, 40), (25, 5), (10, -3), (-50, 0)]):
        mask = rng.random(size) < 0.6
        mask = mask if k % 2 else mask.astype(np.uint8) * 7  # bool and uint8 masks
        colour = rng.integers(0, 256, size + (3,)).astype(np.uint8) if k % 2 else (10.7, 200, 31)
        depth = (rng.uniform(1, 90, size).astype(np.float32) if k < 2 else
                 rng.uniform(1, 90, (size[0], 1)) if k == 2 else 12.5)  # [h, 1]: broadcast along rows
        for canvas, paint in ((new, Canvas.paint), (ref, _reference_paint)):
            canvas.begin("car", 3.0 + k) if k % 3 else canvas.end()
            paint(canvas, mask, origin, colour, "car" if k % 3 else "road", depth)
    for name in ("image", "depth", "semantic", "instances"):
        np.testing.assert_array_equal(getattr(new, name), getattr(ref, name), err_msg=name)
    assert [o.full_area for o in new.objects] == [o.full_area for o in ref.objects]
    assert sum(o.full_area for o in new.objects) > 0 and (new.instances > 0).any()


def test_ray_map_equals_the_per_box_formula():
    r0, r1, c0, c1 = 20, 50, 13, 77
    a = (np.arange(c0, c1, dtype=np.float32) + 0.5 - np.float32(CAM.cx)) / np.float32(CAM.f)
    b = ((np.arange(r0, r1, dtype=np.float32) + 0.5 - np.float32(CAM.hz)) / np.float32(CAM.f))[:, None]
    np.testing.assert_array_equal(CAM.ray[r0:r1, c0:c1], np.sqrt(1 + a * a + b * b))


def test_texture_is_the_clipped_sum_of_image_and_grain():
    canvas = Canvas(24, 40)
    canvas.image[:] = np.random.default_rng(2).choice(np.array([0, 1, 3, 128, 252, 255], np.uint8), (24, 40, 3))
    before = canvas.image.astype(np.int16)
    _texture(canvas, np.random.default_rng(5))
    rng = np.random.default_rng(5)  # the tile offsets _texture drew
    r, c = int(rng.integers(24)), int(rng.integers(40))
    grain = np.random.default_rng(12345).integers(-5, 6, (48, 80, 1)).astype(np.int16)[r:r + 24, c:c + 40]
    np.testing.assert_array_equal(canvas.image, np.clip(before + grain, 0, 255).astype(np.uint8))
    assert (canvas.image != before).any()
