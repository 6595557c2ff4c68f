"""The dashcam renderer: maps, determinism, depth geometry, scenarios, tight boxes, occlusion, perspective."""

import numpy as np
import pytest

from synthscape.domains.driving.dashcam import render_dashcam
from synthscape.domains.driving.dashcam_objects import Camera, pedestrian, vehicle
from synthscape.domains.driving.dashcam_street import layout
from synthscape.domains.driving.scene import SEMANTIC, SEMANTIC_ID, SKY_DEPTH, Canvas
from synthscape.domains.driving.schema import SCENARIOS

ROAD = (SEMANTIC_ID["road"], SEMANTIC_ID["lane_marking"])


def scenes(scenario, count=8, size=128):
    return [render_dashcam(size, scenario, np.random.default_rng(seed)) for seed in range(count)]


@pytest.mark.parametrize("size,shape", [(64, (64, 64)), ((48, 96), (48, 96)), (32, (32, 32)), (256, (256, 256))])
def test_maps_shapes_and_dtypes(size, shape):
    s = render_dashcam(size, "normal", np.random.default_rng(0))
    assert s.image.shape == shape + (3,) and s.image.dtype == np.uint8
    assert s.depth.shape == shape and s.depth.dtype == np.float32
    assert s.semantic.shape == shape and s.semantic.dtype == np.uint8 and s.semantic.max() < len(SEMANTIC)
    assert s.instances.shape == shape and s.instances.dtype == np.int32
    assert s.instances.max() <= len(s.objects) and s.view == "dashcam"
    assert (s.depth > 0).all()


def test_same_seed_same_scene_and_different_seed_differs():
    a, b = (render_dashcam(96, "debris", np.random.default_rng(7)) for _ in range(2))
    for name in ("image", "depth", "semantic", "instances"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert [(o.category, o.distance) for o in a.objects] == [(o.category, o.distance) for o in b.objects]
    assert a.lights == b.lights
    c = render_dashcam(96, "debris", np.random.default_rng(8))
    assert not np.array_equal(a.image, c.image)


def test_unknown_scenario_names_the_valid_ones():
    with pytest.raises(ValueError, match="pedestrian_crossing"):
        render_dashcam(64, "alien_landing", np.random.default_rng(0))


def test_depth_grows_towards_the_horizon_and_sky_is_sky_depth():
    for s in scenes("normal", 4):
        sky = s.semantic == SEMANTIC_ID["sky"]
        assert sky.any() and np.all(s.depth[sky] == SKY_DEPTH)
        assert np.all(s.depth[~sky] < SKY_DEPTH)
        checked = 0
        for col in range(0, 128, 8):
            rows = np.flatnonzero(np.isin(s.semantic[:, col], ROAD) & (s.instances[:, col] == 0))
            if len(rows) > 3:
                assert np.all(np.diff(s.depth[rows, col]) < 0)  # lower in the image -> nearer
                checked += 1
        assert checked > 3
        assert sky[0].all() or (s.semantic[0] == SEMANTIC_ID["building"]).any() or sky[0].any()
        assert (s.semantic[-1] != SEMANTIC_ID["sky"]).all()  # the bottom row is ground or objects


def _bottom_on_road(s, box):
    below = min(box.y + box.h, s.semantic.shape[0] - 1)
    return np.isin(s.semantic[below, box.x:box.x + box.w], ROAD).any()


def test_pedestrian_crossing_puts_a_pedestrian_on_the_road_on_a_zebra():
    for s in scenes("pedestrian_crossing"):
        peds = [b for b in s.boxes() if b.category == "pedestrian"]
        assert any(_bottom_on_road(s, b) for b in peds)
        assert (s.semantic == SEMANTIC_ID["lane_marking"]).sum() > 0


def test_stalled_vehicle_is_a_car_near_the_centre_column_with_hazard_lights():
    for s in scenes("stalled_vehicle"):
        cars = [b for b in s.boxes() if b.category == "car" and b.x - 16 <= 64 <= b.x + b.w + 16]
        assert cars
        assert any(light.kind == "signal" and light.colour == (255, 170, 0) for light in s.lights)


@pytest.mark.parametrize("scenario", ["debris", "cyclist"])
def test_debris_and_cyclist_are_present_and_visible(scenario):
    for s in scenes(scenario):
        assert sum(b.category == scenario for b in s.boxes()) >= 1


def test_normal_has_nothing_on_the_ego_lane():
    for s in scenes("normal", 12):
        assert not any(o.category in ("debris", "cyclist") for o in s.objects)
        for b in s.boxes():
            if b.category == "pedestrian":
                assert not (b.x <= 64 < b.x + b.w)  # pedestrians keep to the sidewalks, off the centre


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_boxes_are_inside_and_tight(scenario):
    for s in scenes(scenario, 4, size=(96, 128)):
        h, w = s.semantic.shape
        assert s.boxes()
        for b in s.boxes():
            assert 0 <= b.x and 0 <= b.y and b.x + b.w <= w and b.y + b.h <= h
            own = s.instances[b.y:b.y + b.h, b.x:b.x + b.w] == b.instance
            assert own[0].any() and own[-1].any() and own[:, 0].any() and own[:, -1].any()
            assert own.sum() == b.area
            assert s.objects[b.instance - 1].category == b.category
            sem = s.semantic[s.instances == b.instance]
            assert np.all(sem == SEMANTIC_ID[b.category])


def test_object_fully_behind_a_nearer_one_has_no_box():
    cam = Camera(128, 128, 56, 70, 1.3)
    canvas = Canvas(128, 128)
    rng = np.random.default_rng(0)
    assert vehicle(canvas, cam, rng, 0.0, 40.0, 0.0, "car")
    assert vehicle(canvas, cam, rng, 0.0, 9.0, 0.0, "truck")
    boxes = canvas.scene("dashcam").boxes()
    assert [b.category for b in boxes] == ["truck"]
    assert canvas.objects[0].full_area > 0 and not (canvas.instances == 1).any()


def test_object_pixel_height_shrinks_with_distance():
    cam = Camera(256, 256, 110, 150, 1.3)
    heights = []
    for z in (5.0, 10.0, 20.0):
        canvas = Canvas(256, 256)
        pedestrian(canvas, cam, np.random.default_rng(3), 0.0, z, "front")
        (box,) = canvas.scene("dashcam").boxes()
        assert abs(box.y + box.h - cam.ground_row(z)) <= 1.5  # feet on the ground at its depth row
        heights.append(box.h)
    assert heights[0] > heights[1] > heights[2]
    assert 1.6 < heights[0] / heights[1] < 2.4 and 1.6 < heights[1] / heights[2] < 2.4


def test_lights_are_registered():
    kinds = {light.kind for s in scenes("normal", 8) for light in s.lights}
    assert {"taillight", "street"} <= kinds


def test_street_layout_is_a_consistent_cross_section():
    """The street's fields in metres fit together: the camera drives in its own lane, the kerbs,
    sidewalks and verges lie outside the road, the buildings beyond the verges."""
    for seed in range(40):
        scenario = SCENARIOS[seed % len(SCENARIOS)]
        st = layout(np.random.default_rng(seed), scenario, 20.0)
        assert abs(st.lane_x(st.ego)) <= 0.3 + 1e-9 and st.oncoming <= st.ego < st.lanes
        assert st.road[0] <= st.lane_left and st.lane_left + st.lanes * st.lane_w <= st.road[1]
        assert st.edges[0] < st.road[0] - st.kerb < st.road[1] + st.kerb < st.edges[1]
        assert [m.x for m in st.marks[2:]] == sorted(m.x for m in st.marks[2:])
        for side, blocks in st.blocks.items():
            assert all(b.setback >= abs(st.edges[0 if side < 0 else 1]) and b.z0 < b.z1 for b in blocks)
        assert (st.zebra is not None) == (scenario == "pedestrian_crossing")
        if st.zebra is not None:
            assert 4.5 <= st.zebra[0] <= 20.0
