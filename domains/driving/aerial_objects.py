"""The drone camera and the sprites of the aerial renderer: vehicles, people, cyclists, debris,
buildings, trees and street lamps, each built in a bbox-local patch and painted in one call.

World frame: metres, x east (image right), y forward (away from the drone's feet in an oblique
view), z up; the drone hangs at (0, 0, altitude). Shadows are collected in one image-sized mask
(1: a low object's shadow, darkens the ground only; 2: a tall one's, darkens anything low) and
applied to the picture at the end, so the semantic map keeps the ground's class.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from synthscape.domains.driving.scene import SKY_DEPTH, Canvas

FAR = 900.0  # metres: ground farther than this is drawn as sky (haze horizon), below SKY_DEPTH


class View:
    """A pinhole drone camera ``altitude`` metres up, tilted ``tilt`` degrees from nadir towards +y."""

    def __init__(self, height: int, width: int, altitude: float, tilt: float, hfov: float):
        self.h, self.w, self.alt = int(height), int(width), float(altitude)
        th = math.radians(tilt)
        s, c = math.sin(th), math.cos(th)
        self.f = (width / 2) / math.tan(math.radians(hfov) / 2)
        self.cx, self.cy = (width - 1) / 2, (height - 1) / 2
        self.C = np.array([0.0, 0.0, self.alt])
        self.R = np.array([[1.0, 0.0, 0.0], [0.0, -c, -s], [0.0, s, -c]])  # rows: image right, down, optical axis
        self.RT, self.CR = self.R.T.copy(), self.C @ self.R.T
        self.a = ((np.arange(self.w) - self.cx) / self.f).astype(np.float32)
        self.b = ((np.arange(self.h) - self.cy) / self.f).astype(np.float32)
        self.norm = np.sqrt(self.a[None] ** 2 + self.b[:, None] ** 2 + 1).astype(np.float32)
        denom = c + s * self.b  # -z of each row's ray
        with np.errstate(divide="ignore"):
            row_t = np.where(denom > 1e-6, self.alt / np.maximum(denom, 1e-6), np.inf).astype(np.float32)
        self.ground = row_t[:, None] * self.norm  # metres to the ground along each pixel's ray
        self.sky = ~(self.ground < FAR)

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points [..., 3] -> pixel (u, v) [..., 2] and distance along the optical axis [...]."""
        q = np.asarray(pts, dtype=np.float64) @ self.RT - self.CR
        z = np.maximum(q[..., 2], 1e-3)
        uv = q[..., :2] * (self.f / z)[..., None]
        uv += (self.cx, self.cy)
        return uv, z

    def unproject(self, u, v, z: float = 0.0) -> np.ndarray:
        """Ground points [..., 2] (x, y) seen at pixels (u, v) on the plane at height ``z``; nan above the horizon."""
        u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
        d = np.stack([(u - self.cx) / self.f, (v - self.cy) / self.f, np.ones_like(u)], -1) @ self.R
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(d[..., 2] < -1e-6, (z - self.alt) / d[..., 2], np.nan)
        return np.stack([t * d[..., 0], t * d[..., 1]], -1)

    def distance(self, p) -> float:
        return math.sqrt(p[0] ** 2 + p[1] ** 2 + (p[2] - self.alt) ** 2)

    def px(self, metres: float, z: float) -> float:
        """Pixels spanned by ``metres`` at optical-axis distance ``z``."""
        return metres * self.f / max(z, 1e-3)

    def plane_depth(self, r0: int, r1: int, c0: int, c1: int, normal, offset: float) -> np.ndarray:
        """Metres to the plane normal . p = offset along each pixel's ray in rows r0:r1, cols c0:c1."""
        n = np.asarray(normal, dtype=np.float64)
        k = self.R @ n
        den = k[0] * self.a[c0:c1][None] + k[1] * self.b[r0:r1][:, None] + k[2]
        den = np.where(np.abs(den) < 1e-4, 1e-4, den)
        t = (offset - float(n @ self.C)) / den
        return np.clip(t * self.norm[r0:r1, c0:c1], 0.1, SKY_DEPTH - 1).astype(np.float32)


class Patch:
    """A sprite in the image box around ``uv``: parts fill its mask, colour and depth, then one paint."""

    def __init__(self, view: View, uv: np.ndarray, pad: int = 2):
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        lo, hi = np.floor(uv.min(0)).astype(int) - pad, np.ceil(uv.max(0)).astype(int) + pad + 1
        self.c0, self.r0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        self.c1, self.r1 = min(int(hi[0]), view.w), min(int(hi[1]), view.h)
        self.ok = self.c1 > self.c0 and self.r1 > self.r0
        shape = (max(self.r1 - self.r0, 0), max(self.c1 - self.c0, 0))
        self.mask = np.zeros(shape, np.uint8)
        self.rgb = np.zeros(shape + (3,), np.uint8)
        self.view = view

    def _pts(self, polys):
        return [np.rint(np.asarray(p)[..., :2] - (self.c0, self.r0)).astype(np.int32) for p in polys]

    def poly(self, polys, colour, part: np.ndarray | None = None) -> None:
        pts = self._pts(polys)
        cv2.fillPoly(self.mask, pts, 1)
        cv2.fillPoly(self.rgb, pts, tuple(int(c) for c in colour))
        if part is not None:
            part[:] = 0
            cv2.fillPoly(part, pts, 1)

    def circle(self, uv, radius: float, colour) -> None:
        c = (int(round(uv[0] - self.c0)), int(round(uv[1] - self.r0)))
        r = max(int(round(radius)), 0)
        cv2.circle(self.mask, c, r, 1, -1)
        cv2.circle(self.rgb, c, r, tuple(int(v) for v in colour), -1)

    def ellipse(self, uv, axes, angle: float, colour) -> None:
        c = (int(round(uv[0] - self.c0)), int(round(uv[1] - self.r0)))
        ax = (max(int(round(axes[0])), 0), max(int(round(axes[1])), 0))
        cv2.ellipse(self.mask, c, ax, angle, 0, 360, 1, -1)
        cv2.ellipse(self.rgb, c, ax, angle, 0, 360, tuple(int(v) for v in colour), -1)

    def line(self, a, b, colour) -> None:
        p, q = (tuple(int(round(v)) for v in (x[0] - self.c0, x[1] - self.r0)) for x in (a, b))
        cv2.line(self.mask, p, q, 1, 1)
        cv2.line(self.rgb, p, q, tuple(int(v) for v in colour), 1)

    def paint(self, canvas: Canvas, semantic: str, depth) -> None:
        if self.ok:
            canvas.paint(self.mask, (self.r0, self.c0), self.rgb, semantic, depth)


def box3(cx: float, cy: float, heading: float, fl: tuple[float, float], fw: tuple[float, float], z: float) -> np.ndarray:
    """Corners [4, 3] of the rectangle fl (along ``heading``) x fw (to its left) at height z."""
    c, s = math.cos(heading), math.sin(heading)
    return np.array([[cx + c * a - s * b, cy + s * a + c * b, z]
                     for a, b in ((fl[1], fw[0]), (fl[1], fw[1]), (fl[0], fw[1]), (fl[0], fw[0]))])


def _hull(uv: np.ndarray) -> np.ndarray:
    hull = cv2.convexHull(np.rint(np.clip(uv, -1e6, 1e6)).astype(np.float32).reshape(-1, 1, 2))
    return uv if hull is None else hull.reshape(-1, 2)


def shadow_poly(view: View, shadows: np.ndarray, base: np.ndarray, height: float, sun: np.ndarray, value: int) -> None:
    """Cast the prism over ``base`` [n, 3] (ground corners) ``height`` high along ``sun`` (metres per metre)."""
    top = base.copy()
    top[:, :2] += sun * height
    uv, _ = view.project(np.concatenate([base, top]))
    cv2.fillPoly(shadows, [np.rint(_hull(uv)).astype(np.int32)], value)


def _shade(colour, k: float):
    return tuple(int(min(255, max(0, c * k))) for c in colour)


def draw_vehicle(canvas: Canvas, view: View, shadows, sun, v: dict) -> None:
    """A car or truck: oriented box with windscreen, roof and windows; head/tail (or hazard) lights."""
    x, y, hd, length, width, kind = v["x"], v["y"], v["heading"], v["length"], v["width"], v["kind"]
    colour, hl, hw = v["colour"], length / 2, width / 2
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
    patch.poly([_hull(uv[:12])], _shade(colour, 0.6))
    patch.poly([uv[4:8]], colour)
    if car:
        patch.poly([uv[8:12]], _shade(colour, 1.12))
        patch.poly([uv[12:16], uv[16:20]], (35, 42, 52))
    else:
        patch.poly([uv[12:16]], colour)
        patch.poly([uv[16:20]], (35, 42, 52))
        patch.poly([uv[8:12]], v["cargo"])
    dist = view.distance((x, y, top))
    canvas.begin(kind, dist)
    patch.paint(canvas, kind, dist)
    radius = max(view.px(0.25, float(z[-1])), 0.5)
    kinds = (("signal", (255, 170, 0)),) * 4 if v.get("hazard") else \
        (("headlight", (255, 246, 220)),) * 2 + (("taillight", (255, 30, 20)),) * 2
    for (u_, v_), (k, c) in zip(uv[-4:], kinds):
        if 0 <= u_ < view.w and 0 <= v_ < view.h:
            canvas.light(u_, v_, radius, c, k)
    canvas.end()


def draw_person(canvas: Canvas, view: View, shadows, sun, p: dict, category: str = "pedestrian") -> None:
    """A person seen from above (shoulders and head) or a cyclist (bicycle, rider, helmet)."""
    x, y, hd = p["x"], p["y"], p["heading"]
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
    patch.ellipse(uv[1], body, ang + 90, p["colour"])
    head = view.px(0.11, z[2])
    if head >= 0.75:
        patch.circle(uv[2], head, p["head"])
    canvas.begin(category, view.distance(pts[1]))
    patch.paint(canvas, category, view.distance(pts[1]))
    canvas.end()


def draw_debris(canvas: Canvas, view: View, d: dict) -> None:
    """A small irregular lump (tyre tread, box, rock) lying on the road."""
    ang = np.sort(d["angles"])
    ring = np.stack([d["x"] + d["radius"] * d["radii"] * np.cos(ang),
                     d["y"] + d["radius"] * d["radii"] * np.sin(ang), np.full(len(ang), 0.15)], -1)
    uv, z = view.project(ring)
    size = view.px(d["radius"], float(z.mean()))
    if size < 1.0:  # keep at least a pixel or two: never a zero-area object
        centre = uv.mean(0)
        uv = centre + (uv - centre) / max(size, 1e-3)
    patch = Patch(view, uv)
    if not patch.ok:
        return
    patch.poly([uv], d["colour"])
    dist = view.distance([d["x"], d["y"], 0.15])
    canvas.begin("debris", dist)
    patch.paint(canvas, "debris", dist)
    canvas.end()


def building_hull(view: View, b: dict) -> np.ndarray:
    base = box3(b["x"], b["y"], b["angle"], (-b["a"], b["a"]), (-b["b"], b["b"]), 0.0)
    top = base + (0, 0, b["height"])
    uv, _ = view.project(np.concatenate([base, top]))
    return _hull(uv)


def draw_building(canvas: Canvas, view: View, shadows, sun, b: dict, rng_vals: np.ndarray) -> None:
    """A box building: visible walls (sun-lit or not, windows in oblique views), roof with parapet and
    a plant room; its shadow; window/roof lights."""
    base = box3(b["x"], b["y"], b["angle"], (-b["a"], b["a"]), (-b["b"], b["b"]), 0.0)
    h = b["height"]
    top = base + (0, 0, h)
    uv, z = view.project(np.concatenate([base, top]))
    patch = Patch(view, uv)
    if not patch.ok:
        return
    shadow_poly(view, shadows, base, h, sun, 2)
    part = np.zeros_like(patch.mask)
    box = (patch.r0, patch.r1, patch.c0, patch.c1)
    roof_d = view.plane_depth(*box, (0.0, 0.0, 1.0), h)
    depth = roof_d.copy()  # stray window pixels beyond a wall's edge take the roof's
    cam = view.C[:2]
    lights = []
    for i in range(4):
        p, q = base[i, :2], base[(i + 1) % 4, :2]
        edge = q - p
        normal = np.array([edge[1], -edge[0]]) / (np.linalg.norm(edge) + 1e-9)
        if normal @ (p - np.array([b["x"], b["y"]])) < 0:
            normal = -normal
        if normal @ (cam - (p + q) / 2) <= 0:
            continue  # faces away from the drone
        lit = 0.55 + 0.45 * max(0.0, -float(normal @ sun) / (np.linalg.norm(sun) + 1e-9))
        quad = uv[[i, (i + 1) % 4, 4 + (i + 1) % 4, 4 + i]]
        patch.poly([quad], _shade(b["wall"], lit), part)
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
            patch.poly(list(wuv), _shade(b["glass"], lit))
            lit_idx = np.flatnonzero(rng_vals[: len(wins)] < 0.35)[:6]
            lights += [(wuv[j].mean(0), view.px(0.7, float(wz[j].mean())), "window") for j in lit_idx]
    patch.poly([uv[4:8]], b["roof"], part)
    np.copyto(depth, roof_d, where=part.astype(bool))
    inset = box3(b["x"], b["y"], b["angle"], (-b["a"] + 0.6, b["a"] - 0.6), (-b["b"] + 0.6, b["b"] - 0.6), h)
    plant = box3(b["x"] + b["px"] * b["a"], b["y"] + b["py"] * b["b"], b["angle"], (-b["a"] * 0.25, b["a"] * 0.25),
                 (-b["b"] * 0.2, b["b"] * 0.2), h)
    iuv, iz = view.project(np.concatenate([inset, plant]))
    patch.poly([iuv[0:4]], _shade(b["roof"], 0.9))
    patch.poly([iuv[4:8]], _shade(b["roof"], 1.2))
    canvas.paint(patch.mask, (patch.r0, patch.c0), patch.rgb, "building", depth)
    for k, (sx, sy) in enumerate(((-0.7, -0.7), (0.7, 0.7), (-0.7, 0.7))[: 1 + int(rng_vals[-1] * 3)]):
        ruv, rz = view.project(np.array([[b["x"] + sx * b["a"], b["y"] + sy * b["b"], h + 0.5]]))
        lights.append((ruv[0], view.px(0.5, float(rz[0])), "window"))
    for (u_, v_), r, kind in lights:
        if 0 <= u_ < view.w and 0 <= v_ < view.h:
            canvas.light(u_, v_, max(r, 0.5), (255, 214, 150), kind)


def tree_circle(view: View, t: dict) -> tuple[np.ndarray, float, float]:
    """Crown centre (u, v), radius in pixels and metres from the drone to the crown."""
    c = np.array([[t["x"], t["y"], t["height"] - t["radius"]]])
    uv, z = view.project(c)
    return uv[0], view.px(t["radius"], float(z[0])), view.distance(c[0]) - t["radius"]


def draw_tree(canvas: Canvas, view: View, shadows, sun, t: dict) -> None:
    """A round crown of a few overlapping blobs, lit on the sun side; its shadow on the ground."""
    uv, r, dist = tree_circle(view, t)
    patch = Patch(view, np.array([uv - r * 1.3, uv + r * 1.3]))
    if not patch.ok:
        return
    ang = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    cz = t["height"] - t["radius"]
    ring = np.stack([t["x"] + sun[0] * cz + t["radius"] * np.cos(ang),
                     t["y"] + sun[1] * cz + t["radius"] * np.sin(ang), np.zeros(12)], -1)
    suv, _ = view.project(ring)
    cv2.fillPoly(shadows, [np.rint(suv).astype(np.int32)], 2)
    g = t["colour"]
    patch.circle(uv, r, _shade(g, 0.8))
    for (ox, oy), k in zip(t["blobs"], (0.95, 1.0, 1.05)):
        patch.circle(uv + r * 0.35 * np.array([ox, oy]), r * 0.62, _shade(g, k))
    toward = -sun[:2] / (np.linalg.norm(sun[:2]) + 1e-9)
    patch.circle(uv + r * 0.3 * np.array([toward[0], -toward[1]]), r * 0.45, _shade(g, 1.25))
    patch.paint(canvas, "vegetation", dist)


def draw_lamp(canvas: Canvas, view: View, shadows, sun, lamp: dict) -> None:
    """A street lamp: pole, arm over the road and head; its light; a thin shadow line."""
    x, y, ax, ay, hgt = lamp["x"], lamp["y"], lamp["ax"], lamp["ay"], 8.0
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
