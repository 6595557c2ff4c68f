"""The dashcam's pinhole camera and the drawing primitives its objects are made of: a sprite (a
bbox-local index map painted in one go), upright 3-D boxes, and a batch of world-space polygons
projected in one numpy pass.

World frame: metres, x to the right, y up from the (flat) ground, z forward along the optical
axis; the camera sits at (0, cam.height, 0) looking along +z with the horizon at row ``cam.hz``.
The batched paths (``Camera.project_many``, ``WorldPolys``) do the same float64 operations in
the same order as the scalar ones (``Camera.project``, ``quad``, ``Sprite._p``; np.rint rounds
half to even like Python's round), so they draw the same pixels, only without a Python call
per vertex (a vehicle has ~60 of them).
"""

from __future__ import annotations

import math
from functools import cached_property

import cv2
import numpy as np

from synthscape.domains.driving.scene import Canvas

SHIFT, ONE = 4, 16  # sub-pixel bits of cv2 vertex coordinates, and 1 << SHIFT


class Camera:
    """Pinhole camera ``height`` metres above the ground; pixel (col, row) centres at +0.5."""

    def __init__(self, h: int, w: int, horizon: float, focal: float, height: float):
        self.h, self.w, self.hz, self.f, self.height = int(h), int(w), float(horizon), float(focal), float(height)
        self.cx = self.w / 2

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """Pixel (u, v) = (column, row) of the world point (x, y, z) metres; z is clamped to 5 cm
        so that points beside or behind the camera land far outside the image, not across it."""
        z = max(z, 0.05)
        return self.cx + self.f * x / z, self.hz + self.f * (self.height - y) / z

    def project_many(self, points: np.ndarray) -> np.ndarray:
        """``project`` of float64 points [..., 3] -> [..., 2] (bit for bit the same values)."""
        z = np.maximum(points[..., 2], 0.05)
        uv = np.empty(points.shape[:-1] + (2,))
        uv[..., 0] = self.cx + self.f * points[..., 0] / z
        uv[..., 1] = self.hz + self.f * (self.height - points[..., 1]) / z
        return uv

    def ground_row(self, z: float) -> float:
        """Image row (fractional) of the ground ``z`` metres ahead."""
        return self.hz + self.f * self.height / max(z, 0.05)

    def distance(self, x: float, z: float, y: float = 0.0) -> float:
        """Metres from the camera to the world point (x, y, z) (by default on the ground)."""
        return math.sqrt(x * x + z * z + (y - self.height) ** 2)

    @cached_property
    def cols(self) -> np.ndarray:
        """float32 [w]: each column's ray slope x / z."""
        return (np.arange(self.w, dtype=np.float32) + 0.5 - np.float32(self.cx)) / np.float32(self.f)

    @cached_property
    def rows(self) -> np.ndarray:
        """float32 [h]: each row's ray slope (height - y) / z (positive below the horizon)."""
        return (np.arange(self.h, dtype=np.float32) + 0.5 - np.float32(self.hz)) / np.float32(self.f)

    @cached_property
    def ray(self) -> np.ndarray:
        """float32 [h, w]: length of each pixel's ray per metre forward, sqrt(1 + a^2 + b^2); the
        ground and every building read their depth off it (distance = z * ray), so it is worked
        out once per camera rather than once per bounding box."""
        a, b = self.cols, self.rows
        return np.sqrt((1 + a * a)[None, :] + (b * b)[:, None])


class Sprite:
    """Parts drawn into a bbox-local index map (0 = empty) with a palette; one paint at the end."""

    def __init__(self, cam: Camera, x0: float, y0: float, x1: float, y1: float):
        self.c0, self.r0 = max(int(math.floor(x0)) - 1, 0), max(int(math.floor(y0)) - 1, 0)
        self.c1, self.r1 = min(int(math.ceil(x1)) + 1, cam.w), min(int(math.ceil(y1)) + 1, cam.h)
        self.ok = self.c1 > self.c0 and self.r1 > self.r0 and x1 - x0 < 40 * cam.w
        self.idx = np.zeros((self.r1 - self.r0, self.c1 - self.c0) if self.ok else (1, 1), np.uint8)
        self.pal = [(0, 0, 0)]
        self.ox, self.oy = self.c0 + 0.5, self.r0 + 0.5

    def _c(self, colour) -> int:
        self.pal.append(colour)
        return len(self.pal) - 1

    def _p(self, x: float, y: float) -> tuple[int, int]:
        return int(round((x - self.ox) * ONE)), int(round((y - self.oy) * ONE))

    def fixed(self, uv: np.ndarray) -> np.ndarray:
        """int32 [..., 2] cv2 sub-pixel vertices of pixel coordinates [..., 2] (``_p`` of arrays)."""
        return np.rint((uv - (self.ox, self.oy)) * ONE).astype(np.int32)

    def fill(self, fixed: np.ndarray, colour) -> None:
        """Fill a polygon of ``fixed`` vertices (int32 [k, 2])."""
        cv2.fillPoly(self.idx, [fixed], self._c(colour), cv2.LINE_8, SHIFT)

    def poly(self, pts, colour) -> None:
        """Fill the polygon of pixel points ``pts`` [(u, v), ...] (sub-pixel vertices)."""
        self.fill(np.array([self._p(x, y) for x, y in pts], np.int32), colour)

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour) -> None:
        """Fill the pixel rectangle from (x0, y0) to (x1, y1), as a polygon."""
        self.poly(((x0, y0), (x1, y0), (x1, y1), (x0, y1)), colour)

    def line(self, a, b, width: float, colour) -> None:
        """A line from pixel ``a`` to pixel ``b``, ``width`` pixels thick (at least 1)."""
        cv2.line(self.idx, self._p(*a), self._p(*b), self._c(colour), max(int(round(width)), 1), cv2.LINE_8, SHIFT)

    def ellipse(self, centre, axes, colour, thickness: int = -1, angle: float = 0.0) -> None:
        """An ellipse at pixel ``centre``, half ``axes`` in pixels, turned ``angle`` degrees;
        filled, or an outline ``thickness`` pixels thick."""
        ax = (max(int(round(axes[0] * ONE)), 0), max(int(round(axes[1] * ONE)), 0))
        cv2.ellipse(self.idx, self._p(*centre), ax, angle, 0, 360, self._c(colour), thickness, cv2.LINE_8, SHIFT)

    def stamp(self, canvas: Canvas, semantic: str, depth: float) -> bool:
        """Paint the parts onto ``canvas`` as ``semantic`` at ``depth`` metres, in one call;
        returns whether anything was painted."""
        if not self.ok:
            return False
        mask = self.idx > 0
        if not mask.any():
            return False
        pal = np.clip(np.array(self.pal, np.float32), 0, 255).astype(np.uint8)
        canvas.paint(mask, (self.r0, self.c0), pal.take(self.idx, axis=0), semantic, depth)  # (take: 4x pal[idx])
        return True


def shade(colour, k: float):
    """``colour`` (RGB) times ``k``, clipped to 0-255 (floats: the palette rounds them)."""
    r, g, b = colour
    return min(max(r * k, 0), 255), min(max(g * k, 0), 255), min(max(b * k, 0), 255)


class Box3:
    """An upright box in world space: centre (x, z) of its footprint, yaw (0 = facing +z)."""

    def __init__(self, x: float, z: float, yaw: float, hx: float, y0: float, y1: float, z0: float, z1: float):
        self.x, self.z, self.c, self.s = x, z, math.cos(yaw), math.sin(yaw)
        self.hx, self.y0, self.y1, self.z0, self.z1 = hx, y0, y1, z0, z1

    def world(self, lx: float, y: float, lz: float) -> tuple[float, float, float]:
        """World point of the box-local point (lx across, y up, lz along its yaw), metres."""
        return self.x + lx * self.c + lz * self.s, y, self.z - lx * self.s + lz * self.c

    def faces(self, cam: Camera) -> dict[str, tuple]:
        """Visible faces: name -> (origin, edge1, edge2) in world space. The four walls are the
        edges of the footprint a -> b -> c -> d (local (-hx, z0), (hx, z0), (hx, z1), (-hx, z1)),
        each visible when its outward normal points at the camera."""
        hx, y0, y1 = self.hx, self.y0, self.y1
        a, b, c, d = (self.world(lx, y0, lz) for lx, lz in ((-hx, self.z0), (hx, self.z0), (hx, self.z1),
                                                            (-hx, self.z1)))
        up = (0.0, y1 - y0, 0.0)
        walls = (("back", a, b, -self.s, -self.c), ("front", c, d, self.s, self.c), ("left", d, a, -self.c, self.s),
                 ("right", b, c, self.c, -self.s))
        out = {}
        for name, o, p, nx, nz in walls:
            if -(nx * ((o[0] + p[0]) / 2) + nz * ((o[2] + p[2]) / 2)) > 1e-6:
                out[name] = (o, (p[0] - o[0], 0.0, p[2] - o[2]), up)
        if y1 < cam.height:
            out["top"] = ((a[0], y1, a[2]), (b[0] - a[0], 0.0, b[2] - a[2]), (d[0] - a[0], 0.0, d[2] - a[2]))
        return out

    def corners(self):
        """World points of the eight corners, ordered by lx, then y, then lz (``box_corners`` relies on it)."""
        return [self.world(lx, y, lz) for lx in (-self.hx, self.hx) for y in (self.y0, self.y1)
                for lz in (self.z0, self.z1)]


_SIGN = np.array([-1, -1, -1, -1, 1, 1, 1, 1.0])  # corner order of Box3.corners: lx, then y, then lz
_TOP = np.array([0, 0, 1, 1, 0, 0, 1, 1], bool)
_FAR = np.array([0, 1, 0, 1, 0, 1, 0, 1], bool)


def box_corners(boxes: list[Box3]) -> np.ndarray:
    """World points [8 * len(boxes), 3] of the boxes' corners (``Box3.corners`` of them all)."""
    p = np.array([(b.x, b.z, b.c, b.s, b.hx, b.y0, b.y1, b.z0, b.z1) for b in boxes], np.float64)
    x, z, c, s = p[:, 0:1], p[:, 1:2], p[:, 2:3], p[:, 3:4]
    lx, lz = p[:, 4:5] * _SIGN, np.where(_FAR, p[:, 8:9], p[:, 7:8])
    out = np.empty((len(boxes), 8, 3))
    out[..., 0] = x + lx * c + lz * s
    out[..., 1] = np.where(_TOP, p[:, 6:7], p[:, 5:6])
    out[..., 2] = z - lx * s + lz * c
    return out.reshape(-1, 3)


def quad(cam: Camera, face, s0=0.0, s1=1.0, t0=0.0, t1=1.0):
    """Pixel corners of the part of ``face`` (origin, edge 1, edge 2) from s0 to s1 along edge 1
    and t0 to t1 along edge 2 (fractions): a window, a lamp or a plate on a box face."""
    (ox, oy, oz), (ax, ay, az), (bx, by, bz) = face
    return [cam.project(ox + s * ax + t * bx, oy + s * ay + t * by, oz + s * az + t * bz)
            for s, t in ((s0, t0), (s1, t0), (s1, t1), (s0, t1))]


class WorldPolys:
    """World-space polygons queued in paint order (quads on box faces, or free point lists),
    then projected and filled in one numpy pass by ``fill``."""

    def __init__(self):
        self.faces: list = []  # ((ox, oy, oz), (ax, ay, az), (bx, by, bz)) per quad
        self.st: list = []  # (s0, s1, t0, t1) per quad
        self.free: list = []  # world points [k, 3] per free polygon
        self.order: list = []  # (is_quad, index, colour) in paint order

    def quad(self, face, colour, s0: float = 0.0, s1: float = 1.0, t0: float = 0.0, t1: float = 1.0) -> int:
        """Queue ``quad(cam, face, s0, s1, t0, t1)``; returns its index into ``fill``'s result."""
        self.faces.append(face)
        self.st.append((s0, s1, t0, t1))
        self.order.append((True, len(self.st) - 1, colour))
        return len(self.st) - 1

    def points(self, points: np.ndarray, colour) -> None:
        """Queue a polygon of world points [k, 3]."""
        self.free.append(points)
        self.order.append((False, len(self.free) - 1, colour))

    def fill(self, cam: Camera, sp: Sprite) -> np.ndarray:
        """Project everything, fill it into ``sp`` in order; the quads' pixel corners [n, 4, 2]."""
        n = len(self.st)
        f = np.array(self.faces, np.float64).reshape(n, 1, 3, 3)  # origin, edge 1, edge 2
        st = np.array(self.st, np.float64).reshape(n, 4)
        s, t = st[:, _S, None], st[:, _T, None]
        points = f[:, :, 0] + s * f[:, :, 1] + t * f[:, :, 2]  # [n, 4, 3], quad's arithmetic
        if self.free:
            points = np.concatenate([points.reshape(-1, 3)] + self.free)
        uv = cam.project_many(points).reshape(-1, 2)
        fixed = sp.fixed(uv)
        start = 4 * n
        free = []
        for p in self.free:
            free.append(fixed[start:start + len(p)])
            start += len(p)
        for is_quad, i, colour in self.order:
            sp.fill(fixed[4 * i:4 * i + 4] if is_quad else free[i], colour)
        return uv[:4 * n].reshape(n, 4, 2)


_S, _T = [0, 1, 1, 0], [2, 2, 3, 3]  # (s, t) of a quad's corners: (s0, t0), (s1, t0), (s1, t1), (s0, t1)
