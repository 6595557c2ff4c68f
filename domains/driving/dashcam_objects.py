"""The sprites the dashcam paints: vehicles (3-D boxes in perspective), pedestrians, cyclists,
debris, trees, poles, street lamps, traffic lights and signs (camera and primitives:
``dashcam_camera``). Every sprite is built in a bbox-local index map (cv2, hard edges, sub-pixel
vertices) and painted in one ``Canvas.paint`` call, so it costs a few tens of microseconds
whatever its number of parts; a vehicle's faces are projected together (``WorldPolys``).
Depth of an object = its distance (metres from the camera to its foot point).
"""

from __future__ import annotations

import math

import numpy as np

from synthscape.domains.driving.dashcam_camera import Box3, Camera, Sprite, WorldPolys, box_corners, quad, shade
from synthscape.domains.driving.scene import Canvas

__all__ = ["Camera", "Sprite", "cyclist", "debris", "pedestrian", "street_lamp", "traffic_light", "traffic_sign",
           "tree", "vehicle"]

VEHICLE_COLOURS = ((235, 235, 232), (190, 192, 196), (30, 30, 34), (110, 112, 118), (170, 28, 30),
                   (30, 60, 140), (20, 40, 80), (60, 90, 60), (200, 180, 140), (230, 200, 40))
GLASS = (40, 52, 66)
_RING = [(math.cos(t), math.sin(t)) for t in np.linspace(0, 2 * math.pi, 9)[:-1]]
_RING_COS, _RING_SIN = np.array([c for c, _ in _RING]), np.array([s for _, s in _RING])
DARK = (22, 22, 24)


def vehicle(canvas: Canvas, cam: Camera, rng: np.random.Generator, x: float, z: float, yaw: float,
            kind: str = "car", hazard: bool = False, lights: list | None = None) -> bool:
    """A car or truck with its footprint centred at (x, z) metres, ``yaw`` radians (0: facing away
    from the camera, positive: turned to the right, pi: facing it); paints it as one object and
    returns whether any of it shows.
    ``lights`` collects (x, y, radius, colour, kind, distance) of its head/tail/hazard lamps."""
    length, width, parts = _vehicle_parts(rng, x, z, yaw, kind)
    corners = cam.project_many(box_corners([b for _, b, _ in parts]))
    (u0, v0), (u1, v1) = corners.min(axis=0), corners.max(axis=0)
    sp = Sprite(cam, u0, v0, u1, v1)
    if not sp.ok:
        return False
    dist = cam.distance(x, z)
    detail = v1 - v0 > 7  # far vehicles (a few pixels) skip wheels, glass and plates
    body_faces = parts[0][1].faces(cam)
    polys = WorldPolys()  # queued in paint order, projected and filled at once
    under = Box3(x, z, yaw, width / 2 - 0.02, 0.0, 0.6, -length / 2 + 0.4, length / 2 - 0.4)
    for fname, face in under.faces(cam).items():  # tyres seen from the ends, behind the body
        if fname in ("back", "front"):
            polys.quad(face, DARK, 0.0, 0.14)
            polys.quad(face, DARK, 0.86, 1.0)
    lamp_faces = _vehicle_faces(polys, cam, parts, body_faces, detail)
    if detail:
        _wheels(polys, body_faces, length, kind)
    lamps = _lamps(polys, lamp_faces, kind, detail)
    drawn = polys.fill(cam, sp)  # pixel corners of the quads
    for i, lamp, lamp_name in lamps if lights is not None else ():
        q = drawn[i].tolist()
        lx, ly = sum(p[0] for p in q) / 4, sum(p[1] for p in q) / 4
        r = max(0.6, 0.5 * abs(q[1][0] - q[0][0]))
        lights.append((lx, ly, r, lamp, lamp_name, dist))
        if hazard:
            lights.append((lx, ly, r * 1.2, (255, 170, 0), "signal", dist))
    canvas.begin(kind, dist)
    ok = sp.stamp(canvas, kind, dist)
    canvas.end()
    return ok


def _vehicle_parts(rng: np.random.Generator, x: float, z: float, yaw: float, kind: str) -> tuple[float, float, list]:
    """Length and width (metres) and the boxes, as (name, Box3, colour), of a car (body, cabin)
    or a truck (chassis, cab, cargo); the first box is the one that carries the lamps."""
    colour = shade(VEHICLE_COLOURS[rng.integers(len(VEHICLE_COLOURS))], rng.uniform(0.85, 1.1))
    if kind == "car":
        length, width, height = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.9), rng.uniform(1.38, 1.6)
        parts = [("body", Box3(x, z, yaw, width / 2, 0.28, 0.55 * height, -length / 2, length / 2), colour),
                 ("cabin", Box3(x, z, yaw, 0.43 * width, 0.55 * height, height, -0.3 * length, 0.18 * length),
                  colour)]
    else:
        length, width, height = rng.uniform(6.5, 10.0), rng.uniform(2.3, 2.55), rng.uniform(3.0, 3.9)
        cargo = shade(VEHICLE_COLOURS[rng.integers(2)], rng.uniform(0.8, 1.05))
        parts = [("chassis", Box3(x, z, yaw, 0.46 * width, 0.3, 1.1, -length / 2, length / 2), DARK),
                 ("cab", Box3(x, z, yaw, width / 2, 0.45, 0.8 * height, length / 2 - 2.2, length / 2), colour),
                 ("cargo", Box3(x, z, yaw, width / 2, 1.0, height, -length / 2, length / 2 - 2.5), cargo)]
    return length, width, parts


def _vehicle_faces(polys: WorldPolys, cam: Camera, parts: list, body_faces: dict, detail: bool) -> dict:
    """Queue the visible faces of the parts (shaded by orientation) with their glass and the
    cargo's trim; returns the lamp-carrying faces (back/front of the body or chassis) by name."""
    lamp_faces = {}
    for name, box, col in parts:
        for fname, face in (body_faces if box is parts[0][1] else box.faces(cam)).items():
            k = {"top": 1.12, "back": 0.92, "front": 0.92}.get(fname, 0.78)
            polys.quad(face, shade(col, k))
            if name == "cabin" and fname != "top":
                inset = (0.08, 0.92, 0.0, 0.86) if fname in ("back", "front") else (0.06, 0.94, 0.0, 0.86)
                polys.quad(face, GLASS, *inset)
            elif name == "cab" and fname == "front":
                polys.quad(face, GLASS, 0.05, 0.95, 0.6, 0.95)
            elif name in ("body", "chassis") and fname in ("back", "front"):
                lamp_faces[fname] = face
            elif name == "cargo" and fname in ("left", "right") and detail:
                polys.quad(face, shade(col, 0.6), 0.0, 1.0, 0.0, 0.07)
    return lamp_faces


def _wheels(polys: WorldPolys, body_faces: dict, length: float, kind: str) -> None:
    """Queue the wheels on the body's visible side, as discs (8-gons) in the side's plane."""
    wheel_r = 0.33 if kind == "car" else 0.5
    axles = (-0.33 * length, 0.3 * length) if kind == "car" else (-0.35 * length, 0.36 * length)
    for fname in ("left", "right"):
        face = body_faces.get(fname)
        if face is None:
            continue
        (ox, _, oz), (ax, _, az), _ = face
        ux, uz = ax / length, az / length
        for a in axles:
            s = (a + length / 2) if fname == "right" else (length / 2 - a)
            cxw, czw = ox + s * ux, oz + s * uz
            ring = np.empty((len(_RING), 3))
            ring[:, 0], ring[:, 1], ring[:, 2] = cxw + ux * wheel_r * _RING_COS, wheel_r + wheel_r * _RING_SIN, \
                czw + uz * wheel_r * _RING_COS
            polys.points(ring, DARK)


def _lamps(polys: WorldPolys, lamp_faces: dict, kind: str, detail: bool) -> list:
    """Queue two lamps (and, near, a number plate) on each lamp-carrying face; returns
    (quad index, colour, light kind) of each lamp."""
    lamps = []
    for fname, face in lamp_faces.items():
        front = fname == "front"
        lamp = (250, 245, 220) if front else (200, 20, 20)
        t0, t1 = (0.5, 0.8) if kind == "car" else (0.2, 0.55)
        for s0, s1 in ((0.03, 0.2), (0.8, 0.97)):
            lamps.append((polys.quad(face, lamp, s0, s1, t0, t1), lamp, "headlight" if front else "taillight"))
        if detail:
            polys.quad(face, (225, 225, 215) if not front else DARK, 0.38, 0.62, 0.08, 0.32)
    return lamps


SKIN = ((240, 200, 170), (200, 150, 110), (150, 100, 70), (90, 60, 40))
CLOTH = ((30, 30, 40), (200, 40, 40), (40, 70, 160), (230, 230, 225), (90, 90, 95), (60, 110, 60),
         (230, 180, 40), (120, 80, 50), (160, 120, 170))


def _person(sp: Sprite, u: float, vb: float, s: float, height: float, facing: str, rng):
    """A standing or walking person, feet at (u, vb), ``s`` pixels per metre."""
    skin, top, bottom = SKIN[rng.integers(4)], CLOTH[rng.integers(len(CLOTH))], CLOTH[rng.integers(len(CLOTH))]
    k = height / 1.75
    P = lambda x, y: (u + x * s, vb - y * s)  # noqa: E731
    side = facing in ("left", "right")
    d = -1.0 if facing == "left" else 1.0
    hip, shoulder, head = 0.92 * k, 1.42 * k, 1.62 * k
    if side:
        stride = rng.uniform(0.1, 0.35)
        sp.line(P(0, hip), P(-stride * d, 0.05), 0.14 * s, bottom)
        sp.line(P(0, hip), P(stride * d, 0.05), 0.14 * s, shade(bottom, 0.8))
        sp.poly((P(-0.13, hip), P(0.13, hip), P(0.12, shoulder), P(-0.12, shoulder)), top)
        sp.line(P(0, shoulder - 0.05), P(0.18 * d, hip - 0.05), 0.09 * s, shade(top, 0.85))
    else:
        sp.poly((P(-0.17, hip), P(-0.03, hip), P(-0.06, 0), P(-0.16, 0)), bottom)
        sp.poly((P(0.03, hip), P(0.17, hip), P(0.16, 0), P(0.06, 0)), bottom)
        sp.poly((P(-0.2, hip - 0.05), P(0.2, hip - 0.05), P(0.22, shoulder), P(-0.22, shoulder)), top)
        for sx in (-1, 1):
            sp.line(P(0.24 * sx, shoulder - 0.05), P(0.27 * sx, hip - 0.1), 0.09 * s, shade(top, 0.85))
    sp.ellipse(P(0, head + 0.01), (0.1 * k * s, 0.13 * k * s), skin)
    if facing == "back":  # hair
        sp.ellipse(P(0, head + 0.03), (0.1 * k * s, 0.11 * k * s), ((20, 15, 10), (90, 60, 30))[rng.integers(2)])


def pedestrian(canvas: Canvas, cam: Camera, rng, x: float, z: float, facing: str | None = None) -> bool:
    """A person (one in eight a child) standing at (x, z) metres, ``facing`` "front", "back",
    "left" or "right" (None: any); returns whether any of it shows."""
    height = rng.uniform(1.55, 1.9) if rng.random() > 0.12 else rng.uniform(1.0, 1.3)  # some children
    s = cam.f / z
    u, vb = cam.project(x, 0, z)
    sp = Sprite(cam, u - 0.45 * s, vb - height * 1.02 * s, u + 0.45 * s, vb)
    if not sp.ok:
        return False
    _person(sp, u, vb, s, height, facing or ("front", "back", "left", "right")[rng.integers(4)], rng)
    dist = cam.distance(x, z)
    canvas.begin("pedestrian", dist)
    ok = sp.stamp(canvas, "pedestrian", dist)
    canvas.end()
    return ok


def cyclist(canvas: Canvas, cam: Camera, rng, x: float, z: float, facing: str = "back") -> bool:
    """A bike and its rider, one object; ``facing``: "back" (riding ahead), "left" or "right" (crossing)."""
    s = cam.f / z
    u, vb = cam.project(x, 0, z)
    sp = Sprite(cam, u - 1.0 * s, vb - 1.95 * s, u + 1.0 * s, vb)
    if not sp.ok:
        return False
    P = lambda px, py: (u + px * s, vb - py * s)  # noqa: E731
    frame, top, bottom, helmet = (CLOTH[i] for i in rng.integers(len(CLOTH), size=4))
    skin = SKIN[rng.integers(4)]
    if facing == "back":
        sp.rect(*P(-0.04, 0.7), *P(0.04, 0.0), DARK)  # rear wheel edge-on
        sp.line(P(0, 0.75), P(0, 0.95), 0.05 * s, frame)
        sp.line(P(-0.28, 1.05), P(0.28, 1.05), 0.04 * s, DARK)  # handlebar behind the rider
        for sx in (-1, 1):
            sp.line(P(0.08 * sx, 0.95), P(0.13 * sx, 0.35), 0.12 * s, bottom)
            sp.line(P(0.22 * sx, 1.45), P(0.27 * sx, 1.08), 0.08 * s, shade(top, 0.85))
        sp.poly((P(-0.18, 0.9), P(0.18, 0.9), P(0.21, 1.5), P(-0.21, 1.5)), top)
        sp.ellipse(P(0, 1.66), (0.1 * s, 0.12 * s), skin)
        sp.ellipse(P(0, 1.72), (0.12 * s, 0.08 * s), helmet)
    else:
        d = -1.0 if facing == "left" else 1.0
        ring = max(int(round(0.06 * s)), 1)
        for wx in (-0.53, 0.53):
            sp.ellipse(P(wx * d, 0.34), (0.34 * s, 0.34 * s), DARK, ring)
        for a, b in (((-0.53, 0.34), (-0.05, 0.4)), ((-0.05, 0.4), (-0.15, 0.92)), ((-0.05, 0.4), (0.42, 0.85)),
                     ((-0.15, 0.85), (0.42, 0.85)), ((0.42, 0.85), (0.53, 0.34)), ((-0.53, 0.34), (-0.15, 0.88)),
                     ((0.42, 0.85), (0.4, 1.02))):
            sp.line(P(a[0] * d, a[1]), P(b[0] * d, b[1]), 0.045 * s, frame)
        sp.line(P(-0.15 * d, 0.98), P(0.12 * d, 0.62), 0.13 * s, bottom)
        sp.line(P(0.12 * d, 0.62), P(0.02 * d, 0.25), 0.1 * s, bottom)
        sp.poly((P(-0.25 * d, 0.92), P(-0.05 * d, 0.92), P(0.22 * d, 1.5), P(0.02 * d, 1.55)), top)
        sp.line(P(0.15 * d, 1.45), P(0.4 * d, 1.05), 0.08 * s, shade(top, 0.85))
        sp.ellipse(P(0.2 * d, 1.66), (0.1 * s, 0.12 * s), skin)
        sp.ellipse(P(0.18 * d, 1.72), (0.13 * s, 0.08 * s), helmet)
    dist = cam.distance(x, z)
    canvas.begin("cyclist", dist)
    ok = sp.stamp(canvas, "cyclist", dist)
    canvas.end()
    return ok


def debris(canvas: Canvas, cam: Camera, rng, x: float, z: float, kind: str | None = None) -> bool:
    """A box, a tyre or a rock lying on the road at (x, z)."""
    kind = kind or ("box", "tyre", "rock")[rng.integers(3)]
    s = cam.f / z
    u, vb = cam.project(x, 0, z)
    if kind == "box":
        w, h, d = rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.8)
        box = Box3(x, z, rng.uniform(0, math.pi), w / 2, 0.0, h, -d / 2, d / 2)
        pts = [cam.project(*p) for p in box.corners()]
        sp = Sprite(cam, min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts),
                    max(p[1] for p in pts))
        col = ((170, 130, 80), (140, 105, 65), (200, 190, 170), (60, 90, 140))[rng.integers(4)]
        for fname, face in box.faces(cam).items():
            sp.poly(quad(cam, face), shade(col, 1.15 if fname == "top" else 0.8 if fname in ("left", "right") else 1))
    elif kind == "tyre":
        r = rng.uniform(0.3, 0.4)
        sp = Sprite(cam, u - r * s, vb - 2 * r * s, u + r * s, vb + 0.2 * s)
        if rng.random() < 0.5:  # standing, seen at an angle
            k = rng.uniform(0.35, 1.0)
            sp.ellipse((u, vb - r * s), (r * s * k, r * s), DARK, max(int(round(0.13 * s)), 1))
        else:  # lying flat
            flat = max(cam.height / z, 0.08)
            sp.ellipse((u, vb - 0.05 * s), (r * s, r * s * flat + 0.1 * s), DARK, -1)
            sp.ellipse((u, vb - 0.05 * s), (0.5 * r * s, 0.5 * r * s * flat), (60, 60, 60), -1)
    else:
        r = rng.uniform(0.2, 0.5)
        n = int(rng.integers(6, 10))
        ang = np.sort(rng.uniform(0, math.pi, n))
        rad = r * rng.uniform(0.7, 1.2, n)
        pts = [(u + rr * s * math.cos(a), vb - rr * s * math.sin(a) * rng.uniform(0.6, 1.0)) for a, rr in zip(ang, rad)]
        sp = Sprite(cam, u - 1.3 * r * s, vb - 1.3 * r * s, u + 1.3 * r * s, vb + 1)
        col = shade((120, 112, 100), rng.uniform(0.7, 1.2))
        sp.poly(pts + [(u - r * s, vb), (u + r * s, vb)], col)
        sp.poly([(u - 0.3 * r * s, vb - 0.2 * r * s), (u + 0.5 * r * s, vb - 0.4 * r * s), (u + 0.8 * r * s, vb)],
                shade(col, 0.75))
    dist = cam.distance(x, z)
    canvas.begin("debris", dist)
    ok = sp.stamp(canvas, "debris", dist)
    canvas.end()
    return ok


def tree(canvas: Canvas, cam: Camera, rng, x: float, z: float) -> None:
    """A street tree at (x, z) metres: trunk and a crown of four blobs (background: vegetation, no box)."""
    s = cam.f / z
    u, vb = cam.project(x, 0, z)
    trunk_h, crown = rng.uniform(1.8, 3.2), rng.uniform(1.4, 2.8)
    sp = Sprite(cam, u - crown * 1.4 * s, vb - (trunk_h + 2.2 * crown) * s, u + crown * 1.4 * s, vb)
    if not sp.ok:
        return
    sp.rect(u - 0.15 * s, vb - (trunk_h + crown * 0.5) * s, u + 0.15 * s, vb, (80, 60, 40))
    green = (rng.uniform(40, 90), rng.uniform(90, 140), rng.uniform(30, 60))
    cy = vb - (trunk_h + crown) * s
    for _ in range(4):
        dx, dy = rng.uniform(-0.5, 0.5) * crown, rng.uniform(-0.5, 0.4) * crown
        sp.ellipse((u + dx * s, cy + dy * s), (crown * rng.uniform(0.6, 0.9) * s, crown * rng.uniform(0.6, 0.9) * s),
                   shade(green, rng.uniform(0.75, 1.2)))
    sp.stamp(canvas, "vegetation", cam.distance(x, z))


def street_lamp(canvas: Canvas, cam: Camera, rng, x: float, z: float, towards: float, lights: list) -> None:
    """A pole ``towards`` (+1 right, -1 left) the road with its lamp head, and its light."""
    s = cam.f / z
    height, arm = rng.uniform(6.5, 9.0), rng.uniform(1.2, 2.2)
    u, vb = cam.project(x, 0, z)
    hu, hv = cam.project(x + towards * arm, height, z)
    sp = Sprite(cam, min(u, hu) - 0.6 * s, hv - 0.3 * s, max(u, hu) + 0.6 * s, vb)
    if not sp.ok:
        return
    sp.line((u, vb), (u, hv + 0.1 * s), 0.16 * s, (95, 98, 102))
    sp.line((u, hv + 0.1 * s), (hu, hv), 0.1 * s, (95, 98, 102))
    sp.rect(hu - 0.3 * s, hv - 0.1 * s, hu + 0.3 * s, hv + 0.12 * s, (70, 72, 76))
    if sp.stamp(canvas, "pole", cam.distance(x, z)):
        lights.append((hu, hv + 0.12 * s, max(0.8, 0.25 * s), (255, 214, 150), "street", cam.distance(x, z)))


def traffic_light(canvas: Canvas, cam: Camera, rng, x: float, z: float, over: float, lights: list) -> None:
    """A pole at (x, z); its housing hangs ``over`` metres towards the road (0: on the pole)."""
    s = cam.f / z
    height = rng.uniform(3.0, 3.6) if over == 0 else rng.uniform(5.2, 6.0)
    u, vb = cam.project(x, 0, z)
    hu, hv = cam.project(x + over, height, z)
    pole = Sprite(cam, min(u, hu) - 0.3 * s, hv - 0.2 * s, max(u, hu) + 0.3 * s, vb)
    pole.line((u, vb), (u, hv), 0.15 * s, (80, 84, 88))
    pole.line((u, hv), (hu, hv), 0.12 * s, (80, 84, 88))
    pole.stamp(canvas, "pole", dist := cam.distance(x, z))
    w, h = 0.32 * s, 0.95 * s
    top = hv + (0.05 * s if over else -h)
    box = Sprite(cam, hu - w, top, hu + w, top + h)
    box.rect(hu - w / 2, top, hu + w / 2, top + h, ((30, 30, 32), (200, 170, 30))[int(rng.random() < 0.2)])
    lit = int(rng.integers(3))
    colours = ((255, 40, 30), (255, 180, 20), (40, 230, 110))
    for i, col in enumerate(colours):
        cy = top + (0.18 + 0.32 * i) * s
        box.ellipse((hu, cy), (0.1 * s, 0.1 * s), col if i == lit else shade(col, 0.25))
    canvas.begin("traffic_light", dist)
    if box.stamp(canvas, "traffic_light", dist):
        lights.append((hu, top + (0.18 + 0.32 * lit) * s, max(0.6, 0.1 * s), colours[lit], "signal", dist))
    canvas.end()


def traffic_sign(canvas: Canvas, cam: Camera, rng, x: float, z: float) -> None:
    """A sign on a pole at (x, z) metres: prohibition, warning, mandatory or stop; the sign is an
    object (boxed), the pole is background."""
    s = cam.f / z
    height, r = rng.uniform(2.1, 2.7), rng.uniform(0.3, 0.4)
    u, vb = cam.project(x, 0, z)
    cv = vb - height * s
    pole = Sprite(cam, u - 0.2 * s, cv, u + 0.2 * s, vb)
    pole.line((u, vb), (u, cv), 0.08 * s, (150, 152, 155))
    dist = cam.distance(x, z)
    pole.stamp(canvas, "pole", dist)
    sign = Sprite(cam, u - r * s, cv - r * s, u + r * s, cv + r * s)
    kind = int(rng.integers(4))
    R = r * s
    if kind == 0:  # prohibition / speed limit: red ring on white
        sign.ellipse((u, cv), (R, R), (200, 30, 30))
        sign.ellipse((u, cv), (0.72 * R, 0.72 * R), (240, 240, 240))
        sign.rect(u - 0.35 * R, cv - 0.2 * R, u + 0.35 * R, cv + 0.2 * R, (30, 30, 30))
    elif kind == 1:  # warning triangle
        sign.poly(((u, cv - R), (u + R, cv + 0.75 * R), (u - R, cv + 0.75 * R)), (200, 30, 30))
        sign.poly(((u, cv - 0.55 * R), (u + 0.6 * R, cv + 0.5 * R), (u - 0.6 * R, cv + 0.5 * R)), (240, 240, 240))
    elif kind == 2:  # mandatory: blue disc with a white arrow
        sign.ellipse((u, cv), (R, R), (30, 80, 190))
        sign.poly(((u, cv - 0.6 * R), (u + 0.4 * R, cv), (u - 0.4 * R, cv)), (245, 245, 245))
        sign.rect(u - 0.12 * R, cv, u + 0.12 * R, cv + 0.6 * R, (245, 245, 245))
    else:  # stop: red octagon
        pts = [(u + R * math.cos(a), cv + R * math.sin(a)) for a in np.arange(8) * math.pi / 4 + math.pi / 8]
        sign.poly(pts, (200, 25, 25))
        sign.rect(u - 0.6 * R, cv - 0.15 * R, u + 0.6 * R, cv + 0.15 * R, (245, 245, 245))
    canvas.begin("traffic_sign", dist)
    sign.stamp(canvas, "traffic_sign", dist)
    canvas.end()
