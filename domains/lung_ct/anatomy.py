"""Shape helpers for the chest phantom: coordinate grids, tube rasterising, branching trees, blur.

Everything works in millimetres in the patient frame (RAS+: +x towards the patient's Right,
+y Anterior, +z Superior) on open (broadcastable) float32 grids. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Segment = tuple[np.ndarray, np.ndarray, float, float]  # start, end (mm), start radius, end radius


@dataclass
class Grid:
    """Voxel centres of a volume in patient millimetres; ``x``, ``y``, ``z`` broadcast to [X, Y, Z]."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    centre: tuple[float, float, float]  # patient mm at the volume's centre

    def __post_init__(self):
        self.origin = np.array([c - (n - 1) / 2 * s for c, n, s in zip(self.centre, self.size, self.spacing)])
        axes = [(o + s * np.arange(n)).astype(np.float32) for o, s, n in zip(self.origin, self.spacing, self.size)]
        self.x, self.y, self.z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
        self.h = float(np.mean(self.spacing))  # partial-volume edge width

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxels per axis, as a numpy shape."""
        return tuple(self.size)

    def box(self, lo, hi):
        """Index slices of the voxels whose centres lie in the mm box [lo, hi] (None if empty)."""
        slices = []
        for o, s, n, a, b in zip(self.origin, self.spacing, self.size, lo, hi):
            i0, i1 = max(int(np.floor((a - o) / s)), 0), min(int(np.ceil((b - o) / s)) + 1, n)
            if i1 <= i0:
                return None
            slices.append(slice(i0, i1))
        return tuple(slices)

    def sub(self, box):
        """The open ``x``, ``y``, ``z`` grids cut to ``box`` (index slices, as ``box`` returns them)."""
        return self.x[box[0]], self.y[:, box[1]], self.z[:, :, box[2]]

    def to_index(self, points: np.ndarray) -> np.ndarray:
        """Nearest voxel indices (int [..., 3], possibly outside the volume) of points in patient mm."""
        return np.rint((np.asarray(points) - self.origin) / np.asarray(self.spacing)).astype(int)

    def to_mm(self, index) -> np.ndarray:
        """Patient mm of the voxel centres at indices [..., 3]."""
        return self.origin + np.asarray(index, dtype=float) * np.asarray(self.spacing)


def occupancy(signed_mm, h: float):
    """Fraction of a voxel inside a surface from the signed distance (negative inside)."""
    return np.clip(0.5 - signed_mm / h, 0.0, 1.0)


def paint_tubes(occ: np.ndarray, grid: Grid, segments: list[Segment], grow: float = 0.0) -> None:
    """Rasterise tapered capsules into ``occ`` (maximum of partial-volume occupancies).

    A voxel's occupancy is the overlap of a voxel-wide box with the tube's cross-section, so a
    vessel thinner than a voxel shows faintly (about (2r/h)^2) instead of as a full voxel.

    Distances are computed only inside each segment's bounding box; ``grow`` adds to every
    radius (a wall around a lumen).
    """
    h = grid.h
    for p0, p1, r0, r1 in segments:
        r0, r1 = r0 + grow, r1 + grow
        pad = max(r0, r1) + h
        box = grid.box(np.minimum(p0, p1) - pad, np.maximum(p0, p1) + pad)
        if box is None:
            continue
        x, y, z = grid.sub(box)
        d = (p1 - p0).astype(np.float32)
        length2 = float(d @ d) or 1e-6
        dx, dy, dz = x - np.float32(p0[0]), y - np.float32(p0[1]), z - np.float32(p0[2])
        t = np.clip((dx * d[0] + dy * d[1] + dz * d[2]) / length2, 0.0, 1.0)
        dist = np.sqrt((dx - t * d[0]) ** 2 + (dy - t * d[1]) ** 2 + (dz - t * d[2]) ** 2)
        r = r0 + (r1 - r0) * t
        # box-filtered cross-section: a tube thinner than a voxel fills it only partly
        across = np.clip(np.minimum(r, dist + h / 2) - np.maximum(-r, dist - h / 2), 0.0, None) / h
        part = np.minimum(across * np.minimum(2 * r / h, 1.0), 1.0)
        np.maximum(occ[box], part, out=occ[box])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-9)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of rows ``v`` about unit rows ``axis`` by ``angle`` (radians, per row)."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + np.cross(axis, v) * s + axis * np.sum(axis * v, axis=1, keepdims=True) * (1 - c)


def branch_tree(root, targets, radius: float, inside: Callable[[np.ndarray], np.ndarray],
                rng: np.random.Generator, min_radius: float, max_generations: int = 6,
                reach: float = 0.35) -> list[Segment]:
    """A bifurcating tube tree from ``root``: one trunk towards each target, children shorter and thinner.

    Grown a generation at a time (vectorised). A trunk runs ``reach`` of the way to its target;
    at each fork a major child carries on within ~15 degrees and a thinner minor child leaves at
    30-50 degrees, both leaning away from the root. A segment whose end leaves the organ
    (``inside`` False there) is shortened, and dropped if it still leaves.
    """
    root = np.asarray(root, float)
    offsets = np.asarray(targets, float) - root
    n = len(offsets)
    start = np.repeat(root[None], n, axis=0)
    direction = _unit(offsets + rng.normal(scale=5.0, size=(n, 3)))
    length = reach * np.linalg.norm(offsets, axis=1) * rng.uniform(0.85, 1.15, n)
    radii = np.full(n, float(radius))
    segments: list[Segment] = []
    for gen in range(max_generations):
        end = start + direction * length[:, None]
        ok = inside(end)
        for _ in range(2):
            bad = np.flatnonzero(~ok)
            if bad.size == 0:
                break
            length[bad] *= 0.5
            end[bad] = start[bad] + direction[bad] * length[bad, None]
            ok[bad] = inside(end[bad])
        keep = ok | (gen == 0)
        start, end, direction, length, radii = start[keep], end[keep], direction[keep], length[keep], radii[keep]
        r_end = radii * 0.92
        segments += [(a, b, float(r0), float(r1)) for a, b, r0, r1 in zip(start, end, radii, r_end)]
        more = r_end * 0.8 >= min_radius
        if gen + 1 >= max_generations or not more.any():
            break
        end, direction, length, r_end = end[more], direction[more], length[more], r_end[more]
        n = len(end)
        axis = _unit(np.cross(direction, rng.normal(size=(n, 3))))
        outward = _unit(end - root)
        # a major child carries on nearly straight, a minor one leaves at a wider angle
        major = _rotate(direction, axis, rng.uniform(0.1, 0.3, n)) + 0.3 * outward
        minor = _rotate(direction, axis, -rng.uniform(0.5, 0.9, n)) + 0.2 * outward
        start = np.concatenate([end, end])
        direction = _unit(np.concatenate([major, minor]) + 0.08 * rng.normal(size=(2 * n, 3)))
        length = np.concatenate([length * rng.uniform(0.8, 0.95, n), length * rng.uniform(0.6, 0.8, n)])
        radii = np.concatenate([r_end * rng.uniform(0.82, 0.92, n), r_end * rng.uniform(0.6, 0.75, n)])
    return segments


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly even unit vectors, [n, 3]."""
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azimuth = np.pi * (1 + 5 ** 0.5) * k
    return np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)


def place_inside(grid: Grid, mask: np.ndarray, candidates: np.ndarray, clearance: float,
                 rng: np.random.Generator, tries: int = 60) -> np.ndarray:
    """A voxel of ``candidates`` whose sphere of ``clearance`` mm lies in ``mask`` and the volume.

    Probes 64 points on the sphere and its half-radius shell around random candidates; returns
    the first that passes, else the best tried (tiny volumes), else the volume's centre.
    """
    flat = np.flatnonzero(candidates)
    if flat.size == 0:
        return np.array(grid.shape) // 2
    probes = np.concatenate([fibonacci_sphere(48) * clearance, fibonacci_sphere(16) * clearance * 0.5])
    best, best_score = None, -1.0
    for _ in range(tries):
        index = np.array(np.unravel_index(flat[rng.integers(flat.size)], grid.shape))
        points = grid.to_index(grid.to_mm(index) + probes)
        ok = np.all((points >= 0) & (points < np.array(grid.shape)), axis=1)
        inside = np.zeros(len(points), dtype=bool)
        inside[ok] = mask[tuple(points[ok].T)]
        score = inside.mean()
        if score > best_score:
            best, best_score = index, score
        if score == 1.0:
            break
    return best


def smooth_noise(shape: tuple[int, int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise, about unit standard deviation: a coarse random lattice, trilinearly upsampled."""
    coarse = rng.standard_normal((cells + 1,) * 3).astype(np.float32)
    for axis, n in enumerate(shape):
        pos = np.linspace(0, cells, n, dtype=np.float32)
        i0 = np.minimum(pos.astype(int), cells - 1)
        w = (pos - i0).reshape([-1 if a == axis else 1 for a in range(3)])
        coarse = np.take(coarse, i0, axis=axis) * (1 - w) + np.take(coarse, i0 + 1, axis=axis) * w
    return coarse / np.float32(0.6)  # trilinear averaging shrinks the spread; roughly restore it


def gaussian_blur(volume: np.ndarray, sigma_voxels) -> np.ndarray:
    """Separable Gaussian filter with edge padding (sigma in voxels per axis)."""
    out = volume
    for axis, sigma in enumerate(np.broadcast_to(sigma_voxels, (3,))):
        if sigma <= 0 or volume.shape[axis] < 2:
            continue
        radius = max(1, int(np.ceil(2.5 * sigma)))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        taps = (taps / taps.sum()).astype(np.float32)
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for k, w in enumerate(taps):
            acc += w * _slab(padded, axis, k, n)
        out = acc
    return out


def _slab(array: np.ndarray, axis: int, start: int, n: int) -> np.ndarray:
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, start + n)
    return array[tuple(index)]
