"""The chest's tubes as capsule segments (``anatomy.Segment``: mm, patient frame): the mediastinal
great vessels, oesophagus and central airways, and the pulmonary vessel and bronchial trees grown
into each lung. numpy only.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from synthscape.domains.lung_ct.anatomy import Segment, branch_tree
from synthscape.domains.lung_ct.patient import Patient, in_lungs


def mediastinal_tubes(p: Patient) -> tuple[list[Segment], list[Segment]]:
    """(aorta, superior vena cava, arch branches, oesophagus, pulmonary trunk, arteries and veins;
    trachea and main bronchi). Both lists carve the lungs; the airways come apart because they get
    a wall and the bronchial trees grow from the main bronchi's ends."""
    P = lambda *v: np.array(v, dtype=float)  # noqa: E731
    hc, ha, zc, ytr, yvb = p.heart.centre, p.heart.axes, p.lungs.z_carina, p.trachea.y, p.spine.y_body
    z_arch = zc + 28
    aorta = [P(hc[0] + 30, hc[1] + 0.1 * ha[1], hc[2] + 0.35 * ha[2]), P(12, ytr + 22, z_arch - 12),
             P(0, ytr + 12, z_arch), P(-16, ytr - 4, z_arch - 2), P(-20, yvb + 20, z_arch - 22),
             P(-19, yvb + 18, -250)]
    tubes = [(a, b, 14.0 - i, 13.0 - i) if i < 3 else (a, b, 11.5, 11.0)
             for i, (a, b) in enumerate(pairwise(aorta))]
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
    r_tr = p.trachea.radius
    walls = [(P(0, ytr, 250), P(0, ytr, zc), r_tr, r_tr),  # trachea, then main bronchi
             (P(0, ytr, zc), P(30, ytr - 4, zc - 22), 6.5, 6.0),
             (P(0, ytr, zc), P(-42, ytr - 8, zc - 32), 5.8, 5.4)]
    return tubes, walls


def _targets(p: Patient, side: float) -> list[tuple]:
    """Seven points (mm) spread through one lung (``side`` +1 right, -1 left) for the trees to grow
    towards: apex, upper front, mid lateral, lower back, lower lateral, upper back, lower front."""
    s, a, b = side, p.body.cavity_a, p.body.cavity_b
    z_apex, zc = p.lungs.z_apex, p.lungs.z_carina
    dome = p.lungs.z_dome[0 if side > 0 else 1]
    return [(s * 0.5 * a, -0.1 * b, z_apex - 30), (s * 0.45 * a, 0.5 * b, zc + 15),
            (s * 0.75 * a, 0.3 * b, zc - 45), (s * 0.5 * a, -0.55 * b, dome - 5),
            (s * 0.75 * a, -0.1 * b, dome + 10), (s * 0.55 * a, -0.6 * b, zc + 20),
            (s * 0.5 * a, 0.55 * b, dome + 25)]


def _inside(p: Patient, side: float):
    """``branch_tree``'s organ test for one lung: points [N, 3] (mm) -> inside it, 10 mm off the midline."""
    return lambda pts: in_lungs(p, pts[:, 0], pts[:, 1], pts[:, 2]) & (pts[:, 0] * side > 10)


def vessel_trees(p: Patient, h: float, rng: np.random.Generator) -> list[Segment]:
    """Pulmonary arterial and venous trees of both lungs, grown from the hila. Branching stops near a
    radius of max(0.7, 0.18 h) mm (``h``: voxel size, mm), so a finer grid gets finer vessels."""
    segs = []
    smallest = max(0.7, 0.18 * h)
    zc, ytr = p.lungs.z_carina, p.trachea.y
    for side, artery, vein in ((1, (48, ytr + 6, zc - 17), (42, ytr - 6, zc - 46)),
                               (-1, (-48, ytr - 4, zc - 6), (-42, ytr - 10, zc - 46))):
        targets = _targets(p, side)
        segs += branch_tree(artery, targets, 6.0, _inside(p, side), rng, smallest, 7, reach=0.3)
        segs += branch_tree(vein, targets[2:], 5.5, _inside(p, side), rng, smallest, 6, reach=0.3)
    return segs


def airway_tree(p: Patient, walls: list[Segment], h: float, rng: np.random.Generator) -> list[Segment]:
    """The central airways ``walls`` (from ``mediastinal_tubes``) and up to three generations of
    bronchi grown from the main bronchi's ends, branching stopping near max(1.0, 0.25 h) mm radius."""
    segs = list(walls)
    for side, (_, end, _, r) in ((1, walls[1]), (-1, walls[2])):
        targets = [_targets(p, side)[i] for i in (0, 2, 3)]
        segs += branch_tree(end, targets, 0.75 * r, _inside(p, side), rng, max(1.0, 0.25 * h), 3, reach=0.3)
    return segs
