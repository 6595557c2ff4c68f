"""The chest phantom: HU ranges, masks, nodule size classes and kinds, orientation, determinism."""

import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.domains.lung_ct.phantom import Phantom, chest_phantom, default_spacing
from synthscape.domains.lung_ct.schema import SIZE_MM

ABSENT = {"nodule": "absent", "size": "none", "kind": "none"}


def present(size="large", kind="solid"):
    return {"nodule": "present", "size": size, "kind": kind}


def make(size=(64, 64, 64), spacing=None, condition=ABSENT, seed=0, margin=None) -> Phantom:
    spacing = default_spacing(size) if spacing is None else spacing
    return chest_phantom(size, spacing, condition, np.random.default_rng(seed), margin=margin)


def erode(mask):
    """Voxels whose six neighbours are in ``mask`` too (drops the partial-volume rim)."""
    inner = mask.copy()
    for axis in range(3):
        for shift in (1, -1):
            inner &= np.roll(mask, shift, axis=axis)
    return inner


def centre_distance_mm(phantom):
    index = np.indices(phantom.hu.shape).astype(float)
    offsets = [(index[a] - phantom.nodule["center_voxel"][a]) * phantom.spacing[a] for a in range(3)]
    return np.sqrt(sum(o ** 2 for o in offsets))


def equivalent_diameter_mm(phantom):
    volume = phantom.nodule_mask.sum() * np.prod(phantom.spacing)
    return 2 * (3 * volume / (4 * np.pi)) ** (1 / 3)


@pytest.fixture(scope="module")
def chests():
    return [make(seed=seed) for seed in range(3)]


def test_types_shapes_and_default_spacing(chests):
    ph = chests[0]
    assert ph.hu.dtype == np.int16 and ph.hu.shape == (64, 64, 64)
    assert ph.lung_mask.dtype == np.uint8 and ph.nodule_mask.dtype == np.uint8
    assert set(np.unique(ph.lung_mask)) == {0, 1} and not ph.nodule_mask.any() and ph.nodule == {}
    assert ph.spacing == pytest.approx((340 / 64, 340 / 64, 300 / 64))
    assert -1024 <= ph.hu.min() and ph.hu.max() <= 3071
    odd = make(size=(48, 40, 24), condition=present("medium", "part_solid"))
    assert odd.hu.shape == odd.lung_mask.shape == odd.nodule_mask.shape == (48, 40, 24)
    assert odd.nodule_mask.any()


def test_hu_ranges(chests):
    for ph in chests:
        hu, lung = ph.hu.astype(np.float32), ph.lung_mask.astype(bool)
        X, Y, Z = hu.shape
        corners = np.concatenate([hu[:5, -5:].ravel(), hu[-5:, -5:].ravel()])  # in front of the shoulders
        assert abs(np.median(corners) + 1000) < 15 and np.percentile(corners, 99) < -950
        assert -900 <= np.median(hu[erode(lung)]) <= -780  # parenchyma, rim and vessel halo aside
        assert (hu > 300).sum() > 200 and hu.max() > 350  # spine, ribs, sternum
        assert 0.05 < lung.mean() < 0.3
        # heart: front left of the midline, lower half of the lungs, outside them
        k = np.flatnonzero(lung.any(axis=(0, 1)))
        slab = slice(k.min(), k.min() + (k.max() - k.min()) // 2)
        box = (slice(X // 2 - X // 8, X // 2), slice(Y // 2 + 2, Y // 2 + Y // 8 + 1), slab)
        assert 0 <= np.median(hu[box][~lung[box]]) <= 100


def test_orientation_is_ras(chests):
    for ph in chests:
        hu, lung = ph.hu.astype(np.float32), ph.lung_mask.astype(bool)
        X, Y, Z = hu.shape
        k = np.flatnonzero(lung.any(axis=(0, 1)))
        midline = hu[X // 2 - 1: X // 2 + 1, :, k.min(): k.max() + 1].mean(axis=(0, 2))
        assert np.argmax(midline) < Y // 2 and midline.max() > 150  # spine behind (low axis 1)
        assert midline[: Y // 2].max() > midline[Y // 2:].max()
        assert lung[X // 2:].sum() > 1.03 * lung[: X // 2].sum()  # right lung (high axis 0) larger
        area = lung.sum(axis=(0, 1))
        span = k.max() - k.min()
        middle = area[k.min() + span // 2]
        assert area[k.min() + span // 10] < middle and area[k.max() - span // 10] < middle  # dome, apex
        top = hu[X // 2 - 2: X // 2 + 2, Y // 4: 3 * Y // 4, k.max() - span // 8]
        assert top.min() < -600  # the trachea runs down the midline at the top


@pytest.mark.parametrize("size, spacing", [("small", 1.0), ("medium", 1.0), ("large", 1.5)])
def test_nodule_diameter_follows_size_class(size, spacing):
    low, high = SIZE_MM[size]
    for seed in range(2):
        ph = make(spacing=(spacing,) * 3, condition=present(size, "solid"), seed=seed)
        nodule, lung = ph.nodule_mask.astype(bool), ph.lung_mask.astype(bool)
        assert nodule.any() and not (nodule & ~lung).any()
        assert low <= ph.nodule["diameter_mm"] < high
        assert low - spacing <= equivalent_diameter_mm(ph) <= high + spacing
        assert nodule[tuple(ph.nodule["center_voxel"])]
        assert ph.nodule["kind"] == "solid" and ph.nodule["margin"] in ("smooth", "spiculated")


def test_nodule_kinds_have_their_density():
    spacing = (1.0, 1.0, 1.0)
    solid = make(spacing=spacing, condition=present("large", "solid"), seed=1, margin="smooth")
    assert solid.hu[solid.nodule_mask.astype(bool)].mean() > -100
    ggo = make(spacing=spacing, condition=present("large", "ground_glass"), seed=1, margin="smooth")
    assert -750 < ggo.hu[ggo.nodule_mask.astype(bool)].mean() < -300
    part = make(spacing=spacing, condition=present("large", "part_solid"), seed=1, margin="smooth")
    diameter, distance = part.nodule["diameter_mm"], centre_distance_mm(part)
    mask = part.nodule_mask.astype(bool)
    core, halo = part.hu[distance < 0.1 * diameter], part.hu[mask & (distance > 0.42 * diameter)]
    assert core.mean() > -100 and halo.mean() < -300


def test_nodule_inside_lung_at_every_scale():
    for size in [(16, 16, 16), (32, 32, 32), (64, 64, 48)]:
        for seed, (cls, kind) in enumerate([("small", "ground_glass"), ("medium", "solid"), ("large", "part_solid")]):
            ph = make(size=size, condition=present(cls, kind), seed=seed)
            nodule = ph.nodule_mask.astype(bool)
            assert nodule.any() and not (nodule & ~ph.lung_mask.astype(bool)).any()


def test_margin_choice():
    spiculated = make(size=(32, 32, 32), condition=present("medium", "solid"), margin="spiculated")
    assert spiculated.nodule["margin"] == "spiculated"
    drawn = {make(size=(16, 16, 16), condition=present("small", "solid"), seed=s).nodule["margin"] for s in range(12)}
    assert drawn == {"smooth", "spiculated"}
    with pytest.raises(SynthscapeError):
        make(size=(16, 16, 16), condition=present(), margin="fuzzy")


def test_same_seed_same_volume_different_seed_differs():
    a = make(size=(32, 32, 32), condition=present("medium", "part_solid"), seed=7)
    b = make(size=(32, 32, 32), condition=present("medium", "part_solid"), seed=7)
    c = make(size=(32, 32, 32), condition=present("medium", "part_solid"), seed=8)
    for name in ("hu", "lung_mask", "nodule_mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.nodule == b.nodule
    assert not np.array_equal(a.hu, c.hu)


@pytest.mark.parametrize("condition, named", [
    ({"nodule": "absent", "size": "large", "kind": "none"}, "size=large"),
    ({"nodule": "absent", "size": "none", "kind": "solid"}, "kind=solid"),
    ({"nodule": "present", "size": "none", "kind": "solid"}, "size=none"),
    ({"nodule": "present", "size": "small", "kind": "none"}, "kind=none"),
    ({"nodule": "present", "size": "huge", "kind": "solid"}, "huge"),
    ({"nodule": "absent", "size": "none"}, "kind"),
])
def test_bad_condition_is_refused_in_one_line(condition, named):
    with pytest.raises(SynthscapeError) as error:
        make(size=(16, 16, 16), condition=condition)
    message = str(error.value)
    assert named in message and "\n" not in message


def test_label_map_marks_vessels_bright_and_airway_lumens_dark():
    from synthscape.domains.lung_ct.schema import LABELS

    phantom = make(spacing=(1.25,) * 3, condition=present("medium", "solid"), seed=3)  # 80 mm inside a lung
    labels, hu = phantom.label_map(), phantom.hu
    ids = {name: LABELS.id(name) for name in ("lung", "vessel", "airway", "nodule_solid")}
    inner = {name: erode(labels == i) for name, i in ids.items()}  # away from the blurred rims
    assert all(inner[name].sum() > 20 for name in ids), {name: int(m.sum()) for name, m in inner.items()}
    assert np.median(hu[inner["vessel"]]) > -150  # blood, about +40 HU before blur
    assert np.median(hu[inner["lung"]]) < -750  # parenchyma around the tubes
    assert np.percentile(hu[inner["airway"]], 10) < -800  # an air lumen inside its wall
    assert np.array_equal(labels == ids["nodule_solid"], phantom.nodule_mask > 0)  # the nodule is painted last
