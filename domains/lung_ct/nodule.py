"""Lung nodules for the chest phantom: lobulated spheres, optional spicules, three densities.

Solid nodules are soft tissue; ground-glass ones a haze (about -600 to -450 HU) that replaces the
parenchyma and the vessels it engulfs; part-solid ones a ground-glass halo around a solid core
40-60 % as wide. numpy only.
"""

from __future__ import annotations

import numpy as np

from synthscape.domains.lung_ct.anatomy import Grid, fibonacci_sphere, occupancy, paint_tubes


def paint_nodule(hu, grid: Grid, centre, radius, kind, margin, rng) -> np.ndarray:
    """Blend the nodule into ``hu``; return its mask (occupancy >= 0.5, the centre voxel always)."""
    h = grid.h
    c = grid.to_mm(centre) + (rng.uniform(-0.3, 0.3, 3) * np.asarray(grid.spacing) if radius > 2 * h else 0.0)
    r = max(radius, 0.7 * h)
    # lobulation: a traceless quadrupole and an octupole, zero mean over the sphere (volume kept)
    a = rng.normal(size=(3, 3))
    quad = (a + a.T) / 2
    quad -= np.eye(3) * np.trace(quad) / 3
    quad /= np.linalg.norm(quad)
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    lobe2, lobe3 = rng.uniform(0.05, 0.12), rng.uniform(0.0, 0.06)
    spikes = []
    if margin == "spiculated":
        for u in fibonacci_sphere(64)[rng.choice(64, rng.integers(8, 17), replace=False)]:
            u = u + rng.normal(scale=0.15, size=3)
            u /= np.linalg.norm(u)
            spikes.append((c + u * 0.6 * r, c + u * r * (1 + rng.uniform(0.5, 1.1)), max(0.2 * r, 0.6), 0.3))
    reach = r * 2.2 + 2 * h
    box = grid.box(c - reach, c + reach)
    x, y, z = grid.sub(box)
    d = [np.float32(v) for v in (x - c[0], y - c[1], z - c[2])]
    dist = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2) + 1e-6
    n = [di / dist for di in d]
    n2 = sum(quad[i, j] * n[i] * n[j] for i in range(3) for j in range(3))
    m = [sum(rot[i, j] * n[j] for j in range(3)) for i in range(3)]
    shape = 1.0 + lobe2 * n2 + 5.2 * lobe3 * m[0] * m[1] * m[2]
    occ = occupancy(dist - r * shape, h)
    if spikes:
        full = np.zeros(grid.shape, dtype=np.float32)
        paint_tubes(full, grid, spikes)
        occ = np.maximum(occ, full[box])
    local = hu[box]
    texture = rng.standard_normal(local.shape).astype(np.float32)
    solid = np.float32(rng.uniform(30, 60)) + 8.0 * texture
    if kind == "solid":
        local += occ * (solid - local)
    else:
        ggo = np.float32(rng.uniform(-620, -450)) + 35.0 * texture
        local += occ * (ggo - local)  # hazy: replaces the parenchyma and the vessels it engulfs
        if kind == "part_solid":
            core = occupancy(dist - r * rng.uniform(0.4, 0.6) * (1.0 + lobe2 * n2), h)  # 40-60 % wide
            local += core * (solid - local)
    mask = np.zeros(grid.shape, dtype=bool)
    mask[box] = occ >= 0.5
    mask[tuple(int(i) for i in centre)] = True
    return mask
