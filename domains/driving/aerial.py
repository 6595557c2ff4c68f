"""The drone view of the driving domain: streets seen from 40-120 m up, straight down or oblique.

``render_aerial`` lays out one or two roads (a crossing or a T junction) at random angles, with lanes,
markings and sidewalks (``aerial_roads``), buildings, trees and street lamps beside them, traffic in
the lanes, people on the sidewalks and the scenario's object on the road, then paints it through a
pinhole drone camera (``aerial_camera.View``): the ground as one composed layer, then the solid
things far to near (``aerial_objects``), then the sun's shadows (picture only). Clear daylight;
weather and time effects work from the depth, semantic map and lights this leaves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from synthscape.domains.driving.aerial_camera import FAR, View
from synthscape.domains.driving.aerial_objects import (
    Building,
    Debris,
    Lamp,
    Person,
    Tree,
    Vehicle,
    building_hull,
    draw_building,
    draw_debris,
    draw_lamp,
    draw_person,
    draw_tree,
    draw_vehicle,
    tree_circle,
)
from synthscape.domains.driving.aerial_roads import Junction, Road, lay_out_roads
from synthscape.domains.driving.scene import SEMANTIC_ID, SKY_DEPTH, Canvas, Scene
from synthscape.domains.driving.schema import SCENARIOS

# Ground tones: (semantic class, base colour). Index = value of the tone map.
TONES = (("terrain", (92, 128, 64)), ("road", (84, 86, 90)), ("lane_marking", (226, 226, 220)),
         ("lane_marking", (222, 184, 56)), ("sidewalk", (168, 164, 156)), ("terrain", (140, 128, 92)),
         ("sky", (170, 198, 228)))
TERRAIN, ROAD, WHITE, YELLOW, WALK, DIRT, SKY = range(7)
TONE_SEMANTIC = np.array([SEMANTIC_ID[s] for s, _ in TONES], np.uint8)
TEXTURE = np.array([0.35, 0.12, 0.05, 0.05, 0.1, 0.25, 0.0], np.float32)  # low-frequency texture amplitude
CAR_COLOURS = ((235, 235, 232), (20, 22, 26), (160, 163, 168), (95, 98, 104), (170, 30, 30), (30, 60, 140),
               (22, 34, 70), (200, 200, 190), (120, 20, 25), (40, 90, 60), (215, 170, 40))
CLOTHES = ((200, 40, 40), (30, 60, 160), (230, 230, 230), (30, 30, 30), (240, 190, 40), (60, 140, 70), (140, 90, 160))


@dataclass
class _Stage:
    """What the placing stages share: the canvas and the drone's view, the shadow mask and the sun,
    and the painters they queue (``add``), painted far to near once everything is placed."""

    canvas: Canvas
    view: View
    shadows: np.ndarray  # uint8 [H, W]: 1 in a low object's shadow, 2 in a tall one's (see aerial_camera)
    sun: np.ndarray  # float64 [2]: the shadow's offset (x, y) in metres per metre of height
    things: list = field(default_factory=list)  # (metres from the drone, painter)

    def add(self, pos, top: float, draw, *args, shadow: bool = True) -> None:
        """Queue ``draw(canvas, view, shadows, sun, *args)`` (``draw(canvas, view, *args)`` for a
        thing without a shadow), ranked by the metres from the drone to ``pos`` (x, y) at height ``top``."""
        lead = (self.canvas, self.view, self.shadows, self.sun) if shadow else (self.canvas, self.view)
        self.things.append((self.view.distance([pos[0], pos[1], top]), lambda: draw(*lead, *args)))


def render_aerial(size: int | tuple[int, int], scenario: str, rng: np.random.Generator) -> Scene:
    """One clear-day drone scene of ``size`` (int: square; tuple: (height, width)) showing ``scenario``."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid: {', '.join(SCENARIOS)}")
    height, width = (size, size) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if height < 8 or width < 8:
        raise ValueError(f"aerial scenes need at least 8x8 pixels, got {height}x{width}")
    topdown = rng.random() < 0.6
    view = View(height, width, rng.uniform(40, 120), 0.0 if topdown else rng.uniform(30, 50), rng.uniform(50, 75))
    az, elev = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(30, 65))
    sun = np.array([math.cos(az), math.sin(az)]) / math.tan(elev)  # shadow offset per metre of height
    st = _Stage(Canvas(height, width), view, np.zeros((height, width), np.uint8), sun)

    focus = view.unproject(view.cx, view.cy if topdown else 0.62 * (height - 1))
    span = width * view.distance([*focus, 0.0]) / view.f  # metres across the image at the focus
    roads, site, junctions = lay_out_roads(view, rng, focus, span)
    zebra = scenario == "pedestrian_crossing"
    _ground(st.canvas, view, rng, roads, site if zebra else None)

    site_pts = _scenario(st, rng, scenario, roads[0], site)
    _traffic(st, rng, roads, junctions, site)
    _people(st, rng, roads)
    _buildings_trees(st, rng, roads, site_pts)
    st.things.sort(key=lambda t: -t[0])
    for _, draw in st.things:
        draw()

    _shade(st.canvas, view, st.shadows)
    return st.canvas.scene("aerial")


def _ground(canvas: Canvas, view: View, rng, roads: list[Road], zebra_at: float | None) -> None:
    """Terrain, sidewalks, road surfaces and markings (and the zebra ``zebra_at`` metres along the
    first road) composed in one tone map, then coloured and textured: picture, semantic map, depth."""
    h, w = view.h, view.w
    tone = np.full((h, w), TERRAIN, np.uint8)
    for _ in range(int(rng.integers(0, 3))):  # dry patches / bare earth
        centre = view.unproject(rng.uniform(0, w), rng.uniform(0, h))
        if np.isfinite(centre).all():
            ang = np.sort(rng.uniform(0, 2 * math.pi, 7))
            rad = rng.uniform(5, 25) * rng.uniform(0.6, 1.0, 7)
            blob = np.stack([centre[0] + rad * np.cos(ang), centre[1] + rad * np.sin(ang), np.zeros(7)], -1)
            cv2.fillPoly(tone, [np.rint(view.project(blob)[0]).astype(np.int32)], DIRT)
    live = [r for r in roads if r.s1 > r.s0]
    _fill(tone, view, [r.rect(r.s0, r.s1, -r.half - r.walk, r.half + r.walk) for r in live], WALK)
    _fill(tone, view, [r.rect(r.s0, r.s1, -r.half, r.half) for r in live], ROAD)
    white, yellow = [], []
    for r in live:
        if zebra_at is not None and r is roads[0]:
            white += _zebra(r, zebra_at)
        r_white, r_yellow = _markings(r)
        white += r_white
        yellow += r_yellow
    _fill(tone, view, white, WHITE, False)
    _fill(tone, view, yellow, YELLOW, False)
    _colour_ground(canvas, view, rng, tone)


def _fill(tone: np.ndarray, view: View, rects, value: int, each: bool = True) -> None:
    """Set ``tone`` to ``value`` inside the projected world polygons ``rects`` ([k, 3] each): one
    fillPoly per polygon where they overlap (overlaps within one call would cancel out)."""
    if len(rects):
        uv = list(np.rint(view.project(np.asarray(rects))[0]).astype(np.int32))
        for chunk in ([[p] for p in uv] if each else [uv]):
            cv2.fillPoly(tone, chunk, value)


def _zebra(r: Road, zebra_at: float) -> list:
    """The zebra's stripes and stop lines on ``r`` around ``zebra_at`` metres along it (world
    rectangles); its lane markings pause there."""
    r.skip.append((zebra_at - 3.0, zebra_at + 3.0))
    offs = np.arange(-r.half + 0.45, r.half - 0.2, 1.0)
    white = list(r.rect(np.full(len(offs), zebra_at - 1.6), np.full(len(offs), zebra_at + 1.6), offs, offs + 0.5))
    white += list(r.rect(np.array([zebra_at - 2.6, zebra_at + 2.2]), np.array([zebra_at - 2.2, zebra_at + 2.6]),
                         np.array([-r.half + 0.3, 0.0]), np.array([0.0, r.half - 0.3])))  # stop lines
    return white


def _markings(r: Road) -> tuple[list, list]:
    """White and yellow lane markings (world rectangles) along the visible part of ``r``, except
    where they pause: edge lines, the centre line (yellow double or white dashed), lane dashes."""
    white, yellow = [], []
    lo, hi = r.vis
    for a, b in r.spans(lo, hi):
        white.append(r.rect(a, b, r.half - 0.45, r.half - 0.3))
        white.append(r.rect(a, b, -r.half + 0.3, -r.half + 0.45))
        if r.yellow:
            yellow += [r.rect(a, b, -0.2, -0.08), r.rect(a, b, 0.08, 0.2)]
        offs = [0.0] * (not r.yellow) + [k * r.lane_w * sgn for k in range(1, r.lanes) for sgn in (-1, 1)]
        starts = np.arange(a + 1.0, b - 3.0, 9.0)
        if len(starts) and offs:
            ss = np.repeat(starts, len(offs))
            oo = np.tile(np.asarray(offs), len(starts))
            white += list(r.rect(ss, ss + 3.0, oo - 0.07, oo + 0.07))
    return white, yellow


def _colour_ground(canvas: Canvas, view: View, rng, tone: np.ndarray) -> None:
    """Paint the tone map: its colours (varied per scene) with low-frequency and fine texture, the
    sky as a haze gradient; the semantic map and the depth (ground along each ray, SKY_DEPTH)."""
    h, w = view.h, view.w
    sky = view.sky
    tone[sky] = SKY
    base = np.array([c for _, c in TONES], np.float32)
    base[TERRAIN] *= rng.uniform(0.85, 1.1, 3)
    base[ROAD] *= rng.uniform(0.8, 1.2)
    base[WALK] *= rng.uniform(0.85, 1.1)
    low = cv2.resize(rng.random((max(h // 12, 2), max(w // 12, 2))).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_LINEAR) - 0.5
    fine = np.tile(rng.integers(-6, 7, (16, 16)).astype(np.float32), (h // 16 + 1, w // 16 + 1))[:h, :w]
    img = base[tone] * (1.0 + TEXTURE[tone] * low)[..., None] + (fine * (tone != SKY))[..., None]
    if sky.any():  # the sky brightens towards the haze at the horizon
        rows = np.linspace(0.85, 1.05, h, dtype=np.float32)[:, None, None]
        img = np.where(sky[..., None], base[SKY] * rows, img)
    canvas.image[:] = np.clip(img, 0, 255).astype(np.uint8)
    canvas.semantic[:] = TONE_SEMANTIC[tone]
    canvas.depth[:] = np.where(sky, SKY_DEPTH, view.ground)


def _vehicle(rng, road: Road, s, off, heading, kind=None) -> Vehicle:
    """A car (or one in eight a truck, unless ``kind`` says) at ``s`` metres along ``road``, ``off``
    metres left of its centre, facing ``heading`` radians."""
    kind = kind or ("truck" if rng.random() < 0.12 else "car")
    x, y = road.at(s, off)
    colour = CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))]
    if kind == "car":
        return Vehicle(float(x), float(y), heading, kind, colour, length=rng.uniform(4.2, 4.9),
                       width=rng.uniform(1.75, 1.95))
    return Vehicle(float(x), float(y), heading, kind, colour, length=rng.uniform(7.0, 12.0),
                   width=rng.uniform(2.4, 2.55), cargo=tuple(int(c) for c in rng.integers(150, 245, 3)))


def _scenario(st: _Stage, rng, scenario: str, r1: Road, site: float) -> np.ndarray:
    """The scenario's object(s) on the first road at the site; returns their pixel positions [n, 2]."""
    heading = math.atan2(r1.d[1], r1.d[0])
    pts = []
    if scenario == "stalled_vehicle":
        lane = (int(rng.integers(r1.lanes)) + 0.5) * r1.lane_w * rng.choice([-1, 1])
        turn = rng.choice([-1, 1]) * math.radians(rng.uniform(20, 70))
        v = _vehicle(rng, r1, site, lane, heading + turn + math.pi * (lane > 0), "car")
        v.hazard = True
        st.add((v.x, v.y), 1.5, draw_vehicle, v)
        pts.append((v.x, v.y))
    elif scenario == "pedestrian_crossing":
        for off in rng.uniform(-r1.half + 0.6, r1.half - 0.6, int(rng.integers(2, 5))):
            x, y = r1.at(site + rng.uniform(-1.0, 1.0), off)
            p = Person(x=float(x), y=float(y), heading=heading + math.pi / 2 * rng.choice([-1, 1]),
                       colour=CLOTHES[int(rng.integers(len(CLOTHES)))], head=(40, 30, 25))
            st.add((x, y), 1.7, draw_person, p)
            pts.append((x, y))
    elif scenario == "debris":
        for _ in range(int(rng.integers(2, 7))):
            x, y = r1.at(site + rng.uniform(-6, 6), rng.uniform(-r1.half + 0.5, r1.half - 0.5))
            d = Debris(x=float(x), y=float(y), radius=rng.uniform(0.3, 0.8), angles=rng.uniform(0, 2 * math.pi, 6),
                       radii=rng.uniform(0.55, 1.0, 6),
                       colour=tuple(int(c) for c in rng.choice([(120, 90, 60), (40, 40, 42), (150, 150, 140),
                                                                (60, 80, 150)])))
            st.add((x, y), 0.2, draw_debris, d, shadow=False)
            pts.append((x, y))
    elif scenario == "cyclist":
        side = rng.choice([-1, 1])
        x, y = r1.at(site, -side * (r1.half - 0.9))
        p = Person(x=float(x), y=float(y), heading=heading + (math.pi if side < 0 else 0.0),
                   colour=CLOTHES[int(rng.integers(len(CLOTHES)))], head=(245, 245, 245))
        st.add((x, y), 1.7, draw_person, p, "cyclist")
        pts.append((x, y))
    return np.array([st.view.project(np.array([[x, y, 1.0]]))[0][0] for x, y in pts]).reshape(-1, 2)


def _traffic(st: _Stage, rng, roads: list[Road], junctions: list[Junction], site: float) -> None:
    """Cars and trucks in every lane, spaced out, clear of junctions and of the scenario site (at most 14)."""
    found = []
    for k, road in enumerate(roads):
        lo, hi = road.vis
        if hi <= lo:
            continue
        heading = math.atan2(road.d[1], road.d[0])
        skip = [(sj - e, sj + e) for j, sj, e in junctions if j == k] + ([(site - 11, site + 11)] if k == 0 else [])
        for lane in range(road.lanes):
            for sgn in (-1, 1):
                gaps = rng.uniform(9, 45, 12)
                s = lo + rng.uniform(0, 20) + np.cumsum(gaps)
                for sv in s[s < hi]:
                    if any(a - 6 < sv < b + 6 for a, b in skip):
                        continue
                    found.append(_vehicle(rng, road, sv, sgn * (lane + 0.5) * road.lane_w,
                                          heading + (sgn > 0) * math.pi))
    for i in (rng.permutation(len(found))[:14] if found else []):
        v = found[i]
        st.add((v.x, v.y), 1.5, draw_vehicle, v)


def _people(st: _Stage, rng, roads: list[Road]) -> None:
    """People walking on the sidewalks."""
    live = [r for r in roads if r.vis[1] > r.vis[0]]
    for _ in range(int(rng.integers(3, 8)) if live else 0):
        r = live[int(rng.integers(len(live)))]
        side = rng.choice([-1, 1])
        x, y = r.at(rng.uniform(*r.vis), side * (r.half + r.walk * rng.uniform(0.25, 0.75)))
        p = Person(x=float(x), y=float(y), heading=math.atan2(r.d[1], r.d[0]) + math.pi * (rng.random() < 0.5),
                   colour=CLOTHES[int(rng.integers(len(CLOTHES)))], head=(40, 30, 25))
        st.add((x, y), 1.7, draw_person, p)


def _clear_of_site(site_pts, hull=None, circle=None) -> bool:
    """Whether the pixel outline ``hull`` (or the pixel disc ``circle``: (centre, radius)) keeps
    3 pixels away from every scenario object."""
    if not len(site_pts):
        return True
    if hull is not None:
        return all(cv2.pointPolygonTest(hull.astype(np.float32), (float(u), float(v)), True) < -3 for u, v in site_pts)
    (cu, cv_), r = circle
    return bool((np.hypot(site_pts[:, 0] - cu, site_pts[:, 1] - cv_) > r + 3).all())


def _road_dist(live: list[Road], pts) -> np.ndarray:
    """Metres from ground points [n, 2] to the nearest sidewalk's outer edge (negative: on a road or sidewalk)."""
    return np.min([r.distance(pts) - r.half - r.walk for r in live], axis=0) if live else np.full(len(pts), 1e9)


def _near_angle(live: list[Road], x: float, y: float) -> float:
    """Direction (radians) of the road nearest the ground point (x, y); 0 without roads."""
    r = min(live, key=lambda r: float(r.distance(np.array([[x, y]]))[0])) if live else None
    return math.atan2(r.d[1], r.d[0]) if r is not None else 0.0


def _buildings_trees(st: _Stage, rng, roads: list[Road], site_pts: np.ndarray) -> None:
    """Buildings and trees beside the roads (never on them, never hiding the scenario), street lamps."""
    live = [r for r in roads if r.s1 > r.s0]
    taken = _buildings(st, rng, live, site_pts)
    spots = _street_trees_lamps(st, rng, live)
    _trees(st, rng, live, site_pts, spots, taken)


def _buildings(st: _Stage, rng, live: list[Road], site_pts: np.ndarray) -> list[tuple[float, float, float]]:
    """Up to seven buildings at random places in the image, aligned with the nearest road, clear of
    the roads, of each other and of the scenario; returns their (x, y, radius) in metres."""
    view = st.view
    taken: list[tuple[float, float, float]] = []
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)), -1).reshape(-1, 2)
    cand = view.unproject(rng.uniform(-0.1, 1.1, 24) * view.w, rng.uniform(-0.1, 1.1, 24) * view.h)
    max_h = min(40.0, 0.45 * view.alt)
    for (x, y) in cand:
        if not np.isfinite(x) or math.hypot(x, y) > 0.5 * FAR or len(taken) >= 7:
            continue
        ang = _near_angle(live, x, y)
        b = Building(x=float(x), y=float(y), angle=ang, half_length=rng.uniform(5, 16), half_width=rng.uniform(5, 14),
                     height=rng.uniform(4, max_h), px=rng.uniform(-0.5, 0.5), py=rng.uniform(-0.5, 0.5),
                     roof=tuple(int(c) for c in rng.integers(90, 200) + rng.integers(-12, 12, 3)),
                     wall=tuple(int(c) for c in rng.integers(120, 215, 3)), glass=(70, 90, 110))
        local = grid * (b.half_length, b.half_width)
        e, n = np.array([math.cos(ang), math.sin(ang)]), np.array([-math.sin(ang), math.cos(ang)])
        pts = (x, y) + local[:, :1] * e + local[:, 1:] * n
        reach = math.hypot(b.half_length, b.half_width)
        if _road_dist(live, pts).min() < 1.5 or any(math.hypot(x - tx, y - ty) < tr + reach * 0.8
                                                    for tx, ty, tr in taken):
            continue
        if not _clear_of_site(site_pts, hull=building_hull(view, b)):
            continue
        taken.append((x, y, reach))
        st.add((x, y), b.height, draw_building, b, rng.random(64))
    return taken


def _street_trees_lamps(st: _Stage, rng, live: list[Road]) -> list[tuple[float, float, float]]:
    """Street lamps along the sidewalks (queued), and the spots of street trees beside them,
    returned as (x, y, 0.0) (0.0: planted, not loose)."""
    trees = []
    for r in live:
        lo, hi = r.vis
        for side in (-1, 1):
            if rng.random() < 0.5:
                for s in np.arange(lo + rng.uniform(0, 10), hi, rng.uniform(12, 22))[:5]:
                    trees.append((*r.at(s, side * (r.half + r.walk + rng.uniform(0.8, 2.0))), 0.0))
            if rng.random() < 0.6:
                for s in np.arange(lo + rng.uniform(0, 25), hi, rng.uniform(25, 35))[:3]:
                    x, y = r.at(s, side * (r.half + r.walk - 0.4))
                    ax, ay = -side * 1.5 * r.n
                    if _road_dist(live, np.array([[x, y]]))[0] > -r.walk - 0.1:
                        st.add((x, y), 8.0, draw_lamp, Lamp(x=float(x), y=float(y), ax=float(ax), ay=float(ay)))
    return trees


def _trees(st: _Stage, rng, live: list[Road], site_pts: np.ndarray, spots: list, taken: list) -> None:
    """Trees at the street ``spots`` and at a few random places (loose), at most 16 tried: never on
    a road, in a building or hiding the scenario; loose ones also keep clear of each other."""
    view = st.view
    rand = view.unproject(rng.uniform(-0.1, 1.1, 8) * view.w, rng.uniform(-0.1, 1.1, 8) * view.h)
    spots = spots + [(x, y, 1.0) for x, y in rand if np.isfinite(x) and math.hypot(x, y) < 0.5 * FAR]
    for x, y, loose in spots[:16]:
        t = Tree(x=float(x), y=float(y), radius=rng.uniform(2.0, 4.5), height=rng.uniform(6, min(16, 0.4 * view.alt)),
                 colour=tuple(int(c) for c in (rng.integers(35, 70), rng.integers(80, 120), rng.integers(30, 55))),
                 blobs=rng.uniform(-1, 1, (3, 2)))
        if _road_dist(live, np.array([[x, y]]))[0] < (t.radius * 0.5 if loose else 0.3):  # never on a road
            continue
        if any(math.hypot(x - tx, y - ty) < tr + t.radius for tx, ty, tr in taken):
            continue
        uv, rad, _ = tree_circle(view, t)
        if not _clear_of_site(site_pts, circle=(uv, rad * 1.3)):
            continue
        if loose:
            taken.append((x, y, t.radius))
        st.add((x, y), t.height, draw_tree, t)


def _shade(canvas: Canvas, view: View, shadows: np.ndarray) -> None:
    """Darken the picture where a shadow falls on something low enough (semantic map untouched)."""
    rows, cols = np.nonzero(shadows)
    if not len(rows):
        return
    reach = np.where(shadows[rows, cols] == 2, 4.0, 0.35)  # tall casters shade cars too, small ones the ground
    ground = view.ground[rows, cols]
    low = canvas.depth[rows, cols] >= ground * (view.alt - reach) / view.alt - 1e-3
    rows, cols = rows[low], cols[low]
    canvas.image[rows, cols] = (canvas.image[rows, cols] * np.array([0.5, 0.53, 0.6], np.float32)).astype(np.uint8)
