"""The roads of an aerial scene: one road, a crossing or a T junction at random angles, laid out
around the point the drone looks at, each clipped to what the drone can see.

Ground frame of ``aerial_camera``: metres, x east, y forward, the drone above (0, 0). A road is a
centre line p + s d; positions across it are offsets along its left normal n, in metres.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from synthscape.domains.driving.aerial_camera import FAR, View


class Road:
    """A straight road: centre p + s d for s0 <= s <= s1, ``lanes`` each way, sidewalks ``walk`` wide."""

    def __init__(self, p, d, s0: float, s1: float, lanes: int, lane_w: float, walk: float, yellow: bool):
        self.p, self.d = np.asarray(p, float), np.asarray(d, float)  # metres: a centre point; unit direction
        self.n = np.array([-self.d[1], self.d[0]])  # unit normal, left of d
        self.s0, self.s1 = s0, s1  # metres along d: its ends (lay_out_roads clips them to what the drone sees)
        self.lanes = lanes  # lanes in each direction
        self.lane_w = lane_w  # metres: width of a lane
        self.walk = walk  # metres: width of the sidewalk on each side
        self.yellow = yellow  # a yellow double centre line (else a white dashed one)
        self.half = lanes * lane_w  # metres: centre line to the kerb
        self.vis = (s0, s1)  # metres along d: the part inside (or near) the image
        self.skip: list[tuple[float, float]] = []  # s intervals without lane markings (junctions, zebra)

    def at(self, s, off=0.0) -> np.ndarray:
        """Ground points [..., 2] at ``s`` metres along the road and ``off`` metres left of its centre."""
        s, off = np.asarray(s, float), np.asarray(off, float)
        return self.p + s[..., None] * self.d + off[..., None] * self.n

    def rect(self, sa, sb, oa, ob, z=0.0) -> np.ndarray:
        """World corners [..., 4, 3] of the rectangle from ``sa`` to ``sb`` along, ``oa`` to ``ob``
        across the road, at height ``z`` metres."""
        pts = np.stack([self.at(sa, oa), self.at(sb, oa), self.at(sb, ob), self.at(sa, ob)], -2)
        return np.concatenate([pts, np.full(pts.shape[:-1] + (1,), z)], -1)

    def distance(self, pts) -> np.ndarray:
        """Metres from ground points [..., 2] to the road's centre line (between its ends)."""
        rel = np.asarray(pts, float) - self.p
        s = np.clip(rel @ self.d, self.s0, self.s1)
        diff = rel - s[..., None] * self.d
        return np.hypot(diff[..., 0], diff[..., 1])

    def spans(self, lo: float, hi: float) -> list[tuple[float, float]]:
        """The pieces of [lo, hi] (metres along the road) outside the ``skip`` intervals."""
        out = [(lo, hi)]
        for a, b in self.skip:
            out = [piece for x, y in out for piece in ((x, min(y, a)), (max(x, b), y)) if piece[1] > piece[0]]
        return out


class Junction(NamedTuple):
    """Where a road meets another: traffic keeps ``reach`` metres clear either side of it."""

    road: int  # index of the road in the list
    s: float  # metres along that road
    reach: float  # metres along that road


def lay_out_roads(view: View, rng, focus, span: float) -> tuple[list[Road], float, list[Junction]]:
    """One road, a crossing or a T junction at random angles around ``focus`` (ground point the
    image centres on; ``span``: metres across the image there); returns the roads, the scenario
    site (metres along the first road) and the junctions."""
    def make(p, angle, s0, s1):
        lanes = int(rng.choice([1, 1, 2]))
        return Road(p, (math.cos(angle), math.sin(angle)), s0, s1, lanes, rng.uniform(3.1, 3.7),
                    rng.uniform(2.0, 4.0), bool(rng.random() < 0.5))

    a1 = rng.uniform(0, math.pi)
    n1 = np.array([-math.sin(a1), math.cos(a1)])
    far = 1.2 * FAR
    r1 = make(np.asarray(focus) + n1 * rng.uniform(-0.1, 0.1) * span, a1, -far, far)
    site = float(rng.uniform(-0.1, 0.1) * span)
    roads, junctions = [r1], []
    layout = rng.choice(["single", "cross", "tee"], p=[0.25, 0.4, 0.35])
    if layout != "single":
        a2 = a1 + rng.choice([-1, 1]) * rng.uniform(math.radians(60), math.radians(120))
        sin = abs(math.sin(a2 - a1))
        lanes2 = int(rng.choice([1, 2]))
        clear = (lanes2 * 3.7 + 4.0) / sin + 8.0
        sj = site + rng.choice([-1, 1]) * (clear + rng.uniform(0, 0.3) * span)
        r2 = make(r1.at(sj), a2, 0.0 if layout == "tee" else -far, far)
        r2.lanes = lanes2
        r2.half = lanes2 * r2.lane_w
        roads.append(r2)
        junctions.append(Junction(0, sj, (r2.half + r2.walk) / sin + 0.5))
        junctions.append(Junction(1, 0.0, (r1.half + r1.walk) / sin + 0.5))
        r1.skip.append((sj - r2.half / sin - 0.5, sj + r2.half / sin + 0.5))
        r2.skip.append((-r1.half / sin - 0.5, r1.half / sin + 0.5))
    for road in roads:
        _visible(view, road)
    return roads, site, junctions


def _visible(view: View, road: Road) -> None:
    """Clip the road to what the camera can project (in front, nearer than FAR) and find its in-image span."""
    s = np.linspace(road.s0, road.s1, 257)
    uv, z = view.project(np.concatenate([road.at(s), np.zeros((len(s), 1))], -1))
    ok = (z > 20) & (np.hypot(*road.at(s).T) < FAR * 0.95)
    if not ok.any():
        road.s0 = road.s1 = 0.0
        road.vis = (0.0, 0.0)
        return
    road.s0, road.s1 = float(s[ok].min()), float(s[ok].max())
    inside = ok & (uv[:, 0] > -0.5 * view.w) & (uv[:, 0] < 1.5 * view.w) & (uv[:, 1] > -0.5 * view.h) \
        & (uv[:, 1] < 1.5 * view.h)
    road.vis = (float(s[inside].min()), float(s[inside].max())) if inside.any() else (0.0, 0.0)
