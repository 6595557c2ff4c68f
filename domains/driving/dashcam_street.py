"""The street a dashcam scene is set in: its cross-section (lanes, markings, kerbs, sidewalks,
verges), the buildings along it and its colours, drawn once per scene by ``layout``.

Frame of ``dashcam_camera``: x in metres to the right of the camera (which drives at x = 0, in
lane ``ego``), z in metres forward along the street. Everything is uniform along z except the
buildings, the dashes of the lane lines and the zebra crossing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Mark(NamedTuple):
    """A painted line along the street (``dashcam._ground`` paints it)."""

    x: float  # metres: its centre line
    kind: str  # "solid", "dashed" or "double" (two solid lines, 2.2 line half-widths either side of x)
    yellow: bool  # yellow paint instead of white (only the line between the two directions)


class Block(NamedTuple):
    """A box building beside the street (``dashcam._building`` draws it)."""

    setback: float  # metres from the camera's x = 0 to the facade facing the road (positive on both sides)
    z0: float  # metres forward where the building starts (negative: it starts behind the camera)
    z1: float  # metres forward where it ends
    height: float  # metres


@dataclass
class Street:
    """One scene's street, in metres across (x) and along (z) it; see the module docstring."""

    lanes: int  # lanes across the road, counted from the left (2-4)
    oncoming: int  # lanes 0 .. oncoming - 1 carry oncoming traffic
    lane_w: float  # metres: width of a lane
    ego: int  # the lane the camera drives in (one of the lanes going its way)
    lane_left: float  # metres: x of lane 0's left edge
    road: tuple[float, float]  # metres: x of the road's left and right edges (lanes and parking strips)
    park: tuple[float, float]  # metres: width of the parking strip on the left / right (0.0: none)
    kerb: float  # metres: width of the kerb stones between road and sidewalk
    walk: tuple[float, float]  # metres: sidewalk width on the left / right
    grass: tuple[float, float]  # metres: verge width beyond the sidewalk on the left / right (0.0: none)
    marks: list[Mark]  # the lane lines: the two road edges, then the lines between lanes left to right
    mark_w: float  # metres: width of a painted line
    blocks: dict[int, list[Block]]  # side (-1 left, +1 right) -> its buildings, near to far (empty: open verge)
    road_rgb: np.ndarray  # float64 [3], RGB 0-255 (clipped when painted): asphalt
    walk_rgb: np.ndarray  # float64 [3]: sidewalk (the kerb stones are 1.12 times brighter)
    grass_rgb: np.ndarray  # float64 [3]: verge and terrain
    dash: tuple[float, float, float]  # metres along z: dash length, dash period, phase of the dashed lines
    zebra: tuple[float, float] | None  # metres along z: start and length of the zebra crossing; None: none
    edges: tuple[float, float]  # metres: x of the outer edges of the verges on the left / right

    def lane_x(self, lane: int) -> float:
        """Metres: x of the centre of ``lane`` (0 = leftmost)."""
        return self.lane_left + (lane + 0.5) * self.lane_w


def layout(rng: np.random.Generator, scenario: str, zebra_far: float) -> Street:
    """A random street for ``scenario`` (it has a zebra crossing, starting 4.5 to ``zebra_far``
    metres ahead, only for "pedestrian_crossing")."""
    lanes = int(rng.integers(2, 5))
    oncoming = int(rng.integers(1, lanes)) if lanes > 2 else 1
    lane_w = rng.uniform(3.0, 3.7)
    ego = int(rng.integers(oncoming, lanes))
    park = tuple(rng.uniform(2.0, 2.5) if rng.random() < 0.5 else 0.0 for _ in range(2))
    lane_left = -(ego - oncoming + 0.5) * lane_w - rng.uniform(-0.3, 0.3) - oncoming * lane_w  # x of lane 0's left
    road = (lane_left - park[0], lane_left + lanes * lane_w + park[1])
    kerb, walk = rng.uniform(0.15, 0.3), (rng.uniform(1.8, 4.5), rng.uniform(1.8, 4.5))
    grass = (rng.uniform(0, 3.0) if rng.random() < 0.5 else 0.0, rng.uniform(0, 3.0) if rng.random() < 0.5 else 0.0)
    mark_w = rng.uniform(0.1, 0.16)
    yellow = rng.random() < 0.25
    marks = [Mark(lane_left, "solid", False), Mark(lane_left + lanes * lane_w, "solid", False)]
    for k in range(1, lanes):
        kind = "double" if k == oncoming and lanes > 3 else "solid" if k == oncoming else "dashed"
        marks.append(Mark(lane_left + k * lane_w, kind, yellow and k == oncoming))
    edges = (road[0] - kerb - walk[0] - grass[0], road[1] + kerb + walk[1] + grass[1])
    blocks = {side: _blocks(rng, edge) for side, edge in ((-1, edges[0]), (1, edges[1]))}
    road_rgb = rng.uniform(75, 115) * np.array([1, 1, 1.04]) + rng.uniform(-6, 6, 3)
    walk_rgb = rng.uniform(140, 190) * np.array([1, 0.97, 0.92]) + rng.uniform(-8, 8, 3)
    grass_rgb = np.array([rng.uniform(60, 110), rng.uniform(110, 150), rng.uniform(40, 70)])
    dash = (rng.uniform(2, 4), rng.uniform(6, 12), rng.uniform(0, 12))
    zebra = (rng.uniform(4.5, zebra_far), rng.uniform(3, 4.5)) if scenario == "pedestrian_crossing" else None
    return Street(lanes=lanes, oncoming=oncoming, lane_w=lane_w, ego=ego, lane_left=lane_left, road=road, park=park,
                  kerb=kerb, walk=walk, grass=grass, marks=marks, mark_w=mark_w, blocks=blocks, road_rgb=road_rgb,
                  walk_rgb=walk_rgb, grass_rgb=grass_rgb, dash=dash, zebra=zebra, edges=edges)


def _blocks(rng: np.random.Generator, edge: float) -> list[Block]:
    """The buildings along one side whose verge ends at x = ``edge``: usually a row of them from
    behind the camera to 60-160 m ahead, with a few gaps; 15 % of sides are open (none)."""
    blocks = []
    if rng.random() < 0.85:  # built-up (else an open verge with trees)
        z, end = rng.uniform(-20, 2), rng.uniform(60, 160)
        while z < end:
            length = rng.uniform(8, 30) * (1 + max(z, 0) / 50)
            blocks.append(Block(abs(edge) + rng.uniform(0.0, 2.5), z, z + length, rng.uniform(6, 28)))
            z += length + (rng.uniform(2, 8) if rng.random() < 0.25 else 0.0)
    return blocks
