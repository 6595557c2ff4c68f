"""The chest phantom's patient: its randomly drawn build, and the analytic surfaces that build implies.

Every length is in millimetres in the patient frame, RAS+ as in ``phantom.py``: +x towards the
patient's Right, +y Anterior, +z Superior; x = 0 on the midline, y = 0 about mid-depth of the
chest, z = 0 between the carina (+15..45) and the diaphragm domes (-30..-90). The surface functions
take open (broadcastable) float32 grids and return arrays that broadcast to them. numpy only.

Bit-for-bit note: some fields are numpy float64 arrays or scalars (``Lungs.z_dome``,
``Spine.body_axes``, ``Spine.y_canal``, ``Trachea.y``, ``Heart``'s fields), the rest Python floats.
Under NumPy 2 promotion a float64 scalar turns a float32 grid expression into float64 and a Python
float does not, so turning one kind into the other changes every phantom's voxels slightly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Body:
    """The trunk in cross-section: the skin's outline and the layers between skin and pleura."""

    half_width: float  # mm, the skin's half axis along x at z = 0 (a little wider below, narrower above)
    half_depth: float  # mm, the skin's half axis along y
    back_power: float  # superellipse exponent of the back half (2 is the front's ellipse; higher is flatter)
    fat: float  # mm, subcutaneous fat
    muscle: float  # mm, pectoral and paraspinal muscle (about a third of it at the sides)
    wall: float  # mm, ribs and intercostal muscle; thinner on a deep breath, which widens the cavity
    paravertebral: float  # mm, how far the spine and its muscles push into the cavity from behind
    cavity_a: float  # mm, the thoracic cavity's half width at mid level
    cavity_b: float  # mm, the thoracic cavity's half depth at mid level


@dataclass(frozen=True)
class Ribs:
    """Ribs as bands around the chest wall, falling as they run forward."""

    period: float  # mm, craniocaudal distance between successive ribs
    drop: float  # mm, how much lower a rib's front end is than its back at the spine


@dataclass(frozen=True)
class Lungs:
    """The lungs' craniocaudal extent, the diaphragm under them and the parenchyma's density."""

    inspiration: float  # fraction, 0 shallow .. 1 deep breath (lower domes, darker parenchyma, thinner wall)
    z_apex: float  # mm, top of the right apex (the left one is 6 mm lower)
    z_dome: np.ndarray  # mm, float64 [right, left]: tops of the diaphragm domes, the left one lower
    dome_depth: float  # mm, how far a dome falls from its top to the rim of its hemithorax
    z_carina: float  # mm, the tracheal bifurcation
    hu: float  # HU, parenchyma at y = 0 before the gravity gradient (+-25 HU) and the texture


@dataclass(frozen=True)
class Spine:
    """Vertebral bodies behind the cavity, discs between them, the canal and the arch behind."""

    body_axes: np.ndarray  # mm, float64 [x, y]: half axes of a vertebral body's cross-section
    y_body: float  # mm, y of the vertebral bodies' centre
    y_canal: float  # mm (numpy float64), y of the spinal canal's centre
    disc_period: float  # mm, craniocaudal distance between intervertebral discs
    disc_phase: float  # mm, z offset of the disc pattern


@dataclass(frozen=True)
class Trachea:
    """The trachea, running straight down in front of the spine to the carina."""

    y: float  # mm (numpy float64), y of its axis
    radius: float  # mm, lumen radius


@dataclass(frozen=True)
class Heart:
    """An ellipsoid resting on the left dome, its long axis turned to the front left."""

    axes: np.ndarray  # mm, float64 [u, v, z]: half axes, u and v being x and y turned by ``angle``
    centre: np.ndarray  # mm, float64 [x, y, z]
    angle: float  # radians (numpy float64), the in-plane turn of the axes from x and y


@dataclass(frozen=True)
class Patient:
    """One drawn patient: all that is random in the phantom's anatomy but the tube trees and textures."""

    body: Body
    ribs: Ribs
    lungs: Lungs
    spine: Spine
    trachea: Trachea
    heart: Heart


def draw_patient(rng: np.random.Generator) -> Patient:
    """Draw a patient's build. The order of the draws is part of the output: reordering them
    (or drawing one more) changes every phantom of every seed."""
    inspiration = rng.uniform()
    body = _draw_body(rng, inspiration)
    lungs = _draw_lungs(rng, inspiration)
    spine = _draw_spine(rng, body)
    trachea = Trachea(y=spine.y_body + spine.body_axes[1] + 24.0, radius=rng.uniform(7, 9))
    heart = _draw_heart(rng, body, lungs)
    ribs = Ribs(period=rng.uniform(26, 30), drop=rng.uniform(90, 120))
    return Patient(body, ribs, lungs, spine, trachea, heart)


def _draw_body(rng: np.random.Generator, inspiration: float) -> Body:
    half_width, half_depth = rng.uniform(135, 160), rng.uniform(105, 128)
    back_power = rng.uniform(2.6, 3.4)
    fat, muscle = rng.uniform(5, 20), rng.uniform(9, 16)
    wall = 8.0 - 4.0 * inspiration
    paravertebral = rng.uniform(30, 40)
    return Body(half_width, half_depth, back_power, fat, muscle, wall, paravertebral,
                cavity_a=half_width - fat - 0.35 * muscle - wall, cavity_b=half_depth - fat - muscle - wall)


def _draw_lungs(rng: np.random.Generator, inspiration: float) -> Lungs:
    z_apex = rng.uniform(115, 130)
    z_dome = np.array([rng.uniform(-45, -30) - 25 * inspiration, 0.0])  # [right, left]
    z_dome[1] = z_dome[0] - rng.uniform(8, 20)
    dome_depth = rng.uniform(35, 50)
    z_carina = z_apex - rng.uniform(85, 100)
    hu = -868.0 - 20.0 * inspiration + rng.uniform(-10, 10)
    return Lungs(inspiration, z_apex, z_dome, dome_depth, z_carina, hu)


def _draw_spine(rng: np.random.Generator, body: Body) -> Spine:
    axes = np.array([rng.uniform(17, 21), rng.uniform(14, 17)])
    y_body = -(body.cavity_b - body.paravertebral) - 4.0
    y_canal = y_body - axes[1] - 9.0
    disc_period, disc_phase = rng.uniform(24, 28), rng.uniform(0, 28)
    return Spine(axes, y_body, y_canal, disc_period, disc_phase)


def _draw_heart(rng: np.random.Generator, body: Body, lungs: Lungs) -> Heart:
    scale = rng.uniform(0.9, 1.1)  # cardiothoracic ratio about 0.45
    axes = np.array([0.47 * body.cavity_a, 0.62 * body.cavity_b, 50.0]) * scale
    centre = np.array([-rng.uniform(22, 36), 0.2 * body.cavity_b, lungs.z_dome[1] + 0.4 * axes[2]])
    return Heart(axes, centre, np.deg2rad(rng.uniform(25, 45)))


# -- analytic surfaces ---------------------------------------------------------------------------

def skin_depth(p: Patient, x, y, z):
    """Signed in-plane distance (mm) from the skin, negative inside the body."""
    b = p.body
    a = b.half_width * (1.0 - 0.0003 * z)  # a little wider towards the abdomen
    power = np.where(y < 0, b.back_power, 2.0).astype(np.float32)
    q = (np.abs(x / a) ** power + np.abs(y / b.half_depth) ** power) ** (1.0 / power)
    return np.sqrt(x * x + y * y) * (1.0 - 1.0 / np.maximum(q, 1e-3))


def muscle_thickness(body: Body, x, y):
    """Muscle thickness (mm) under the fat: pectorals in front, paraspinals behind, thin at the sides."""
    return body.muscle * (0.35 + 0.65 * (y * y / (x * x + y * y + 1e-3)))


def cavity_depth(p: Patient, x, y, z, depth):
    """Distance (mm) inside the pleura, positive inside, from the skin ``depth``; indented behind
    by the spine and its muscles, the rib cage narrowing towards the apex."""
    b = p.body
    indent = b.paravertebral * np.exp(-(x / 42.0) ** 2) * (y < 0)
    narrowing = 0.22 * np.maximum(z - p.lungs.z_carina + 20.0, 0.0)
    return -depth - (b.fat + muscle_thickness(b, x, y) + b.wall) - indent - narrowing


def dome_height(p: Patient, x, y):
    """Height (mm) of the diaphragm under each point; each dome highest mid-hemithorax, deep behind."""
    a, b, lungs = p.body.cavity_a, p.body.cavity_b, p.lungs
    side = x >= 0
    u = (np.abs(x) - 0.4 * a) / (0.6 * a)
    v = (y - 0.15 * b) / (1.1 * b)
    recess = 0.3 * np.maximum(-v, 0.0)  # deeper behind: the posterior costophrenic recess
    return np.where(side, lungs.z_dome[0], lungs.z_dome[1]) - lungs.dome_depth * (u * u + v * v + recess)


def heart_radius(heart: Heart, x, y, z, grow: float = 0.0):
    """Ellipsoidal radius about the heart's centre: 1 on its surface (grown by ``grow`` mm), below 1 inside."""
    c, s = np.cos(heart.angle), np.sin(heart.angle)
    dx, dy, dz = x - heart.centre[0], y - heart.centre[1], z - heart.centre[2]
    u, v = dx * c - dy * s, dx * s + dy * c
    ax, ay, az = heart.axes + grow
    return np.sqrt((u / ax) ** 2 + (v / ay) ** 2 + (dz / az) ** 2)


def under_apex(p: Patient, x, y, z):
    """Under the parabolic dome of either lung's apex (the left apex a little lower)."""
    a, b, z_apex = p.body.cavity_a, p.body.cavity_b, p.lungs.z_apex
    apex = np.where(x >= 0, z_apex, z_apex - 6.0)
    t = np.clip((z - apex + 120.0) / 120.0, 0.0, 1.0)
    inside = ((np.abs(x) - 0.5 * a) / (0.6 * a)) ** 2 + ((y + 0.1 * b) / b) ** 2 <= 1.0 - t
    return inside & (z < apex)


def in_lungs(p: Patient, x, y, z, depth=None):
    """Inside either lung, before the mediastinal tubes are carved out; ``depth``: ``skin_depth``
    if already computed on the same grid."""
    depth = skin_depth(p, x, y, z) if depth is None else depth
    axes, y_body = p.spine.body_axes, p.spine.y_body
    vertebra = (x / (axes[0] + 5)) ** 2 + ((y - y_body) / (axes[1] + 5)) ** 2 <= 1.0
    return ((cavity_depth(p, x, y, z, depth) > 0) & under_apex(p, x, y, z) & (z > dome_height(p, x, y))
            & (np.abs(x) > 8.0) & ~vertebra & (heart_radius(p.heart, x, y, z, grow=4.0) > 1.0))
