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

This module frames the volume and paints the structures in order. The patient's random build and
the analytic surfaces it implies are in ``patient.py``, the tubes (great vessels, vessel and
bronchial trees) in ``tubes.py``, grid and shape helpers in ``anatomy.py``, the nodule in ``nodule.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.domains.lung_ct.anatomy import (
    Grid,
    Segment,
    gaussian_blur,
    occupancy,
    paint_tubes,
    place_inside,
    smooth_noise,
)
from synthscape.domains.lung_ct.nodule import paint_nodule
from synthscape.domains.lung_ct.patient import (
    Patient,
    cavity_depth,
    dome_height,
    draw_patient,
    heart_radius,
    in_lungs,
    muscle_thickness,
    skin_depth,
    under_apex,
)
from synthscape.domains.lung_ct.schema import SCHEMA, SIZE_MM, label_map
from synthscape.domains.lung_ct.tubes import airway_tree, mediastinal_tubes, vessel_trees

MARGINS = ("smooth", "spiculated")
FOV_MM = (340.0, 340.0, 300.0)


@dataclass
class Phantom:
    """One simulated patient as ``chest_phantom`` returns it; arrays in RAS+ voxel order (see above)."""

    hu: np.ndarray  # int16 [X, Y, Z], Hounsfield units
    lung_mask: np.ndarray  # uint8 [X, Y, Z], 1 inside either lung (vessels and nodule included)
    nodule_mask: np.ndarray  # uint8 [X, Y, Z], 1 inside the nodule
    spacing: tuple[float, float, float]  # mm per voxel along X, Y, Z
    nodule: dict = field(default_factory=dict)  # {} or center_voxel, diameter_mm, kind, margin
    vessel_mask: np.ndarray | None = None  # uint8 [X, Y, Z], 1 where a vessel fills half a voxel or more
    airway_mask: np.ndarray | None = None  # uint8 [X, Y, Z], 1 in an airway's lumen or wall (half a voxel or more)

    def label_map(self) -> np.ndarray:
        """The masks as one uint8 label map in lung-ct's ``LABELS`` ids (schema.label_map)."""
        return label_map(self.lung_mask, self.nodule_mask, self.nodule.get("kind", "none"), self.vessel_mask,
                         self.airway_mask)


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
    """Draw one patient of ``size`` voxels at ``spacing`` mm: HU volume (int16), lung and nodule masks
    (uint8), nodule description. ``margin`` forces a nodule's margin (else 30 % are spiculated).
    The phantom depends on the arguments and ``rng``'s state alone; the draws come in a fixed order."""
    condition = check_condition(condition)
    if margin is not None and margin not in MARGINS:
        raise SynthscapeError(f"nodule margin {margin!r} is not one of {', '.join(MARGINS)}")
    size = tuple(int(s) for s in np.broadcast_to(np.asarray(size), (3,)))
    spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, dtype=float), (3,)))
    if min(size) < 1 or min(spacing) <= 0:
        raise SynthscapeError(f"phantom size must be positive and spacing > 0, got size={size} spacing={spacing}")

    p = draw_patient(rng)
    present = condition["nodule"] == "present"
    side = 1.0 if rng.random() < 0.55 else -1.0  # the nodule's lung (or the crop's): +1 right, -1 left
    if present:
        low, high = SIZE_MM[condition["size"]]
        diameter = float(rng.uniform(low, high))
        margin = margin or ("spiculated" if rng.random() < 0.3 else "smooth")
    grid = Grid(size, spacing, _fov_centre(p, size, spacing, side))

    hu, lung, vessels, airways = _paint_anatomy(p, grid, rng)
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
    return Phantom(hu, lung.astype(np.uint8), nodule_mask.astype(np.uint8), spacing, nodule,
                   vessels.astype(np.uint8), airways.astype(np.uint8))


def _fov_centre(p: Patient, size, spacing, side) -> tuple[float, float, float]:
    """Patient mm at the volume centre: the thorax for a full field of view, else towards a lung."""
    fov = [n * s for n, s in zip(size, spacing)]
    x = side * float(np.clip(p.body.half_width - fov[0] / 2, 0.0, 0.5 * p.body.cavity_a))
    z_mid = 0.5 * (p.lungs.z_apex + p.lungs.z_dome[0])
    limit = max(0.0, 150.0 - fov[2] / 2)
    return x, -15.0, float(np.clip(z_mid, -limit - 10.0, limit - 10.0))


# -- assembly: one painter per structure, in the order they are layered ------------------------
# Each painter writes into ``hu`` (float32, in place) over what is already there, so the order of
# the calls is the anatomy's layering; it is also the order of the random draws.

def _paint_anatomy(p: Patient, grid: Grid, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The noiseless HU volume (float32 [X, Y, Z], before blur and noise) and the lung, vessel and
    airway masks (bool; a tube's voxels are those it fills half of or more)."""
    hu = np.full(grid.shape, -1000.0, dtype=np.float32)
    _paint_table(hu, p, grid, rng)
    depth = skin_depth(p, grid.x, grid.y, grid.z)  # [X, Y, Z]
    _paint_fat_and_muscle(hu, p, depth, rng)
    _paint_ribs(hu, p, grid, depth)
    _paint_scapulae_and_sternum(hu, p, grid, depth)
    cavity = _paint_cavity(hu, p, grid, depth, rng)
    _paint_upper_abdomen(hu, p, grid, cavity)
    _paint_heart(hu, p, grid)
    _paint_spine(hu, p, grid)
    tubes, walls = mediastinal_tubes(p)
    lung = _paint_lungs(hu, p, grid, depth, tubes + walls, rng)
    # vessels: great vessels and the pulmonary arterial and venous trees, blood at about +40
    vessels = _paint_tubes_hu(hu, grid, tubes + vessel_trees(p, grid.h, rng), 42.0)
    # airways: trachea, main and lobar bronchi, a soft-tissue wall around air
    airways = airway_tree(p, walls, grid.h, rng)
    airway_mask = _paint_tubes_hu(hu, grid, airways, 30.0, grow=max(1.2, 0.15 * grid.h))
    _paint_tubes_hu(hu, grid, airways, -995.0)
    return hu, lung, vessels & ~airway_mask, airway_mask


def _paint_table(hu, p: Patient, grid: Grid, rng: np.random.Generator) -> None:
    """Scanner table: a curved cradle under the back, carbon skins around a foam core, in air."""
    x, y = grid.x, grid.y
    top = -p.body.half_depth - rng.uniform(4, 14) + 0.0004 * x * x
    below = top - y
    table = (np.abs(x) < 190) & (below >= 0) & (below < 24)
    np.copyto(hu, np.where((below < 3) | (below > 21), 180.0, -90.0).astype(np.float32),
              where=np.broadcast_to(table, grid.shape))


def _paint_fat_and_muscle(hu, p: Patient, depth, rng: np.random.Generator) -> None:
    """Subcutaneous fat (textured) filling the body, then the muscle ring and chest wall under it."""
    np.copyto(hu, -100.0 + 8.0 * smooth_noise(hu.shape, 4, rng), where=depth < 0)
    np.copyto(hu, np.float32(42.0), where=depth < -p.body.fat)


def _paint_ribs(hu, p: Patient, grid: Grid, depth) -> None:
    """Twelve ribs: bands around the chest wall that fall as they run forward, cartilage in front."""
    x, y, z = grid.x, grid.y, grid.z
    ribs, z_apex = p.ribs, p.lungs.z_apex
    phi = np.abs(np.arctan2(x, -y))  # 0 behind at the spine, pi in front
    along = z + ribs.drop * (1 - np.cos(phi)) / 2
    u = np.mod(along - z_apex - 4.0, ribs.period)
    dz = np.minimum(u, ribs.period - u)
    radial = depth + p.body.fat + muscle_thickness(p.body, x, y) + 4.0
    rib_r = np.sqrt((radial / 3.5) ** 2 + (dz / 4.5) ** 2)
    twelve = (along < z_apex + 8) & (along > z_apex + 8 - 12 * ribs.period)
    ribbed = twelve & (np.abs(x) > 22) & (phi < 0.93 * np.pi)
    rib_occ = occupancy((rib_r - 1.0) * 3.5, grid.h) * ribbed
    rib_hu = np.where(phi > 0.8 * np.pi, 120.0, np.where(rib_r > 0.6, 800.0, 260.0)).astype(np.float32)
    hu += rib_occ * (rib_hu - hu)


def _paint_scapulae_and_sternum(hu, p: Patient, grid: Grid, depth) -> None:
    """Scapulae: plates behind the ribs, out to the sides; the sternum in front."""
    x, y, z = grid.x, grid.y, grid.z
    body, lungs = p.body, p.lungs
    phi = np.abs(np.arctan2(x, -y))  # 0 behind at the spine, pi in front
    scap = ((np.abs(depth + body.fat + 0.3 * muscle_thickness(body, x, y)) < 2.5)
            & (phi > 0.22 * np.pi) & (phi < 0.48 * np.pi))
    np.copyto(hu, np.float32(650.0), where=scap & (z > lungs.z_carina - 90) & (z < lungs.z_apex + 10))
    y_st = body.half_depth - body.fat - body.muscle - 4.0
    sternum = (x / 14.0) ** 2 + ((y - y_st) / 6.0) ** 2 < 1.0
    np.copyto(hu, np.float32(450.0), where=sternum & (z > lungs.z_dome[1] - 15) & (z < lungs.z_apex - 15))


def _paint_cavity(hu, p: Patient, grid: Grid, depth, rng: np.random.Generator):
    """Fill the thoracic and upper abdominal cavity with mediastinal fat, soft tissue around the
    apices (the thoracic inlet); returns the cavity mask for the organs painted into it."""
    x, y, z = grid.x, grid.y, grid.z
    cavity = cavity_depth(p, x, y, z, depth) > 0
    np.copyto(hu, -90.0 + 10.0 * smooth_noise(grid.shape, 5, rng), where=cavity)
    column = ((x + 4.0) / 30.0) ** 2 + ((y - p.trachea.y - 25.0) / 60.0) ** 2 < 1.0  # mediastinum at the inlet
    above = np.broadcast_to(z > p.lungs.z_apex - 90.0, grid.shape)
    np.copyto(hu, np.float32(38.0), where=cavity & above & ~under_apex(p, x, y, z) & ~column)
    return cavity


def _paint_upper_abdomen(hu, p: Patient, grid: Grid, cavity) -> None:
    """Below the domes: the liver on the right, other viscera, the gastric fundus (air over fluid)."""
    x, y, z = grid.x, grid.y, grid.z
    below_dome = cavity & (z < dome_height(p, x, y))
    liver = below_dome & (x - 0.35 * y > -30)
    np.copyto(hu, np.float32(58.0), where=liver)
    np.copyto(hu, np.where(y < -25, 45.0, 25.0).astype(np.float32), where=below_dome & ~liver)
    g = np.array([-0.5 * p.body.cavity_a, 0.1 * p.body.cavity_b, p.lungs.z_dome[1] - 30.0])  # fundus centre
    fundus = ((x - g[0]) / 26) ** 2 + ((y - g[1]) / 22) ** 2 + ((z - g[2]) / 14) ** 2 < 1.0
    np.copyto(hu, np.where(z > g[2], -1000.0, 15.0).astype(np.float32), where=fundus & below_dome)


def _paint_heart(hu, p: Patient, grid: Grid) -> None:
    """Heart: myocardium around brighter blood, sitting on the diaphragm."""
    x, y, z = grid.x, grid.y, grid.z
    hq = heart_radius(p.heart, x, y, z)
    on_dome = occupancy(dome_height(p, x, y) - 8.0 - z, grid.h)
    heart_occ = occupancy((hq - 1.0) * p.heart.axes[1], grid.h) * on_dome
    hu += heart_occ * (np.where(hq < 0.72, 52.0, 40.0).astype(np.float32) - hu)


def _paint_spine(hu, p: Patient, grid: Grid) -> None:
    """Vertebral bodies (cortical rim, cancellous core) between discs; the canal and arch behind."""
    x, y, z = grid.x, grid.y, grid.z
    s = p.spine
    vq = np.sqrt((x / s.body_axes[0]) ** 2 + ((y - s.y_body) / s.body_axes[1]) ** 2)
    vb_occ = occupancy((vq - 1.0) * s.body_axes[1], grid.h)
    dphase = np.mod(z - s.disc_phase, s.disc_period)
    disc = np.minimum(dphase, s.disc_period - dphase) < 3.0
    vb_hu = np.where(disc, 90.0, np.where(vq > 1.0 - 3.0 / s.body_axes[1], 950.0, 320.0)).astype(np.float32)
    hu += vb_occ * (vb_hu - hu)
    rc = np.sqrt(x * x + (y - s.y_canal) ** 2)
    arch = (rc > 8) & (rc < 13.5) & (y < s.y_canal + 5)
    spinous = (np.abs(x) < 4) & (y < s.y_canal - 10) & (y > s.y_canal - 36)
    transverse = (np.abs(y - s.y_canal - 2) < 5) & (np.abs(x) > 10) & (np.abs(x) < 32)
    np.copyto(hu, np.float32(420.0), where=np.broadcast_to(arch | spinous | transverse, grid.shape))
    np.copyto(hu, np.float32(15.0), where=np.broadcast_to(rc <= 8, grid.shape))


def _paint_lungs(hu, p: Patient, grid: Grid, depth, mediastinum: list[Segment], rng: np.random.Generator):
    """Lungs, with the ``mediastinum`` tubes (grown 3 mm) carved out: parenchyma denser behind
    (gravity) with low-frequency texture. Returns the lung mask."""
    x, y, z = grid.x, grid.y, grid.z
    lung = in_lungs(p, x, y, z, depth)
    carve = np.zeros(grid.shape, dtype=np.float32)
    paint_tubes(carve, grid, mediastinum, grow=3.0)
    lung &= carve < 0.5
    parenchyma = (p.lungs.hu + 25.0 * np.clip(-y / p.body.cavity_b, -1, 1)
                  + 20.0 * smooth_noise(grid.shape, 5, rng) + 8.0 * smooth_noise(grid.shape, 11, rng))
    np.copyto(hu, parenchyma, where=lung)
    return lung


def _paint_tubes_hu(hu, grid: Grid, segments: list[Segment], value: float, grow: float = 0.0) -> np.ndarray:
    """Blend tubes of ``value`` HU into ``hu`` by their partial-volume occupancy; returns where they
    fill half a voxel or more (bool)."""
    occ = np.zeros(grid.shape, dtype=np.float32)
    paint_tubes(occ, grid, segments, grow=grow)
    hu += occ * (np.float32(value) - hu)
    return occ >= 0.5
