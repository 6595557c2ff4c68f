"""The sprites of the aerial renderer: vehicles, people, cyclists, debris, buildings, trees and
street lamps, each described by a record (``Vehicle``, ``Person``...: where it stands and what it
looks like, drawn by ``aerial``) and painted by its ``draw_*`` function in one call.

Frame and primitives: ``aerial_camera`` (metres, x east, y forward, z up; headings in radians
from +x towards +y). Shadows go into the scene's shadow mask and are applied to the picture at the
end, so the semantic map keeps the ground's class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synthscape.domains.driving.aerial_camera import Patch, View, box3, hull, shadow_poly
from synthscape.domains.driving.scene import Canvas

__all__ = ["Building", "Debris", "Lamp", "Person", "Tree", "Vehicle", "building_hull", "draw_building",
           "draw_debris", "draw_lamp", "draw_person", "draw_tree", "draw_vehicle", "tree_circle"]

RGB = tuple[int, int, int]


@dataclass
class Vehicle:
    """A car or truck standing on the ground (``draw_vehicle``)."""

    x: float  # metres: centre of its footprint
    y: float  # metres
    heading: float  # radians from +x towards +y: where its front points
    kind: str  # "car" or "truck" (also its detection category)
    colour: RGB  # body (a truck: its cab)
    length: float  # metres
    width: float  # metres
    cargo: RGB | None = None  # a truck's cargo box (None for a car)
    hazard: bool = False  # hazard lights flashing (the stalled vehicle) instead of head and tail lights


@dataclass
class Person:
    """A pedestrian, or a cyclist on its bicycle (``draw_person``)."""

    x: float  # metres: where it stands
    y: float  # metres
    heading: float  # radians from +x towards +y: where it faces (walks or rides)
    colour: RGB  # clothes (shoulders seen from above)
    head: RGB  # hair, or a cyclist's helmet


@dataclass
class Debris:
    """An irregular lump lying on the road: six corners around (x, y) (``draw_debris``)."""

    x: float  # metres: centre
    y: float  # metres
    radius: float  # metres: the largest corner distance
    angles: np.ndarray  # float64 [6], radians: directions of the corners (any order)
    radii: np.ndarray  # float64 [6]: corner distances as fractions of ``radius``
    colour: RGB


@dataclass
class Building:
    """A box building on a rectangular footprint (``draw_building``)."""

    x: float  # metres: centre of the footprint
    y: float  # metres
    angle: float  # radians from +x towards +y: direction of the footprint's long axis (the nearest road's)
    half_length: float  # metres: half the footprint along ``angle``
    half_width: float  # metres: half the footprint across it
    height: float  # metres
    px: float  # centre of the plant room on the roof, along ``angle``, as a fraction of half_length
    py: float  # the same across, as a fraction of half_width
    roof: RGB
    wall: RGB  # in full sun (walls facing away from it are darker)
    glass: RGB  # windows, shaded like their wall


@dataclass
class Tree:
    """A tree seen from above: a round crown of a few blobs (``draw_tree``)."""

    x: float  # metres: trunk
    y: float  # metres
    radius: float  # metres: crown radius
    height: float  # metres: top of the crown
    colour: RGB  # crown (shaded darker and lighter per blob)
    blobs: np.ndarray  # float64 [3, 2] in [-1, 1]: offsets of the crown's blobs, in 0.35 crown radii


@dataclass
class Lamp:
    """A street lamp: an 8 m pole with an arm over the road (``draw_lamp``)."""

    x: float  # metres: foot of the pole
    y: float  # metres
    ax: float  # metres: the arm's reach along x
    ay: float  # metres: the arm's reach along y


def _shade(colour, k: float):
    """``colour`` times ``k``, as ints clipped to 0-255."""
    return tuple(int(min(255, max(0, c * k))) for c in colour)


def draw_vehicle(canvas: Canvas, view: View, shadows, sun, v: Vehicle) -> None:
    """A car or truck: oriented box with windscreen, roof and windows; head/tail (or hazard) lights."""
    x, y, hd, length, width, kind = v.x, v.y, v.heading, v.length, v.width, v.kind
    colour, hl, hw = v.colour, length / 2, width / 2
    car = kind == "car"
    top = 1.45 if car else 3.4
    parts = [box3(x, y, hd, (-hl, hl), (-hw, hw), 0.3), box3(x, y, hd, (-hl, hl), (-hw, hw), 1.0 if car else 2.6)]
    if car:
        parts += [box3(x, y, hd, fl, (-0.42 * width, 0.42 * width), top) for fl in
                  ((-0.3 * length, 0.22 * length), (0.05 * length, 0.22 * length), (-0.3 * length, -0.2 * length))]
    else:
        parts += [box3(x, y, hd, (-hl, hl - 2.4), (-hw, hw), top), box3(x, y, hd, (hl - 2.2, hl), (-hw, hw), 2.6),
                  box3(x, y, hd, (hl - 0.7, hl - 0.1), (-0.45 * width, 0.45 * width), 2.6)]
    parts.append(box3(x, y, hd, (-hl, hl), (-0.38 * width, 0.38 * width), 0.7))  # lamps
    uv, z = view.project(np.concatenate(parts))
    patch = Patch(view, uv[:12])
    if not patch.ok:
        return
    shadow_poly(view, shadows, parts[0] * (1, 1, 0), 1.2 if car else 2.8, sun, 1)
    patch.poly([hull(uv[:12])], _shade(colour, 0.6))
    patch.poly([uv[4:8]], colour)
    if car:
        patch.poly([uv[8:12]], _shade(colour, 1.12))
        patch.poly([uv[12:16], uv[16:20]], (35, 42, 52))
    else:
        patch.poly([uv[12:16]], colour)
        patch.poly([uv[16:20]], (35, 42, 52))
        patch.poly([uv[8:12]], v.cargo)
    dist = view.distance((x, y, top))
    canvas.begin(kind, dist)
    patch.paint(canvas, kind, dist)
    radius = max(view.px(0.25, float(z[-1])), 0.5)
    kinds = (("signal", (255, 170, 0)),) * 4 if v.hazard else \
        (("headlight", (255, 246, 220)),) * 2 + (("taillight", (255, 30, 20)),) * 2
    for (u_, v_), (k, c) in zip(uv[-4:], kinds):
        if 0 <= u_ < view.w and 0 <= v_ < view.h:
            canvas.light(u_, v_, radius, c, k)
    canvas.end()


def draw_person(canvas: Canvas, view: View, shadows, sun, p: Person, category: str = "pedestrian") -> None:
    """A person seen from above (shoulders and head) or a cyclist (bicycle, rider, helmet)."""
    x, y, hd = p.x, p.y, p.heading
    cyc = category == "cyclist"
    pts = np.array([[x, y, 0.0], [x, y, 1.25], [x, y, 1.7]])
    if cyc:
        bike = box3(x, y, hd, (-0.9, 0.9), (-0.08, 0.08), 0.7)
        pts = np.concatenate([pts, bike])
    uv, z = view.project(pts)
    ahead = view.project(np.array([[x + math.cos(hd), y + math.sin(hd), 1.25]]))[0][0] - uv[1]
    ang = math.degrees(math.atan2(ahead[1], ahead[0]))  # heading in the image, degrees
    body = (max(view.px(0.25, z[1]), 1.0), max(view.px(0.16, z[1]), 1.0))
    patch = Patch(view, np.concatenate([uv, uv[1:2] + max(body)]), pad=3)
    if not patch.ok:
        return
    shadow_poly(view, shadows, box3(x, y, hd, (-0.15, 0.15), (-0.2, 0.2), 0.0), 1.7, sun, 1)
    if cyc:
        patch.poly([uv[3:7]], (30, 30, 34))
        patch.line(uv[3] * 0.5 + uv[4] * 0.5, uv[5] * 0.5 + uv[6] * 0.5, (30, 30, 34))
    patch.ellipse(uv[1], body, ang + 90, p.colour)
    head = view.px(0.11, z[2])
    if head >= 0.75:
        patch.circle(uv[2], head, p.head)
    canvas.begin(category, view.distance(pts[1]))
    patch.paint(canvas, category, view.distance(pts[1]))
    canvas.end()


def draw_debris(canvas: Canvas, view: View, d: Debris) -> None:
    """A small irregular lump (tyre tread, box, rock) lying on the road."""
    ang = np.sort(d.angles)
    ring = np.stack([d.x + d.radius * d.radii * np.cos(ang), d.y + d.radius * d.radii * np.sin(ang),
                     np.full(len(ang), 0.15)], -1)
    uv, z = view.project(ring)
    size = view.px(d.radius, float(z.mean()))
    if size < 1.0:  # keep at least a pixel or two: never a zero-area object
        centre = uv.mean(0)
        uv = centre + (uv - centre) / max(size, 1e-3)
    patch = Patch(view, uv)
    if not patch.ok:
        return
    patch.poly([uv], d.colour)
    dist = view.distance([d.x, d.y, 0.15])
    canvas.begin("debris", dist)
    patch.paint(canvas, "debris", dist)
    canvas.end()


def _building_box(b: Building) -> np.ndarray:
    """World corners [8, 3] of a building: its footprint at z = 0, then its roof."""
    base = box3(b.x, b.y, b.angle, (-b.half_length, b.half_length), (-b.half_width, b.half_width), 0.0)
    return np.concatenate([base, base + (0, 0, b.height)])


def building_hull(view: View, b: Building) -> np.ndarray:
    """Pixel outline [k, 2] of everything the building may cover (hull of its projected corners)."""
    uv, _ = view.project(_building_box(b))
    return hull(uv)


def draw_building(canvas: Canvas, view: View, shadows, sun, b: Building, rng_vals: np.ndarray) -> None:
    """A box building: visible walls (sun-lit or not, windows in oblique views), roof with parapet and
    a plant room; its shadow; window/roof lights. ``rng_vals``: 64 uniform draws in [0, 1) that pick
    the lit windows and roof lights."""
    corners = _building_box(b)
    uv, _ = view.project(corners)
    patch = Patch(view, uv)
    if not patch.ok:
        return
    shadow_poly(view, shadows, corners[:4], b.height, sun, 2)
    part = np.zeros_like(patch.mask)  # the face being painted
    box = (patch.r0, patch.r1, patch.c0, patch.c1)
    roof_d = view.plane_depth(*box, (0.0, 0.0, 1.0), b.height)
    depth = roof_d.copy()  # stray window pixels beyond a wall's edge take the roof's
    lights = _walls(patch, view, sun, b, corners[:4], uv, rng_vals, part, depth)
    patch.poly([uv[4:8]], b.roof, part)
    np.copyto(depth, roof_d, where=part.astype(bool))
    a, w = b.half_length, b.half_width
    inset = box3(b.x, b.y, b.angle, (-a + 0.6, a - 0.6), (-w + 0.6, w - 0.6), b.height)
    plant = box3(b.x + b.px * a, b.y + b.py * w, b.angle, (-a * 0.25, a * 0.25), (-w * 0.2, w * 0.2), b.height)
    iuv, _ = view.project(np.concatenate([inset, plant]))
    patch.poly([iuv[0:4]], _shade(b.roof, 0.9))
    patch.poly([iuv[4:8]], _shade(b.roof, 1.2))
    canvas.paint(patch.mask, (patch.r0, patch.c0), patch.rgb, "building", depth)
    for sx, sy in ((-0.7, -0.7), (0.7, 0.7), (-0.7, 0.7))[: 1 + int(rng_vals[-1] * 3)]:
        ruv, rz = view.project(np.array([[b.x + sx * a, b.y + sy * w, b.height + 0.5]]))
        lights.append((ruv[0], view.px(0.5, float(rz[0])), "window"))
    for (u_, v_), r, kind in lights:
        if 0 <= u_ < view.w and 0 <= v_ < view.h:
            canvas.light(u_, v_, max(r, 0.5), (255, 214, 150), kind)


def _walls(patch: Patch, view: View, sun, b: Building, base: np.ndarray, uv: np.ndarray, rng_vals: np.ndarray,
           part: np.ndarray, depth: np.ndarray) -> list:
    """Paint the walls that face the drone (lit by the sun; rows of windows where the wall is tall
    enough in the image) into ``patch`` and their depth into ``depth``; returns the lit windows
    as (pixel centre, pixel radius, "window")."""
    h = b.height
    box = (patch.r0, patch.r1, patch.c0, patch.c1)
    cam = view.C[:2]
    lights = []
    for i in range(4):
        p, q = base[i, :2], base[(i + 1) % 4, :2]
        edge = q - p
        normal = np.array([edge[1], -edge[0]]) / (np.linalg.norm(edge) + 1e-9)
        if normal @ (p - np.array([b.x, b.y])) < 0:
            normal = -normal
        if normal @ (cam - (p + q) / 2) <= 0:
            continue  # faces away from the drone
        lit = 0.55 + 0.45 * max(0.0, -float(normal @ sun) / (np.linalg.norm(sun) + 1e-9))
        quad = uv[[i, (i + 1) % 4, 4 + (i + 1) % 4, 4 + i]]
        patch.poly([quad], _shade(b.wall, lit), part)
        n3 = np.array([normal[0], normal[1], 0.0])
        np.copyto(depth, view.plane_depth(*box, n3, float(n3[:2] @ p)), where=part.astype(bool))
        floors = int(h // 3.2)
        wall_px = float(np.abs(quad[3, 1] - quad[0, 1]))
        if floors >= 1 and wall_px >= 2.5 * floors:  # windows: rows of dark panes on tall-enough walls
            cols = max(int(np.linalg.norm(edge) // 3.5), 1)
            fu = (np.arange(cols) + 0.5) / cols
            fz = np.repeat((np.arange(floors) + 0.55) / floors * h, cols)
            left = np.tile(p + edge * (fu - 0.3 / cols)[:, None], (floors, 1))
            right = np.tile(p + edge * (fu + 0.3 / cols)[:, None], (floors, 1))
            wins = np.stack([np.c_[left, fz - 0.7], np.c_[right, fz - 0.7], np.c_[right, fz + 0.7],
                             np.c_[left, fz + 0.7]], 1)
            wuv, wz = view.project(wins)
            patch.poly(list(wuv), _shade(b.glass, lit))
            lit_idx = np.flatnonzero(rng_vals[: len(wins)] < 0.35)[:6]
            lights += [(wuv[j].mean(0), view.px(0.7, float(wz[j].mean())), "window") for j in lit_idx]
    return lights


def tree_circle(view: View, t: Tree) -> tuple[np.ndarray, float, float]:
    """Crown centre (u, v), radius in pixels and metres from the drone to the crown."""
    c = np.array([[t.x, t.y, t.height - t.radius]])
    uv, z = view.project(c)
    return uv[0], view.px(t.radius, float(z[0])), view.distance(c[0]) - t.radius


def draw_tree(canvas: Canvas, view: View, shadows, sun, t: Tree) -> None:
    """A round crown of a few overlapping blobs, lit on the sun side; its shadow on the ground."""
    uv, r, dist = tree_circle(view, t)
    patch = Patch(view, np.array([uv - r * 1.3, uv + r * 1.3]))
    if not patch.ok:
        return
    ang = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    cz = t.height - t.radius
    ring = np.stack([t.x + sun[0] * cz + t.radius * np.cos(ang), t.y + sun[1] * cz + t.radius * np.sin(ang),
                     np.zeros(12)], -1)
    suv, _ = view.project(ring)
    cv2.fillPoly(shadows, [np.rint(suv).astype(np.int32)], 2)
    g = t.colour
    patch.circle(uv, r, _shade(g, 0.8))
    for (ox, oy), k in zip(t.blobs, (0.95, 1.0, 1.05)):
        patch.circle(uv + r * 0.35 * np.array([ox, oy]), r * 0.62, _shade(g, k))
    toward = -sun[:2] / (np.linalg.norm(sun[:2]) + 1e-9)
    patch.circle(uv + r * 0.3 * np.array([toward[0], -toward[1]]), r * 0.45, _shade(g, 1.25))
    patch.paint(canvas, "vegetation", dist)


def draw_lamp(canvas: Canvas, view: View, shadows, sun, lamp: Lamp) -> None:
    """A street lamp: pole, arm over the road and head; its light; a thin shadow line."""
    x, y, ax, ay, hgt = lamp.x, lamp.y, lamp.ax, lamp.ay, 8.0
    pts = np.array([[x, y, 0.0], [x, y, hgt], [x + ax, y + ay, hgt]])
    uv, z = view.project(pts)
    patch = Patch(view, uv)
    if not patch.ok:
        return
    s_uv, _ = view.project(np.array([[x, y, 0.0], [x + sun[0] * hgt, y + sun[1] * hgt, 0.0]]))
    cv2.line(shadows, tuple(int(round(c)) for c in s_uv[0]), tuple(int(round(c)) for c in s_uv[1]), 1, 1)
    patch.line(uv[0], uv[1], (120, 122, 126))
    patch.line(uv[1], uv[2], (120, 122, 126))
    patch.circle(uv[2], view.px(0.35, z[2]), (200, 200, 190))
    patch.paint(canvas, "pole", view.distance(pts[1]))
    if 0 <= uv[2, 0] < view.w and 0 <= uv[2, 1] < view.h:
        canvas.light(uv[2, 0], uv[2, 1], max(view.px(0.4, z[2]), 0.5), (255, 210, 150), "street")
