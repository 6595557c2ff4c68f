"""The drone renderer: shapes, determinism, scenario objects, exact boxes, true scale, occlusion."""

from __future__ import annotations

import numpy as np
import pytest

from synthscape.domains.driving.aerial import render_aerial
from synthscape.domains.driving.aerial_camera import View
from synthscape.domains.driving.aerial_objects import Tree, Vehicle, draw_tree, draw_vehicle
from synthscape.domains.driving.scene import SEMANTIC, SEMANTIC_ID, SKY_DEPTH, Canvas
from synthscape.domains.driving.schema import SCENARIOS

KEY = {"pedestrian_crossing": "pedestrian", "stalled_vehicle": "car", "debris": "debris", "cyclist": "cyclist"}


def scene(size, scenario="normal", seed=0):
    return render_aerial(size, scenario, np.random.default_rng(seed))


@pytest.mark.parametrize("size, shape", [(64, (64, 64)), (32, (32, 32)), ((48, 80), (48, 80)), (128, (128, 128))])
def test_shapes_and_dtypes(size, shape):
    for seed in range(3):
        s = scene(size, SCENARIOS[seed], seed)
        assert s.image.shape == shape + (3,) and s.image.dtype == np.uint8
        assert s.depth.shape == shape and s.depth.dtype == np.float32
        assert s.semantic.shape == shape and s.semantic.dtype == np.uint8
        assert s.instances.shape == shape and s.instances.dtype == np.int32
        assert s.view == "aerial"
        assert s.semantic.max() < len(SEMANTIC) and s.instances.max() <= len(s.objects)
        ground = s.semantic != SEMANTIC_ID["sky"]
        assert ground.any() and (s.depth[ground] > 0).all() and (s.depth[ground] < SKY_DEPTH).all()
        assert (s.depth[~ground] == SKY_DEPTH).all()
        assert (s.depth[ground] > 25).all()  # the drone is at least 40 m up, nothing is taller than half that


def test_same_seed_same_scene_other_seed_differs():
    a, b, c = scene(96, "debris", 7), scene(96, "debris", 7), scene(96, "debris", 8)
    for name in ("image", "depth", "semantic", "instances"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert [o.category for o in a.objects] == [o.category for o in b.objects]
    assert [(li.x, li.y) for li in a.lights] == [(li.x, li.y) for li in b.lights]
    assert not np.array_equal(a.image, c.image)


def test_unknown_scenario_names_the_valid_ones():
    with pytest.raises(ValueError, match="pedestrian_crossing"):
        scene(64, "meteor")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_object_present_with_box(scenario):
    for seed in range(4):
        s = scene(192, scenario, seed)
        cats = [b.category for b in s.boxes()]
        if scenario == "normal":
            assert "debris" not in cats and "cyclist" not in cats
            assert all(o.category not in ("debris", "cyclist") for o in s.objects)
            continue
        assert KEY[scenario] in cats, (scenario, seed, cats)
        if scenario == "pedestrian_crossing":  # some pedestrian stands on the road (zebra): road around it
            road = np.isin(s.semantic, [SEMANTIC_ID["road"], SEMANTIC_ID["lane_marking"]])
            on_road = False
            for b in s.boxes():
                if b.category == "pedestrian":
                    y0, x0 = max(b.y - 2, 0), max(b.x - 2, 0)
                    ring = road[y0:b.y + b.h + 2, x0:b.x + b.w + 2]
                    on_road |= ring.mean() > 0.3
            assert on_road
        if scenario == "stalled_vehicle":
            assert any(li.kind == "signal" for li in s.lights)


def test_boxes_inside_and_tight():
    for seed in range(6):
        s = scene((120, 160), SCENARIOS[seed % 5], seed)
        boxes = s.boxes()
        assert boxes
        for b in boxes:
            assert 0 <= b.x and 0 <= b.y and b.x + b.w <= 160 and b.y + b.h <= 120
            mine = s.instances[b.y:b.y + b.h, b.x:b.x + b.w] == b.instance
            assert mine[0].any() and mine[-1].any() and mine[:, 0].any() and mine[:, -1].any()
            assert mine.sum() == b.area == (s.instances == b.instance).sum()


def test_lights_in_image_and_typed():
    s = scene(160, "stalled_vehicle", 3)
    assert s.lights
    for li in s.lights:
        assert 0 <= li.x < 160 and 0 <= li.y < 160 and li.radius > 0
        assert li.kind in ("headlight", "taillight", "street", "signal", "window")


def test_oblique_depth_grows_towards_the_top():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        s = render_aerial(96, "normal", rng)
        d = s.depth
        if d[0, 48] > 1.3 * d[-1, 48]:  # an oblique view
            ground = np.where(s.semantic == SEMANTIC_ID["sky"], np.nan, d)
            assert np.nanmin(ground[:8]) > np.nanmax(ground[-8:])  # far rows beyond near rows
            return
    pytest.fail("no oblique view in 12 seeds")


def _car(view, x, y, heading=0.3):
    return Vehicle(x=x, y=y, heading=heading, kind="car", colour=(170, 30, 30), length=4.5, width=1.8)


def test_car_area_true_to_scale_top_down():
    for altitude, hfov in ((40.0, 60.0), (80.0, 50.0), (120.0, 70.0)):
        view = View(256, 256, altitude, 0.0, hfov)
        canvas = Canvas(256, 256)
        draw_vehicle(canvas, view, np.zeros((256, 256), np.uint8), np.array([0.5, 0.2]), _car(view, 1.0, -2.0))
        s = canvas.scene("aerial")
        mpp = altitude / view.f  # metres per pixel at nadir
        length, width = 4.5 / mpp, 1.8 / mpp  # pixels; hard-edged fills also take the pixels their edges cross
        area = int((s.instances == 1).sum())
        assert 0.85 * length * width <= area <= (length + 2) * (width + 2), (altitude, area, length * width)
        assert s.objects[0].full_area == area
        assert abs(float(s.depth[s.instances == 1].mean()) - (altitude - 1.45)) < 1.0


def test_car_under_tree_crown_gets_no_box():
    view = View(128, 128, 60.0, 0.0, 60.0)
    canvas = Canvas(128, 128)
    shadows = np.zeros((128, 128), np.uint8)
    sun = np.array([0.4, 0.1])
    draw_vehicle(canvas, view, shadows, sun, _car(view, 5.0, 5.0))
    draw_vehicle(canvas, view, shadows, sun, _car(view, -12.0, 5.0))
    draw_tree(canvas, view, shadows, sun, Tree(x=5.0, y=5.0, radius=4.5, height=12.0, colour=(50, 100, 40),
                                                blobs=np.zeros((3, 2))))
    s = canvas.scene("aerial")
    hidden, free = s.objects
    assert hidden.full_area > 20 and (s.instances == hidden.instance).sum() < 0.25 * hidden.full_area
    assert [b.instance for b in s.boxes()] == [free.instance]
    assert (s.semantic == SEMANTIC_ID["vegetation"]).sum() > 0
