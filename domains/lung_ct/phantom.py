"""A procedural chest CT phantom in Hounsfield units, with lung and nodule masks. numpy only.

Axis convention: voxel order is RAS+, as nibabel defines it ("Coordinate systems and affines":
the scanner axes run from the subject's left to Right, posterior to Anterior and inferior to
Superior, and ``nibabel.orientations.ornt2axcodes`` labels the ends of an axis as ``('L', 'R')``,
``('P', 'A')``, ``('I', 'S')`` with the second letter at the positive end). So with the affine
``diag(spacing)`` plus an origin:

- axis 0 (i) grows towards the patient's **Right** (the right lung, larger, is at high i; the
  heart and the descending aorta lean to low i, the patient's left);
- axis 1 (j) grows towards **Anterior** (sternum at high j, spine and table at low j);
- axis 2 (k) grows towards **Superior** (lung apices at high k, diaphragm and liver at low k).

A radiological axial view (patient's right on the screen's left, anterior up) is
``hu[::-1, ::-1, k].T``.

The anatomy is drawn in millimetres, so the spacing sets the field of view: ``default_spacing``
frames the whole thorax (about 340 mm in-plane, 300 mm craniocaudal); a smaller field of view
is a crop that slides towards one lung (the nodule's, when there is one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.domains.lung_ct.anatomy import (
    Grid, branch_tree, gaussian_blur, occupancy, paint_tubes, place_inside, smooth_noise,
)
from synthscape.domains.lung_ct.nodule import paint_nodule
from synthscape.domains.lung_ct.schema import SCHEMA, SIZE_MM

MARGINS = ("smooth", "spiculated")
FOV_MM = (340.0, 340.0, 300.0)


@dataclass
class Phantom:
    hu: np.ndarray  # int16 [X, Y, Z], Hounsfield units
    lung_mask: np.ndarray  # uint8 [X, Y, Z], 1 inside either lung (vessels and nodule included)
    nodule_mask: np.ndarray  # uint8 [X, Y, Z], 1 inside the nodule
    spacing: tuple[float, float, float]  # mm per voxel along X, Y, Z
    nodule: dict = field(default_factory=dict)  # {} or center_voxel, diameter_mm, kind, margin


def default_spacing(size) -> tuple[float, float, float]:
    """Spacing (mm) at which ``size`` voxels frame the whole thorax: 340 mm in-plane, 300 mm long."""
    size = tuple(int(s) for s in np.broadcast_to(np.asarray(size), (3,)))
    return tuple(float(f / n) for f, n in zip(FOV_MM, size))


def check_condition(condition: Mapping[str, str]) -> dict[str, str]:
    """A complete, consistent lung-ct condition, or SynthscapeError naming the bad value."""
    checked = SCHEMA.validate(condition)
    missing = [name for name in SCHEMA.names if name not in checked]
    if missing:
        raise SynthscapeError(f"lung-ct condition lacks {', '.join(missing)}; it needs {', '.join(SCHEMA.names)}")
    nodule, size, kind = checked["nodule"], checked["size"], checked["kind"]
    for name, value in (("size", size), ("kind", kind)):
        if (nodule == "absent") != (value == "none"):
            valid = [v for v in SCHEMA.values(name) if v != "none"]
            need = "none" if nodule == "absent" else f"one of {', '.join(valid)}"
            raise SynthscapeError(f"lung-ct condition nodule={nodule} needs {name}={need}, got {name}={value}")
    return checked


def chest_phantom(size, spacing, condition: Mapping[str, str], rng: np.random.Generator,
                  margin: str | None = None) -> Phantom:
    """Draw one patient: HU volume (int16), lung mask, nodule mask (uint8), nodule description."""
    condition = check_condition(condition)
    if margin is not None and margin not in MARGINS:
        raise SynthscapeError(f"nodule margin {margin!r} is not one of {', '.join(MARGINS)}")
    size = tuple(int(s) for s in np.broadcast_to(np.asarray(size), (3,)))
    spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, dtype=float), (3,)))
    if min(size) < 1 or min(spacing) <= 0:
        raise SynthscapeError(f"phantom size must be positive and spacing > 0, got size={size} spacing={spacing}")

    p = _draw_patient(rng)
    present = condition["nodule"] == "present"
    side = 1.0 if rng.random() < 0.55 else -1.0  # the nodule's lung (or the crop's): +1 right, -1 left
    if present:
        low, high = SIZE_MM[condition["size"]]
        diameter = float(rng.uniform(low, high))
        margin = margin or ("spiculated" if rng.random() < 0.3 else "smooth")
    grid = Grid(size, spacing, _fov_centre(p, size, spacing, side))

    hu, lung = _anatomy(p, grid, rng)
    nodule_mask = np.zeros(size, dtype=bool)
    nodule = {}
    if present:
        in_side = lung & (grid.x * side > 0)  # the nodule's lung, away from its edges and the volume's
        centre = place_inside(grid, lung, in_side if in_side.any() else lung, diameter / 2 + max(4.0, grid.h), rng)
        nodule_mask = paint_nodule(hu, grid, centre, diameter / 2, condition["kind"], margin, rng)
        lung |= nodule_mask
        nodule = {"center_voxel": [int(c) for c in centre], "diameter_mm": round(diameter, 3),
                  "kind": condition["kind"], "margin": margin}

    hu = gaussian_blur(hu, rng.uniform(0.6, 0.85))
    hu += rng.standard_normal(size, dtype=np.float32) * np.float32(rng.uniform(10.0, 20.0))
    hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return Phantom(hu, lung.astype(np.uint8), nodule_mask.astype(np.uint8), spacing, nodule)


# -- the patient ---------------------------------------------------------------------------------

def _draw_patient(rng: np.random.Generator) -> SimpleNamespace:
    p = SimpleNamespace()
    p.insp = rng.uniform()  # inspiration: 0 shallow .. 1 deep
    p.body_a, p.body_b = rng.uniform(135, 160), rng.uniform(105, 128)  # half width, half depth
    p.back_p = rng.uniform(2.6, 3.4)  # superellipse power of the (flatter) back
    p.fat, p.muscle = rng.uniform(5, 20), rng.uniform(9, 16)  # muscle: pectoral / paraspinal thickness
    p.wall = 8.0 - 4.0 * p.insp  # ribs and intercostal muscle; a deep breath widens the cavity
    p.paravert = rng.uniform(30, 40)  # how far the spine and its muscles push into the cavity
    p.a_c = p.body_a - p.fat - 0.35 * p.muscle - p.wall  # thoracic cavity half axes (mid level)
    p.b_c = p.body_b - p.fat - p.muscle - p.wall
    p.z_apex = rng.uniform(115, 130)
    p.z_dome = np.array([rng.uniform(-45, -30) - 25 * p.insp, 0.0])  # [right, left]
    p.z_dome[1] = p.z_dome[0] - rng.uniform(8, 20)
    p.dome_depth = rng.uniform(35, 50)
    p.z_carina = p.z_apex - rng.uniform(85, 100)
    p.lung_hu = -868.0 - 20.0 * p.insp + rng.uniform(-10, 10)
    # the spine and the airway in front of it
    p.vb = np.array([rng.uniform(17, 21), rng.uniform(14, 17)])  # vertebral body half axes
    p.y_vb = -(p.b_c - p.paravert) - 4.0
    p.y_canal = p.y_vb - p.vb[1] - 9.0
    p.disc_period, p.disc_phase = rng.uniform(24, 28), rng.uniform(0, 28)
    p.y_tr = p.y_vb + p.vb[1] + 24.0
    p.r_tr = rng.uniform(7, 9)
    # the heart: an ellipsoid resting on the left dome, long axis turned to the front left
    s = rng.uniform(0.9, 1.1)  # cardiothoracic ratio about 0.45
    p.h_axes = np.array([0.47 * p.a_c, 0.62 * p.b_c, 50.0]) * s
    p.h_centre = np.array([-rng.uniform(22, 36), 0.2 * p.b_c, p.z_dome[1] + 0.4 * p.h_axes[2]])
    p.h_angle = np.deg2rad(rng.uniform(25, 45))
    p.rib_period, p.rib_drop = rng.uniform(26, 30), rng.uniform(90, 120)
    return p


def _fov_centre(p, size, spacing, side) -> tuple[float, float, float]:
    """Patient mm at the volume centre: the thorax for a full field of view, else towards a lung."""
    fov = [n * s for n, s in zip(size, spacing)]
    x = side * float(np.clip(p.body_a - fov[0] / 2, 0.0, 0.5 * p.a_c))
    z_mid = 0.5 * (p.z_apex + p.z_dome[0])
    limit = max(0.0, 150.0 - fov[2] / 2)
    return x, -15.0, float(np.clip(z_mid, -limit - 10.0, limit - 10.0))


def _depth(p, x, y, z):
    """Signed in-plane distance (mm) from the skin, negative inside the body."""
    a = p.body_a * (1.0 - 0.0003 * z)  # a little wider towards the abdomen
    power = np.where(y < 0, p.back_p, 2.0).astype(np.float32)
    q = (np.abs(x / a) ** power + np.abs(y / p.body_b) ** power) ** (1.0 / power)
    return np.sqrt(x * x + y * y) * (1.0 - 1.0 / np.maximum(q, 1e-3))


def _muscle(p, x, y):
    """Muscle thickness under the fat: pectorals in front, paraspinals behind, thin at the sides."""
    return p.muscle * (0.35 + 0.65 * (y * y / (x * x + y * y + 1e-3)))


def _cavity_depth(p, x, y, z, depth):
    """Distance inside the pleura (positive inside), indented behind by the spine and its muscles,
    the rib cage narrowing towards the apex."""
    indent = p.paravert * np.exp(-(x / 42.0) ** 2) * (y < 0)
    narrowing = 0.22 * np.maximum(z - p.z_carina + 20.0, 0.0)
    return -depth - (p.fat + _muscle(p, x, y) + p.wall) - indent - narrowing


def _dome(p, x, y):
    """Height (mm) of the diaphragm under each point; each dome highest mid-hemithorax, deep behind."""
    side = x >= 0
    u = (np.abs(x) - 0.4 * p.a_c) / (0.6 * p.a_c)
    v = (y - 0.15 * p.b_c) / (1.1 * p.b_c)
    recess = 0.3 * np.maximum(-v, 0.0)  # deeper behind: the posterior costophrenic recess
    return np.where(side, p.z_dome[0], p.z_dome[1]) - p.dome_depth * (u * u + v * v + recess)


def _heart_q(p, x, y, z, grow=0.0):
    c, s = np.cos(p.h_angle), np.sin(p.h_angle)
    dx, dy, dz = x - p.h_centre[0], y - p.h_centre[1], z - p.h_centre[2]
    u, v = dx * c - dy * s, dx * s + dy * c
    ax, ay, az = p.h_axes + grow
    return np.sqrt((u / ax) ** 2 + (v / ay) ** 2 + (dz / az) ** 2)


def _apex_cap(p, x, y, z):
    """Under the parabolic dome of either lung's apex (the left apex a little lower)."""
    apex = np.where(x >= 0, p.z_apex, p.z_apex - 6.0)
    t = np.clip((z - apex + 120.0) / 120.0, 0.0, 1.0)
    inside = ((np.abs(x) - 0.5 * p.a_c) / (0.6 * p.a_c)) ** 2 + ((y + 0.1 * p.b_c) / p.b_c) ** 2 <= 1.0 - t
    return inside & (z < apex)


def _lung_analytic(p, x, y, z, depth=None):
    """Inside either lung (before the mediastinal tubes are carved out)."""
    depth = _depth(p, x, y, z) if depth is None else depth
    vertebra = (x / (p.vb[0] + 5)) ** 2 + ((y - p.y_vb) / (p.vb[1] + 5)) ** 2 <= 1.0
    return ((_cavity_depth(p, x, y, z, depth) > 0) & _apex_cap(p, x, y, z) & (z > _dome(p, x, y))
            & (np.abs(x) > 8.0) & ~vertebra & (_heart_q(p, x, y, z, grow=4.0) > 1.0))


# -- assembly ------------------------------------------------------------------------------------

def _anatomy(p, grid: Grid, rng: np.random.Generator):
    x, y, z, h = grid.x, grid.y, grid.z, grid.h
    hu = np.full(grid.shape, -1000.0, dtype=np.float32)
    put = np.copyto

    # scanner table: a curved cradle under the back, carbon skins around a foam core, in air
    top = -p.body_b - rng.uniform(4, 14) + 0.0004 * x * x
    below = top - y
    table = (np.abs(x) < 190) & (below >= 0) & (below < 24)
    put(hu, np.where((below < 3) | (below > 21), 180.0, -90.0).astype(np.float32),
        where=np.broadcast_to(table, grid.shape))

    depth = _depth(p, x, y, z)  # [X, Y, Z]
    body = depth < 0
    put(hu, -100.0 + 8.0 * smooth_noise(grid.shape, 4, rng), where=body)
    muscle = _muscle(p, x, y)
    put(hu, np.float32(42.0), where=depth < -p.fat)  # muscle ring and chest wall

    # ribs: bands around the chest wall that fall as they run forward, cartilage in front
    phi = np.abs(np.arctan2(x, -y))  # 0 behind at the spine, pi in front
    along = z + p.rib_drop * (1 - np.cos(phi)) / 2
    u = np.mod(along - p.z_apex - 4.0, p.rib_period)
    dz = np.minimum(u, p.rib_period - u)
    radial = depth + p.fat + muscle + 4.0
    rib_r = np.sqrt((radial / 3.5) ** 2 + (dz / 4.5) ** 2)
    twelve = (along < p.z_apex + 8) & (along > p.z_apex + 8 - 12 * p.rib_period)
    ribbed = twelve & (np.abs(x) > 22) & (phi < 0.93 * np.pi)
    rib_occ = occupancy((rib_r - 1.0) * 3.5, h) * ribbed
    rib_hu = np.where(phi > 0.8 * np.pi, 120.0, np.where(rib_r > 0.6, 800.0, 260.0)).astype(np.float32)
    hu += rib_occ * (rib_hu - hu)
    # scapulae: plates behind the ribs, out to the sides
    scap = (np.abs(depth + p.fat + 0.3 * muscle) < 2.5) & (phi > 0.22 * np.pi) & (phi < 0.48 * np.pi)
    put(hu, np.float32(650.0), where=scap & (z > p.z_carina - 90) & (z < p.z_apex + 10))
    # sternum
    y_st = p.body_b - p.fat - p.muscle - 4.0
    sternum = (x / 14.0) ** 2 + ((y - y_st) / 6.0) ** 2 < 1.0
    put(hu, np.float32(450.0), where=sternum & (z > p.z_dome[1] - 15) & (z < p.z_apex - 15))

    # the thoracic and upper abdominal cavity: mediastinal fat, then organs
    cavity = _cavity_depth(p, x, y, z, depth) > 0
    put(hu, -90.0 + 10.0 * smooth_noise(grid.shape, 5, rng), where=cavity)
    column = ((x + 4.0) / 30.0) ** 2 + ((y - p.y_tr - 25.0) / 60.0) ** 2 < 1.0  # mediastinum at the inlet
    above = np.broadcast_to(z > p.z_apex - 90.0, grid.shape)
    put(hu, np.float32(38.0), where=cavity & above & ~_apex_cap(p, x, y, z) & ~column)  # around the apices
    below_dome = cavity & (z < _dome(p, x, y))
    liver = below_dome & (x - 0.35 * y > -30)
    put(hu, np.float32(58.0), where=liver)
    put(hu, np.where(y < -25, 45.0, 25.0).astype(np.float32), where=below_dome & ~liver)
    g = np.array([-0.5 * p.a_c, 0.1 * p.b_c, p.z_dome[1] - 30.0])  # gastric fundus: air over fluid
    fundus = ((x - g[0]) / 26) ** 2 + ((y - g[1]) / 22) ** 2 + ((z - g[2]) / 14) ** 2 < 1.0
    put(hu, np.where(z > g[2], -1000.0, 15.0).astype(np.float32), where=fundus & below_dome)

    # heart: myocardium around brighter blood, sitting on the diaphragm
    hq = _heart_q(p, x, y, z)
    on_dome = occupancy(_dome(p, x, y) - 8.0 - z, h)
    heart_occ = occupancy((hq - 1.0) * p.h_axes[1], h) * on_dome
    hu += heart_occ * (np.where(hq < 0.72, 52.0, 40.0).astype(np.float32) - hu)

    # spine: vertebral bodies (cortical rim, cancellous core) between discs, canal and arch behind
    vq = np.sqrt((x / p.vb[0]) ** 2 + ((y - p.y_vb) / p.vb[1]) ** 2)
    vb_occ = occupancy((vq - 1.0) * p.vb[1], h)
    dphase = np.mod(z - p.disc_phase, p.disc_period)
    disc = np.minimum(dphase, p.disc_period - dphase) < 3.0
    vb_hu = np.where(disc, 90.0, np.where(vq > 1.0 - 3.0 / p.vb[1], 950.0, 320.0)).astype(np.float32)
    hu += vb_occ * (vb_hu - hu)
    rc = np.sqrt(x * x + (y - p.y_canal) ** 2)
    arch = (rc > 8) & (rc < 13.5) & (y < p.y_canal + 5)
    spinous = (np.abs(x) < 4) & (y < p.y_canal - 10) & (y > p.y_canal - 36)
    transverse = (np.abs(y - p.y_canal - 2) < 5) & (np.abs(x) > 10) & (np.abs(x) < 32)
    posterior = np.broadcast_to(arch | spinous | transverse, grid.shape)
    put(hu, np.float32(420.0), where=posterior)
    put(hu, np.float32(15.0), where=np.broadcast_to(rc <= 8, grid.shape))

    # lungs: parenchyma denser behind (gravity), low-frequency texture
    lung = _lung_analytic(p, x, y, z, depth)
    tubes, walls = _mediastinal_tubes(p)
    carve = np.zeros(grid.shape, dtype=np.float32)
    paint_tubes(carve, grid, tubes + walls, grow=3.0)
    lung &= carve < 0.5
    parenchyma = (p.lung_hu + 25.0 * np.clip(-y / p.b_c, -1, 1) + 20.0 * smooth_noise(grid.shape, 5, rng)
                  + 8.0 * smooth_noise(grid.shape, 11, rng))
    put(hu, parenchyma, where=lung)

    # vessels: great vessels and the pulmonary arterial and venous trees, blood at about +40
    vessels = np.zeros(grid.shape, dtype=np.float32)
    paint_tubes(vessels, grid, tubes + _vessel_trees(p, h, rng))
    hu += vessels * (np.float32(42.0) - hu)
    # airways: trachea, main and lobar bronchi, a soft-tissue wall around air
    airways = _airway_tree(p, walls, h, rng)
    wall = np.zeros(grid.shape, dtype=np.float32)
    paint_tubes(wall, grid, airways, grow=max(1.2, 0.15 * h))
    hu += wall * (np.float32(30.0) - hu)
    air = np.zeros(grid.shape, dtype=np.float32)
    paint_tubes(air, grid, airways)
    hu += air * (np.float32(-995.0) - hu)
    return hu, lung


def _mediastinal_tubes(p):
    """Aorta, superior vena cava, arch branches, oesophagus, pulmonary trunk; and the central airways."""
    P = lambda *v: np.array(v, dtype=float)  # noqa: E731
    hc, ha, zc, ytr, yvb = p.h_centre, p.h_axes, p.z_carina, p.y_tr, p.y_vb
    z_arch = zc + 28
    aorta = [P(hc[0] + 30, hc[1] + 0.1 * ha[1], hc[2] + 0.35 * ha[2]), P(12, ytr + 22, z_arch - 12),
             P(0, ytr + 12, z_arch), P(-16, ytr - 4, z_arch - 2), P(-20, yvb + 20, z_arch - 22),
             P(-19, yvb + 18, -250)]
    tubes = [(a, b, 14.0 - i, 13.0 - i) if i < 3 else (a, b, 11.5, 11.0)
             for i, (a, b) in enumerate(zip(aorta[:-1], aorta[1:]))]
    tubes += [(P(24, ytr + 16, hc[2] + 0.4 * ha[2]), P(24, ytr + 16, 250), 9.0, 9.0),  # SVC
              (P(6, ytr + 18, z_arch), P(8, ytr + 16, 250), 5.5, 5.0),  # brachiocephalic trunk
              (P(-8, ytr + 14, z_arch + 4), P(-10, ytr + 12, 250), 4.0, 4.0),  # left carotid
              (P(-18, ytr + 4, z_arch + 2), P(-24, ytr, 250), 5.0, 5.0),  # left subclavian
              (P(-8, yvb + 24, 250), P(-12, yvb + 22, -250), 7.0, 7.0)]  # oesophagus
    trunk = P(-8, ytr + 16, zc - 8)
    tubes += [(P(hc[0] + 8, hc[1] + 0.75 * ha[1], hc[2] + 0.45 * ha[2]), trunk, 13.0, 12.0),
              (trunk, P(44, ytr + 6, zc - 16), 10.0, 9.0), (trunk, P(-44, ytr - 4, zc - 6), 9.5, 9.0)]
    la = P(hc[0] + 14, hc[1] - 0.55 * ha[1], hc[2] + 0.3 * ha[2])  # left atrium, veins drain into it
    tubes += [(P(40, ytr - 6, zc - 45), la, 7.0, 7.0), (P(-40, ytr - 10, zc - 45), la, 7.0, 7.0)]
    walls = [(P(0, ytr, 250), P(0, ytr, zc), p.r_tr, p.r_tr),  # trachea, then main bronchi
             (P(0, ytr, zc), P(30, ytr - 4, zc - 22), 6.5, 6.0),
             (P(0, ytr, zc), P(-42, ytr - 8, zc - 32), 5.8, 5.4)]
    return tubes, walls


def _targets(p, side):
    s, a, b = side, p.a_c, p.b_c
    dome = p.z_dome[0 if side > 0 else 1]
    return [(s * 0.5 * a, -0.1 * b, p.z_apex - 30), (s * 0.45 * a, 0.5 * b, p.z_carina + 15),
            (s * 0.75 * a, 0.3 * b, p.z_carina - 45), (s * 0.5 * a, -0.55 * b, dome - 5),
            (s * 0.75 * a, -0.1 * b, dome + 10), (s * 0.55 * a, -0.6 * b, p.z_carina + 20),
            (s * 0.5 * a, 0.55 * b, dome + 25)]


def _inside(p, side):
    return lambda pts: _lung_analytic(p, pts[:, 0], pts[:, 1], pts[:, 2]) & (pts[:, 0] * side > 10)


def _vessel_trees(p, h, rng):
    segs = []
    smallest = max(0.7, 0.18 * h)
    zc, ytr = p.z_carina, p.y_tr
    for side, artery, vein in ((1, (48, ytr + 6, zc - 17), (42, ytr - 6, zc - 46)),
                               (-1, (-48, ytr - 4, zc - 6), (-42, ytr - 10, zc - 46))):
        targets = _targets(p, side)
        segs += branch_tree(artery, targets, 6.0, _inside(p, side), rng, smallest, 7, reach=0.3)
        segs += branch_tree(vein, targets[2:], 5.5, _inside(p, side), rng, smallest, 6, reach=0.3)
    return segs


def _airway_tree(p, walls, h, rng):
    segs = list(walls)
    for side, (_, end, _, r) in ((1, walls[1]), (-1, walls[2])):
        targets = [_targets(p, side)[i] for i in (0, 2, 3)]
        segs += branch_tree(end, targets, 0.75 * r, _inside(p, side), rng, max(1.0, 0.25 * h), 3, reach=0.3)
    return segs
