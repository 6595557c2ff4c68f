"""The dashcam renderer: a street seen from a car, clear daylight, labelled per pixel.

A pinhole camera ~1.3 m above a flat ground plane looks down the road (horizon at 40-50 % of the
height, 70-90 degrees wide); the street's cross-section and buildings are laid out first
(``dashcam_street``). The background is computed in one vectorised pass: sky gradient,
then per ground pixel its lateral offset and distance -> terrain, sidewalk, kerb, road, lane
markings (dashed by distance), zebra crossing; buildings along both sides are boxes whose two
visible faces (towards the road and towards the camera) get per-pixel depth and a window pattern.
Then the objects and street furniture are painted far to near (painter's algorithm), each as one
sprite (``dashcam_objects``). Depth is metres along each pixel's ray (SKY_DEPTH for the sky); an
object's depth is its distance. Lights (head/tail lamps, street lamps, signals, windows) are kept
when not hidden behind something nearer.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from synthscape.domains.driving.dashcam_objects import (
    Camera,
    cyclist,
    debris,
    pedestrian,
    street_lamp,
    traffic_light,
    traffic_sign,
    tree,
    vehicle,
)
from synthscape.domains.driving.dashcam_street import Street, layout
from synthscape.domains.driving.scene import SEMANTIC_ID, SKY_DEPTH, Canvas, Scene
from synthscape.domains.driving.schema import SCENARIOS

FAR = 0.9 * SKY_DEPTH  # ground depth cap (rows just under the horizon)
_NOISE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def render_dashcam(size: int | tuple[int, int], scenario: str, rng: np.random.Generator) -> Scene:
    """One clear-day dashcam scene of ``size`` (int: square, or (height, width)) for ``scenario``."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown driving scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    h, w = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if h < 8 or w < 8:
        raise ValueError(f"dashcam size must be at least 8x8 pixels, got {h}x{w}")
    fov = math.radians(rng.uniform(70, 90))
    cam = Camera(h, w, h * rng.uniform(0.4, 0.5), (w / 2) / math.tan(fov / 2), rng.uniform(1.2, 1.45))
    canvas = Canvas(h, w)
    street = layout(rng, scenario, min(22.0, max(cam.f * 1.7 / 7, 5.5)))
    lights: list = []
    _sky(canvas, cam, rng)
    _ground(canvas, cam, street, rng)
    _skyline(canvas, cam, street, rng)
    for side in (-1, 1):
        for block in street.blocks[side]:
            _building(canvas, cam, side, *block, lights=lights, rng=rng)
    for _, draw in sorted(_items(cam, street, rng, scenario), key=lambda item: -item[0]):
        draw(canvas, lights)
    canvas.end()
    for x, y, r, colour, kind, dist in lights:  # keep the lights nothing nearer hides
        c, rr = int(x), int(y)
        if not (0 <= c < w and 0 <= rr < h) or canvas.depth[rr, c] >= 0.95 * dist - 0.5:
            canvas.light(x, y, r, colour, kind)
    _texture(canvas, rng)
    return canvas.scene("dashcam")


def _sky(canvas: Canvas, cam: Camera, rng: np.random.Generator) -> None:
    rows = min(int(math.ceil(cam.hz)), cam.h)
    t = (np.arange(rows, dtype=np.float32) / max(cam.hz, 1.0))[:, None]
    top = np.array([rng.uniform(60, 110), rng.uniform(120, 160), rng.uniform(200, 240)], np.float32)
    low = np.array([rng.uniform(190, 215), rng.uniform(210, 230), rng.uniform(230, 250)], np.float32)
    column = (top + (low - top) * t ** 0.7).astype(np.uint8)[:, None, :]
    canvas.image[:rows] = cv2.resize(column, (cam.w, rows), interpolation=cv2.INTER_NEAREST)  # 5x a broadcast
    for _ in range(int(rng.integers(0, 4))):  # a few flat clouds (still "sky")
        cy, cx = rng.uniform(0.05, 0.8) * cam.hz, rng.uniform(0, cam.w)
        ax, ay = rng.uniform(0.05, 0.2) * cam.w, rng.uniform(0.02, 0.06) * cam.h
        r0, r1 = max(int(cy - ay), 0), min(int(cy + ay) + 1, rows)
        c0, c1 = max(int(cx - ax), 0), min(int(cx + ax) + 1, cam.w)
        if r1 > r0 and c1 > c0:
            yy, xx = np.ogrid[r0:r1, c0:c1]
            inside = ((xx + 0.5 - cx) / ax) ** 2 + ((yy + 0.5 - cy) / ay) ** 2 < 1
            patch = canvas.image[r0:r1, c0:c1]
            patch[inside] = (patch[inside] * 0.35 + 165).astype(np.uint8)


def _ground(canvas: Canvas, cam: Camera, street: Street, rng: np.random.Generator) -> None:
    """Every ground pixel: distance along its ray, class and colour from its (x, z) on the plane."""
    g0 = max(int(math.floor(cam.hz + 0.5)), 0)  # first row whose centre lies below the horizon
    if g0 >= cam.h:
        return
    b = np.maximum(cam.rows[g0:], 1e-6)
    z = np.minimum(cam.height / b, FAR)  # forward distance of each row
    x = cam.cols[None, :] * z[:, None]  # lateral offset of each pixel
    depth = np.minimum(z[:, None] * cam.ray[g0:], FAR)
    left, right = street.edges
    road0, road1 = street.road
    k = street.kerb
    hw = street.mark_w / 2
    # segments left to right: terrain | sidewalk | kerb | road, markings | kerb | sidewalk | terrain
    road_rgb, walk_rgb, grass_rgb = street.road_rgb, street.walk_rgb, street.grass_rgb
    segs = [(left + street.grass[0], "sidewalk", walk_rgb, 0), (road0 - k, "sidewalk", walk_rgb * 1.12, 0),
            (road0, "road", road_rgb, 0)]
    for mx, kind, yellow in sorted(street.marks):
        colour = np.array([220, 180, 40.0]) if yellow else np.array([225, 225, 220.0])
        for cxm in (mx - 2.2 * hw, mx + 2.2 * hw) if kind == "double" else (mx,):
            cxm = min(max(cxm, road0 + hw + 0.05), road1 - hw - 0.05)
            if cxm - hw > segs[-1][0]:
                segs += [(cxm - hw, "lane_marking", colour, int(kind == "dashed")), (cxm + hw, "road", road_rgb, 0)]
    segs += [(road1, "sidewalk", walk_rgb * 1.12, 0), (road1 + k, "sidewalk", walk_rgb, 0),
             (right - street.grass[1], "terrain", grass_rgb, 0)]
    edges = [sg[0] for sg in segs]
    zone_sem = ["terrain"] + [sg[1] for sg in segs]
    zone_rgb = [grass_rgb] + [sg[2] for sg in segs]
    zone_dash = [0] + [sg[3] for sg in segs]
    zone = np.searchsorted(np.asarray(edges, np.float32), x).astype(np.int32)
    dash_len, period, phase = street.dash
    gap_rows = ((z + phase) % period) >= dash_len  # rows where dashed lines pause
    is_dash = np.asarray(zone_dash, bool)[zone] & gap_rows[:, None]
    road_id = len(edges) + 1
    zone = np.where(is_dash, road_id, zone)
    sem = np.array([SEMANTIC_ID[s] for s in zone_sem] + [SEMANTIC_ID["road"]] * 2, np.uint8)
    rgb = np.array(zone_rgb + [road_rgb, road_rgb], np.float32)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if street.zebra is not None:  # white stripes across the road
        z0, zl = street.zebra
        rows = (z >= z0) & (z < z0 + zl)
        stripe = ((x - road0) % 1.0 < 0.5) & (x > road0 + 0.3) & (x < road1 - 0.3) & rows[:, None]
        zone = np.where(stripe, road_id + 1, zone)
        rgb[road_id + 1] = (232, 232, 228)
        sem[road_id + 1] = SEMANTIC_ID["lane_marking"]
    canvas.image[g0:] = rgb.take(zone, axis=0)
    canvas.semantic[g0:] = sem.take(zone)
    canvas.depth[g0:] = depth


def _skyline(canvas: Canvas, cam: Camera, street: Street, rng: np.random.Generator) -> None:
    """Far buildings/trees across the end of the street (one paint)."""
    if rng.random() < 0.3:
        return
    dist = rng.uniform(250, 600)
    vb = cam.ground_row(dist)
    heights = np.repeat(rng.uniform(5, 40, 24), int(math.ceil(cam.w / 24)))[:cam.w] * cam.f / dist
    top = int(max(math.floor(vb - heights.max()), 0))
    bottom = min(int(math.ceil(vb)), cam.h)
    if bottom <= top:
        return
    rows = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5
    mask = (rows >= vb - heights[None, :]) & (rows < vb)
    tone = rng.uniform(120, 170)
    canvas.paint(mask, (top, 0), (tone * 0.95, tone, tone * 1.08), "building", dist)


def _building(canvas: Canvas, cam: Camera, side: int, setback: float, z0: float, z1: float, height: float,
              lights: list, rng: np.random.Generator) -> None:
    """A box building: face towards the road at x = side*setback from z0 to z1, front face at z0."""
    xs = side * setback
    z_edge = cam.f * setback / cam.cx  # the road-side face leaves the image at this distance
    zs = max(z0, 0.8 * z_edge, 0.5)
    if z1 <= zs:
        return
    depth_m = rng.uniform(8, 20)
    corners = [(xs, 0, zs), (xs, 0, z1), (xs, height, z1), (xs, height, zs)]
    side_px = [cam.project(*p) for p in corners]
    front_px = [cam.project(xs + side * depth_m, y, z0) for y in (0, height)] + [side_px[3], side_px[0]] \
        if z0 >= z_edge else []
    pts = np.array(side_px + front_px, np.float64)
    c0, r0 = max(int(pts[:, 0].min()) - 1, 0), max(int(pts[:, 1].min()) - 1, 0)
    c1, r1 = min(int(pts[:, 0].max()) + 2, cam.w), min(int(pts[:, 1].max()) + 2, cam.h)
    if c1 <= c0 or r1 <= r0:
        return
    idx = np.zeros((r1 - r0, c1 - c0), np.uint8)
    off = np.array([c0 + 0.5, r0 + 0.5])
    cv2.fillPoly(idx, [np.rint((pts[:4] - off) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    if front_px:
        cv2.fillPoly(idx, [np.rint((pts[4:] - off) * 16).astype(np.int32)], 2, cv2.LINE_8, 4)
    mask = idx > 0
    if not mask.any():
        return
    # the two faces own disjoint columns: per column its distance and position along the facade
    a = cam.cols[c0:c1]
    b = cam.rows[r0:r1, None]
    u_edge = cam.project(xs, 0, z0)[0] - c0 - 0.5 if front_px else (-1e9 if side < 0 else 1e9)
    front = (np.arange(c1 - c0) < u_edge) if side < 0 else (np.arange(c1 - c0) > u_edge)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(front, z0, np.where(a * side > 1e-6, xs / a, z1)).astype(np.float32)
    along = np.where(front, a * z0 * side, z)
    y = np.float32(cam.height) - b * z[None, :]
    depth = np.minimum(z * cam.ray[r0:r1, c0:c1], FAR)
    base = np.array([rng.uniform(120, 210), rng.uniform(110, 190), rng.uniform(100, 180)])
    spacing, floor_h = rng.uniform(2.5, 4.0), rng.uniform(2.9, 3.5)
    win_w, win_h = spacing * rng.uniform(0.35, 0.6), floor_h * rng.uniform(0.4, 0.6)
    glass = np.array([rng.uniform(40, 80), rng.uniform(55, 90), rng.uniform(70, 110)])
    # windows: (y % floor_h) < win_h, as a fraction of a floor (float % is 20x slower than floor)
    storey = y * np.float32(1 / floor_h)
    storey -= np.floor(storey)
    window = storey < np.float32(win_h / floor_h)
    window &= np.abs(y - np.float32(height / 2)) < np.float32(height / 2 - 0.8)  # 0.8 < y < height - 0.8
    window &= ((along % spacing) < win_w)[None, :]
    index = window.view(np.uint8) + (2 * front).astype(np.uint8)  # 0/1 side wall/glass, 2/3 front
    np.putmask(index, y > height - 0.5, 4)  # cornice
    palette = np.clip([base, glass, base * 0.8, glass * 0.9, base * 0.65], 0, 255).astype(np.uint8)
    canvas.paint(mask, (r0, c0), palette.take(index, axis=0), "building", depth)
    if rng.random() < 0.5:  # a few lit windows for the night
        for _ in range(int(rng.integers(1, 4))):
            zw = (math.floor(rng.uniform(zs, z1) / spacing) + 0.5 * win_w / spacing) * spacing
            yw = (math.floor(rng.uniform(1, max(height - 1, 1.1)) / floor_h) + 0.5 * win_h / floor_h) * floor_h
            u, v = cam.project(xs, yw, zw)
            lights.append((u, v, max(0.5, 0.3 * cam.f / zw), (255, 220, 160), "window", cam.distance(xs, zw, yw)))


class _Items:
    """The (distance, draw) pairs of a scene's objects and street furniture, in the order they are
    placed (``render_dashcam`` paints them far to near; a stable sort keeps this order for ties)."""

    def __init__(self, cam: Camera, rng: np.random.Generator):
        self.cam, self.rng = cam, rng
        self.items: list = []
        # The yaw (radians) the stalled vehicle is drawn with. Its draw used to read a variable that
        # every car placed in a lane afterwards overwrote, so it is drawn with the last such car's
        # yaw (its own only when no car follows); kept, so that renders stay bit for bit the same.
        self.yaw = 0.0

    def add(self, z: float, fn, x: float, *args, **kw) -> None:
        """Queue ``fn(canvas, cam, rng, x, z, *args, **kw)`` for a sprite at (x, z) metres, unless
        it stands within 1.5 m of the camera."""
        if z > 1.5:
            cam, rng = self.cam, self.rng
            self.items.append((cam.distance(x, z), lambda canvas, lights: fn(canvas, cam, rng, x, z, *args, **kw)))

    def add_lit(self, z: float, fn, x: float, *args) -> None:
        """``add`` for a sprite with lamps: ``fn`` also gets the scene's list of lights."""
        if z > 1.5:
            cam, rng = self.cam, self.rng
            self.items.append((cam.distance(x, z), lambda canvas, lights: fn(canvas, cam, rng, x, z, *args,
                                                                              lights=lights)))

    def zmax(self, far: float, metres: float, pixels: float) -> float:
        """Metres: ``far``, or nearer in small images, where an object ``metres`` tall would be
        under ``pixels`` high (never nearer than 5 m), so that the scenario's object stays visible."""
        return min(far, max(self.cam.f * metres / pixels, 5.0))


def _items(cam: Camera, street: Street, rng: np.random.Generator, scenario: str) -> list:
    """(distance, draw) of every object and piece of street furniture; drawn far to near."""
    items = _Items(cam, rng)
    ego_x = street.lane_x(street.ego)
    clear_until = _SCENARIO_ITEMS[scenario](items, street, ego_x) if scenario in _SCENARIO_ITEMS else 0.0
    _traffic(items, street, clear_until)
    _parked(items, street)
    for side in (-1, 1):
        _sidewalk(items, street, side)
    return items.items


def _crossing(items: _Items, street: Street, ego_x: float) -> float:
    """Pedestrians on the zebra crossing, one of them in the ego lane; returns the metres up to
    which the ego lane stays free of traffic."""
    rng = items.rng
    z0, zl = street.zebra
    zp = rng.uniform(z0 + 0.6, z0 + zl - 0.6)
    items.add(zp, pedestrian, ego_x + rng.uniform(-1.0, 1.0), ("left", "right", "front")[rng.integers(3)])
    for _ in range(int(rng.integers(0, 4))):
        items.add(rng.uniform(z0 + 0.4, z0 + zl - 0.4), pedestrian, rng.uniform(*street.road),
                  ("left", "right")[rng.integers(2)])
    return z0 + zl + 10


def _stalled(items: _Items, street: Street, ego_x: float) -> float:
    """A car with its hazard lights on, standing in the ego lane (see ``_Items.yaw`` for its yaw)."""
    cam, rng = items.cam, items.rng
    zs = rng.uniform(9, max(items.zmax(35, 1.5, 6), 9.5))
    items.yaw = rng.uniform(-0.45, 0.45) if rng.random() < 0.6 else 0.0
    items.items.append((cam.distance(ego_x, zs), lambda canvas, lights: vehicle(
        canvas, cam, rng, ego_x + rng.uniform(-0.5, 0.5), zs, items.yaw, "car", True, lights)))
    return zs + 15


def _debris(items: _Items, street: Street, ego_x: float) -> float:
    """Two to five pieces of debris lying in the ego lane."""
    rng = items.rng
    for _ in range(int(rng.integers(2, 6))):
        items.add(rng.uniform(min(6, items.zmax(30, 0.5, 3)) * 0.8, items.zmax(30, 0.5, 3)), debris,
                  ego_x + rng.uniform(-1.4, 1.4))
    return 45


def _cyclist(items: _Items, street: Street, ego_x: float) -> float:
    """A cyclist in the ego lane, mostly riding ahead, else crossing."""
    rng = items.rng
    zc = rng.uniform(min(6, items.zmax(28, 1.7, 7)) * 0.8, items.zmax(28, 1.7, 7))
    facing = "back" if rng.random() < 0.6 else ("left", "right")[rng.integers(2)]
    items.add(zc, cyclist, ego_x + rng.uniform(-0.9, 0.9), facing)
    return zc + 12


_SCENARIO_ITEMS = {"pedestrian_crossing": _crossing, "stalled_vehicle": _stalled, "debris": _debris,
                   "cyclist": _cyclist}  # scenario -> its objects ("normal": none)


def _traffic(items: _Items, street: Street, clear_until: float) -> None:
    """Cars and trucks in the lanes up to 110 m: ahead (seen from behind) and oncoming (seen from
    the front); the ego lane's first one beyond ``clear_until`` metres."""
    rng = items.rng
    for lane in range(street.lanes):
        x = street.lane_x(lane)
        oncoming = lane < street.oncoming
        z = rng.uniform(5, 25) if lane != street.ego else max(rng.uniform(10, 30), clear_until)
        while z < 110:
            if rng.random() < 0.55:
                kind = "truck" if rng.random() < 0.15 else "car"
                items.yaw = (math.pi if oncoming else 0.0) + rng.uniform(-0.04, 0.04)
                items.add_lit(z, vehicle, x + rng.uniform(-0.3, 0.3), items.yaw, kind)
            z += rng.uniform(12, 40)


def _parked(items: _Items, street: Street) -> None:
    """Cars parked along the kerbs that have a parking strip, up to 70 m."""
    rng = items.rng
    for side, width in ((-1, street.park[0]), (1, street.park[1])):
        if width == 0:
            continue
        x = street.road[0 if side < 0 else 1] - side * width / 2
        z = rng.uniform(3, 15)
        while z < 70:
            if rng.random() < 0.6:
                items.add_lit(z, vehicle, x, (math.pi if side < 0 and rng.random() < 0.5 else 0.0)
                              + rng.uniform(-0.05, 0.05))
            z += rng.uniform(5.5, 12)


def _sidewalk(items: _Items, street: Street, side: int) -> None:
    """On the ``side`` (-1 left, +1 right) sidewalk: pedestrians, trees, street lamps, a traffic
    light and signs."""
    rng = items.rng
    kerb_x = street.road[0 if side < 0 else 1] + side * street.kerb
    walk = street.walk[0 if side < 0 else 1]
    for _ in range(int(rng.integers(0, 5))):
        items.add(rng.uniform(4, 60), pedestrian, kerb_x + side * rng.uniform(0.5, walk - 0.3))
    tree_x = kerb_x + side * (walk + street.grass[0 if side < 0 else 1] * 0.5
                              if not street.blocks[side] else min(1.0, walk / 2))
    if rng.random() < 0.6:
        z, step = rng.uniform(4, 15), rng.uniform(9, 20)
        while z < 70:
            items.add(z, tree, tree_x + rng.uniform(-0.2, 0.2))
            z += step * rng.uniform(0.8, 1.2)
    if rng.random() < 0.7:
        z, step = rng.uniform(3, 20), rng.uniform(22, 40)
        while z < 100:
            items.add_lit(z, street_lamp, kerb_x + side * 0.4, -side)
            z += step
    if rng.random() < 0.4:
        items.add_lit(rng.uniform(12, 60), traffic_light, kerb_x + side * 0.5, -side * rng.uniform(2, 4)
                      if rng.random() < 0.5 else 0.0)
    for _ in range(int(rng.integers(0, 3))):
        items.add(rng.uniform(6, 70), traffic_sign, kerb_x + side * 0.4)


def _texture(canvas: Canvas, rng: np.random.Generator) -> None:
    """Mild grain on the picture only (labels untouched): a cached tile at a random offset, added
    as its positive and its negative part with saturating cv2 arithmetic (= clip(image + noise))."""
    h, w = canvas.height, canvas.width
    key = (h, w)
    if key not in _NOISE:
        noise = np.random.default_rng(12345).integers(-5, 6, (2 * h, 2 * w, 1)).astype(np.int16)
        _NOISE[key] = tuple(np.repeat(np.clip(k * noise, 0, None), 3, axis=2).astype(np.uint8) for k in (1, -1))
    r, c = int(rng.integers(h)), int(rng.integers(w))
    up, down = (tile[r:r + h, c:c + w] for tile in _NOISE[key])
    canvas.image[:] = cv2.subtract(cv2.add(canvas.image, up), down)
