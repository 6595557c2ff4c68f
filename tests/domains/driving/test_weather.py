"""Weather and time-of-day effects: fog by depth, night darkness and glare, purity, seeding, the
augmentation API. Test pictures are built here (a small street scene, checkerboards)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from synthscape.domains.driving.augment import WeatherTime
from synthscape.domains.driving.scene import SKY_DEPTH, Canvas, Light, Scene
from synthscape.domains.driving.schema import TIMES, WEATHERS
from synthscape.domains.driving.weather import apply_conditions, depth_proxy


def street(size: int = 128) -> Scene:
    """Sky, buildings, a road with lane marks going to a vanishing point, two cars, a street lamp."""
    h = w = size
    c = Canvas(h, w)
    hz = int(0.45 * h)
    rows = np.arange(h, dtype=np.float32)[:, None]
    ground_depth = np.broadcast_to(1.5 * 0.9 * w / np.maximum(rows + 0.5 - hz, 0.5), (h, w))
    sky = np.broadcast_to(np.linspace([110, 160, 230], [190, 215, 240], hz)[:, None, :], (hz, w, 3))
    c.paint(np.ones((hz, w), bool), (0, 0), sky.astype(np.uint8), "sky", SKY_DEPTH)
    c.paint(np.ones((h - hz, w), bool), (hz, 0), (95, 130, 70), "terrain", ground_depth[hz:])
    road = [[w * 0.46, hz], [w * 0.54, hz], [w * 1.1, h], [-w * 0.1, h]]
    c.polygon(road, (80, 80, 85), "road", 0)
    c.depth[c.semantic == 1] = ground_depth[c.semantic == 1]
    for t0 in np.arange(0.05, 1, 0.2):  # dashed centre line
        y0, y1 = hz + (h - hz) * t0, hz + (h - hz) * (t0 + 0.08)
        c.polygon([[w / 2 - 0.004 * (y0 - hz), y0], [w / 2 + 0.004 * (y0 - hz), y0],
                   [w / 2 + 0.008 * (y1 - hz), y1], [w / 2 - 0.008 * (y1 - hz), y1]], (235, 235, 225), "lane_marking",
                  ground_depth[int(min(y1, h - 1)), 0])
    c.rect(0, hz - 0.3 * h, 0.3 * w, hz + 0.02 * h, (150, 120, 100), "building", 40)
    c.rect(0.72 * w, hz - 0.25 * h, w, hz + 0.03 * h, (170, 160, 150), "building", 45)
    c.rect(0.8 * w, hz - 0.22 * h, 0.81 * w, hz + 0.25 * h, (60, 60, 60), "pole", 12)
    c.light(0.78 * w, hz - 0.22 * h, 0.02 * h, (255, 220, 160), "street")
    c.begin("car", 15)  # oncoming car, left lane
    c.rect(0.3 * w, hz + 0.06 * h, 0.44 * w, hz + 0.17 * h, (40, 60, 140), "car", 15)
    c.light(0.32 * w, hz + 0.14 * h, 0.012 * h, (255, 250, 230), "headlight")
    c.light(0.42 * w, hz + 0.14 * h, 0.012 * h, (255, 250, 230), "headlight")
    c.begin("car", 8)  # leading car, own lane
    c.rect(0.55 * w, hz + 0.15 * h, 0.8 * w, hz + 0.33 * h, (170, 30, 30), "car", 8)
    c.light(0.58 * w, hz + 0.27 * h, 0.015 * h, (255, 30, 20), "taillight")
    c.light(0.77 * w, hz + 0.27 * h, 0.015 * h, (255, 30, 20), "taillight")
    c.end()
    return c.scene("dashcam")


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def frozen(*arrays):
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False
    return copies


def test_fog_hides_far_rows_more_than_near_ones():
    h, w = 64, 64
    image = np.where((np.arange(w)[None, :] // 4 + np.arange(h)[:, None] // 4) % 2, 200, 40).astype(np.uint8)
    image = np.repeat(image[..., None], 3, axis=2)
    depth = np.broadcast_to(np.linspace(200, 2, h, dtype=np.float32)[:, None], (h, w)).copy()  # top far
    out = apply_conditions(image, "fog", "day", np.random.default_rng(0), depth=depth).astype(float)
    far, near = out[:8], out[-8:]
    assert far.std() < 0.5 * near.std()
    assert near.std() > 0.5 * image[-8:].std()  # 2-10 m stays readable at >= 30 m visibility
    airlight = out[:2].mean(axis=(0, 1))  # 200 m with visibility <= 150 m: almost all airlight
    assert 170 < airlight.mean() < 230
    assert np.abs(far - airlight).mean() < np.abs(near - airlight).mean()


def test_fog_without_depth_uses_a_ground_plane_proxy():
    proxy = depth_proxy(100, 100)
    assert proxy.shape == (100, 1) and np.all(proxy[:45] == SKY_DEPTH)
    assert np.all(np.diff(proxy[46:, 0]) < 0)  # nearer towards the bottom
    grey = np.full((100, 100, 3), 120, np.uint8)
    grey[::2, ::2] = 20
    out = apply_conditions(grey, "fog", "day", np.random.default_rng(1)).astype(float)
    assert out[:40].std() < out[-10:].std()


def test_night_is_darker_than_dusk_darker_than_day():
    scene = street()
    means = {}
    for time in TIMES:
        out = apply_conditions(scene.image, "clear", time, np.random.default_rng(3), depth=scene.depth,
                               semantic=scene.semantic, lights=scene.lights)
        means[time] = luma(out).mean()
    assert means["night"] < 0.5 * means["day"]
    assert means["night"] < means["dusk"] < means["day"]
    plain = apply_conditions(scene.image, "clear", "night", np.random.default_rng(3))  # a real picture
    assert luma(plain).mean() < 0.5 * means["day"]
    assert plain[..., 2].mean() > plain[..., 0].mean()  # bluer


def test_night_light_glows_with_a_halo_falling_off():
    image = np.full((96, 96, 3), 128, np.uint8)
    lamp = Light(48.0, 48.0, 3.0, (255, 230, 180), "street")
    out = luma(apply_conditions(image, "clear", "night", np.random.default_rng(0), lights=[lamp]))
    dark = luma(apply_conditions(image, "clear", "night", np.random.default_rng(0)))[48, 5]
    centre = out[48, 48]
    ring = [out[48, 48 + r] for r in (5, 8, 12, 18, 30)]
    assert centre > 200 and centre > 3 * dark
    assert all(a > b for a, b in itertools.pairwise(ring))
    assert ring[-1] < centre / 4


def test_inputs_are_never_modified():
    scene = street(64)
    arrays = (scene.image, scene.depth, scene.semantic)
    copies = frozen(*arrays)
    lights = list(scene.lights)
    for weather, time in itertools.product(WEATHERS, TIMES):
        for kwargs in ({}, dict(depth=scene.depth, semantic=scene.semantic, lights=scene.lights)):
            out = apply_conditions(scene.image, weather, time, np.random.default_rng(0), **kwargs)
            assert out.dtype == np.uint8 and out.shape == scene.image.shape and out.flags.writeable
    for a, b in zip(arrays, copies):
        np.testing.assert_array_equal(a, b)
    assert scene.lights == lights


@pytest.mark.parametrize("weather,time", list(itertools.product(WEATHERS, TIMES)))
def test_same_seed_same_picture(weather, time):
    scene = street(64)
    kwargs = dict(depth=scene.depth, semantic=scene.semantic, lights=scene.lights)
    a = apply_conditions(scene.image, weather, time, np.random.default_rng(7), **kwargs)
    b = apply_conditions(scene.image, weather, time, np.random.default_rng(7), **kwargs)
    np.testing.assert_array_equal(a, b)
    if weather in ("rain", "snow"):
        c = apply_conditions(scene.image, weather, time, np.random.default_rng(8), **kwargs)
        assert np.abs(a.astype(int) - c).sum() > 0


def test_rain_and_snow_change_the_picture_clear_day_does_not():
    scene = street(64)
    kwargs = dict(depth=scene.depth, semantic=scene.semantic, lights=scene.lights)
    same = apply_conditions(scene.image, "clear", "day", np.random.default_rng(0), **kwargs)
    assert same is not scene.image and not np.shares_memory(same, scene.image)
    np.testing.assert_array_equal(same, scene.image)
    road = scene.semantic == 1
    rain = apply_conditions(scene.image, "rain", "day", np.random.default_rng(0), **kwargs)
    assert np.abs(rain.astype(int) - scene.image).mean() > 3
    assert luma(rain)[road].mean() < luma(scene.image)[road].mean()  # wet road darker
    snow = apply_conditions(scene.image, "snow", "day", np.random.default_rng(0), **kwargs)
    assert luma(snow)[road].mean() > luma(scene.image)[road].mean() + 20  # snow on the road


def test_unknown_conditions_are_refused_with_the_valid_values():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="clear, rain, fog, snow"):
        apply_conditions(image, "hail", "day", np.random.default_rng(0))
    with pytest.raises(ValueError, match="day, dusk, night"):
        apply_conditions(image, "clear", "noon", np.random.default_rng(0))


def test_weather_time_passes_boxes_and_other_keys_through():
    scene = street(64)
    boxes = [[1, 2, 10, 20], [5, 5, 3, 3]]
    sample = {"image": scene.image, "boxes": boxes, "semantic": scene.semantic, "depth": scene.depth,
              "lights": scene.lights, "id": "frame-1"}
    out = WeatherTime("rain", "night")(sample, seed=4)
    assert out is not sample and out["boxes"] == boxes and out["boxes"] is not boxes
    assert out["id"] == "frame-1"
    np.testing.assert_array_equal(out["semantic"], scene.semantic)
    assert out["image"].shape == scene.image.shape and luma(out["image"]).mean() < luma(scene.image).mean()
    again = WeatherTime("rain", "night")(sample, seed=4)
    np.testing.assert_array_equal(out["image"], again["image"])
    plain = WeatherTime("snow", "dusk")({"image": scene.image, "boxes": np.array(boxes)}, seed=1)
    np.testing.assert_array_equal(plain["boxes"], boxes)


@pytest.mark.parametrize("image,expected", [(np.zeros((8, 8, 3), np.float32), "float32"),
                                            (np.zeros((8, 8), np.uint8), r"\(8, 8\)")])
def test_weather_time_rejects_non_rgb_uint8_images(image, expected):
    with pytest.raises(ValueError, match=r"uint8 HxWx3.*" + expected):
        WeatherTime("fog", "day")({"image": image})
    with pytest.raises(ValueError, match="valid"):
        WeatherTime("sleet")
