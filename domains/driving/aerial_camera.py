"""The drone camera of the aerial renderer and the drawing primitives its sprites are made of.

World frame: metres, x east (image right), y forward (away from the drone's feet in an oblique
view), z up; the drone hangs at (0, 0, altitude). Pixel (u, v) = (column, row), centres at integers.
A sprite is a ``Patch``: a bbox-local mask and picture painted in one go. Shadows are collected in one
image-sized uint8 mask (1: a low object's shadow, darkens the ground only; 2: a tall one's,
darkens anything low) and applied to the picture at the end.
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
        """Metres from the drone to the world point ``p`` (x, y, z)."""
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
        """Fill the pixel polygons ``polys`` (each [k, 2+], rounded) in ``colour``; ``part`` (a
        mask like ``mask``), when given, is cleared and set to just these polygons."""
        pts = self._pts(polys)
        cv2.fillPoly(self.mask, pts, 1)
        cv2.fillPoly(self.rgb, pts, tuple(int(c) for c in colour))
        if part is not None:
            part[:] = 0
            cv2.fillPoly(part, pts, 1)

    def circle(self, uv, radius: float, colour) -> None:
        """Fill a disc of ``radius`` pixels around pixel ``uv`` (both rounded)."""
        c = (int(round(uv[0] - self.c0)), int(round(uv[1] - self.r0)))
        r = max(int(round(radius)), 0)
        cv2.circle(self.mask, c, r, 1, -1)
        cv2.circle(self.rgb, c, r, tuple(int(v) for v in colour), -1)

    def ellipse(self, uv, axes, angle: float, colour) -> None:
        """Fill an ellipse around pixel ``uv``: half axes in pixels, turned by ``angle`` degrees."""
        c = (int(round(uv[0] - self.c0)), int(round(uv[1] - self.r0)))
        ax = (max(int(round(axes[0])), 0), max(int(round(axes[1])), 0))
        cv2.ellipse(self.mask, c, ax, angle, 0, 360, 1, -1)
        cv2.ellipse(self.rgb, c, ax, angle, 0, 360, tuple(int(v) for v in colour), -1)

    def line(self, a, b, colour) -> None:
        """A one-pixel line from pixel ``a`` to pixel ``b``."""
        p, q = (tuple(int(round(v)) for v in (x[0] - self.c0, x[1] - self.r0)) for x in (a, b))
        cv2.line(self.mask, p, q, 1, 1)
        cv2.line(self.rgb, p, q, tuple(int(v) for v in colour), 1)

    def paint(self, canvas: Canvas, semantic: str, depth) -> None:
        """Paint what was drawn onto ``canvas`` as ``semantic`` at ``depth`` metres (scalar or per pixel)."""
        if self.ok:
            canvas.paint(self.mask, (self.r0, self.c0), self.rgb, semantic, depth)


def box3(cx: float, cy: float, heading: float, fl: tuple[float, float], fw: tuple[float, float], z: float) -> np.ndarray:
    """Corners [4, 3] of the rectangle fl (along ``heading``) x fw (to its left) at height z."""
    c, s = math.cos(heading), math.sin(heading)
    return np.array([[cx + c * a - s * b, cy + s * a + c * b, z]
                     for a, b in ((fl[1], fw[0]), (fl[1], fw[1]), (fl[0], fw[1]), (fl[0], fw[0]))])


def hull(uv: np.ndarray) -> np.ndarray:
    """Convex hull [k, 2] of pixel points [n, 2] (rounded; the points themselves if OpenCV finds none)."""
    hull = cv2.convexHull(np.rint(np.clip(uv, -1e6, 1e6)).astype(np.float32).reshape(-1, 1, 2))
    return uv if hull is None else hull.reshape(-1, 2)


def shadow_poly(view: View, shadows: np.ndarray, base: np.ndarray, height: float, sun: np.ndarray, value: int) -> None:
    """Cast the prism over ``base`` [n, 3] (ground corners) ``height`` high along ``sun`` (metres per metre)."""
    top = base.copy()
    top[:, :2] += sun * height
    uv, _ = view.project(np.concatenate([base, top]))
    cv2.fillPoly(shadows, [np.rint(hull(uv)).astype(np.int32)], value)
