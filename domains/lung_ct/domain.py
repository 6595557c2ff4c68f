"""The lung-ct domain: simulate chest phantoms, read real CT, write NIfTI and DICOM series.

``simulate`` and ``write`` need no torch (the edge install); ``dataset`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.domains.base import read_meta, register
from synthscape.domains.labels import write_labels
from synthscape.domains.lung_ct.dicom import write_dicom_series
from synthscape.domains.lung_ct.nifti import write_nifti
from synthscape.domains.lung_ct.phantom import chest_phantom, default_spacing
from synthscape.domains.lung_ct.schema import LABELS, SCHEMA, CTMeta
from synthscape.domains.parallel import parallel_map

FORMATS = ("nifti", "dicom")
SYNTHETIC = "SYNTHETIC - synthscape"


def centred_affine(size: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """RAS+ affine of an axis-aligned volume whose centre is the world origin."""
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = -(np.asarray(size) - 1) / 2 * np.asarray(spacing, dtype=float)
    return affine


def parse_formats(formats: Sequence[str] | str | None, default: Sequence[str] = ("nifti",)) -> list[str]:
    """``["nifti,dicom"]`` or ``"nifti"`` -> ``["nifti", "dicom"]``; unknown names refused."""
    if isinstance(formats, str):
        formats = [formats]
    names = [f.strip() for item in (formats or ()) for f in item.split(",") if f.strip()] or list(default)
    for name in names:
        if name not in FORMATS:
            raise SynthscapeError(f"unknown lung-ct format {name!r}; valid formats: {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


NODULE_SIZES = tuple(v for v in SCHEMA.values("size") if v != "none")
NODULE_KINDS = tuple(v for v in SCHEMA.values("kind") if v != "none")


def nodule_choices(name: str, given: Sequence[str] | str | None, valid: tuple[str, ...]) -> tuple[str, ...]:
    """The values nodules are drawn from (all by default), from a list or a comma-separated text."""
    if given is None:
        return valid
    values = [v.strip() for v in given.split(",")] if isinstance(given, str) else [str(v) for v in given]
    bad = [v for v in values if v not in valid]
    if not values or bad:
        raise SynthscapeError(f"lung-ct {name} must be one or more of {', '.join(valid)}, got {', '.join(map(repr, bad or values))}")
    return tuple(dict.fromkeys(values))


def draw_condition(rng: np.random.Generator, sizes: Sequence[str] = NODULE_SIZES,
                   kinds: Sequence[str] = NODULE_KINDS) -> dict[str, str]:
    """The simulator's label mix: half with a nodule, its size and kind uniform over ``sizes``, ``kinds``."""
    if rng.random() < 0.5:
        return {"nodule": "absent", "size": "none", "kind": "none"}
    return {"nodule": "present", "size": str(rng.choice(list(sizes))), "kind": str(rng.choice(list(kinds)))}


def condition_text(condition: dict[str, str], seed: int | None = None, index: int | None = None) -> str:
    """``nodule=present size=large kind=solid [seed=S index=I]``: the provenance a DICOM header records."""
    text = " ".join(f"{k}={v}" for k, v in condition.items())
    return text if seed is None else f"{text} seed={seed} index={index}"


def simulate_one(out: Path, seed: int, size: tuple[int, int, int], spacing: tuple[float, float, float],
                 formats: tuple[str, ...], mix: tuple[tuple[str, ...], tuple[str, ...]], index: int) -> dict[str, Any]:
    """Draw and write phantom ``index`` of ``seed`` (nodule sizes and kinds from ``mix``); returns its labels.csv row."""
    rng = np.random.default_rng([seed, index])
    condition = draw_condition(rng, *mix)
    phantom = chest_phantom(size, spacing, condition, rng)
    affine = centred_affine(size, spacing)
    name = f"case-{index:05d}"
    row = {"path": f"volumes/{name}.nii.gz", **condition, "lung_mask": f"masks/{name}_lung.nii.gz",
           "nodule_mask": f"masks/{name}_nodule.nii.gz", "mask": f"masks/{name}_labels.nii.gz", "margin": phantom.nodule.get("margin", ""),
           "diameter_mm": f"{phantom.nodule['diameter_mm']:.2f}" if phantom.nodule else "", "seed": seed}
    if "nifti" in formats:
        write_nifti(out / row["path"], phantom.hu, affine)
    write_nifti(out / row["lung_mask"], phantom.lung_mask, affine, dtype=np.uint8)
    write_nifti(out / row["nodule_mask"], phantom.nodule_mask, affine, dtype=np.uint8)
    write_nifti(out / row["mask"], phantom.label_map(), affine, dtype=np.uint8)
    if "dicom" in formats:
        row["dicom"] = f"dicom/{name}"
        write_dicom_series(out / row["dicom"], phantom.hu, affine, series_description=f"{SYNTHETIC} phantom",
                           derivation=f"synthscape chest phantom simulator; {condition_text(condition, seed, index)}")
        if "nifti" not in formats:
            row["path"] = row["dicom"]
    return row


def write_layout(out: Path, name: str, row: dict[str, Any], labels: np.ndarray, affine: np.ndarray) -> list[Path]:
    """A sample's label map as ``masks/NAME_labels.nii.gz`` (uint8, the image's affine) and, beside
    its DICOM series, ``dicom/NAME_seg.dcm``; records both in ``row`` (``mask``, ``seg``)."""
    row["mask"] = f"masks/{name}_labels.nii.gz"
    files = [write_nifti(out / row["mask"], labels, affine, dtype=np.uint8)]
    if "dicom" in row:
        from synthscape.domains.lung_ct.dicom_seg import write_dicom_seg

        row["seg"] = f"dicom/{name}_seg.dcm"
        files.append(write_dicom_seg(out / row["seg"], labels, out / row["dicom"], LABELS,
                                     description=f"{SYNTHETIC} label map"))
    return files


class LungCT:
    """The lung-ct domain: 3-D chest CT in Hounsfield units, conditioned on a nodule's presence, size and kind."""

    name = "lung-ct"
    schema = SCHEMA
    labels = LABELS
    mask_focus = "nodule_"  # the label-map classes the evaluation's mask rows score
    spatial_dims = 3
    meta_type = CTMeta

    def simulate(self, out: Path, count: int, seed: int, size: int | Sequence[int] = 64,
                 spacing: float | Sequence[float] | None = None, formats: Sequence[str] | str | None = None,
                 workers: int | None = None, nodule_sizes: Sequence[str] | str | None = None,
                 nodule_kinds: Sequence[str] | str | None = None, **options: Any) -> Path:
        """Chest phantoms: ``volumes/``, ``masks/`` (lung, nodule), optional ``dicom/``, ``labels.csv``.

        Half the phantoms hold one nodule, its size and kind drawn uniformly from ``nodule_sizes``
        and ``nodule_kinds`` (default: all). Narrowing them sizes a data set to what its voxels can
        show: a 3-6 mm nodule is a voxel or less at the whole-thorax default spacing.
        Volume ``i`` depends on (seed, i) alone, so ``workers`` processes (default: one per CPU core
        for 64 volumes or more) make the same volumes as one process (DICOM UIDs are fresh each run)."""
        if options:
            raise SynthscapeError(f"lung-ct simulate does not take {', '.join(options)}; it takes size, spacing, "
                                  "formats, workers, nodule_sizes, nodule_kinds")
        mix = (nodule_choices("nodule_sizes", nodule_sizes, NODULE_SIZES),
               nodule_choices("nodule_kinds", nodule_kinds, NODULE_KINDS))
        size = tuple(int(s) for s in np.broadcast_to(np.asarray(size), (3,)))
        spacing = default_spacing(size) if spacing is None else tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, dtype=float), (3,)))
        if min(size) < 8 or min(spacing) <= 0:
            raise SynthscapeError(f"lung-ct size must be at least 8 and spacing positive, got size={size} spacing={spacing}")
        task = partial(simulate_one, out, seed, size, spacing, tuple(parse_formats(formats)), mix)
        rows = parallel_map(task, count, workers, desc="simulate lung-ct", unit="volume")
        write_labels(out, rows, SCHEMA, extras=("lung_mask", "nodule_mask", "mask", "margin", "diameter_mm", "seed", "dicom"))
        return out

    def dataset(self, path: Path, size: int | Sequence[int] | None = None,
                spacing: float | Sequence[float] | None = None, allow_outside_paths: bool = False, **options: Any):
        """Training tensors of a lung-ct folder (``LungCTDataset``), imported late: simulate and write need no torch.
        Files outside ``path`` are refused unless ``allow_outside_paths``."""
        from synthscape.domains.lung_ct.dataset import LungCTDataset

        return LungCTDataset(path, size=size, spacing=spacing, allow_outside_paths=allow_outside_paths, **options)

    def draw_layout(self, condition: Mapping[str, str], size: Sequence[int], meta: Mapping[str, Any] | None,
                    rng: np.random.Generator) -> np.ndarray:
        """A label map (``LABELS`` ids, uint8 ``[X, Y, Z]``) of a new phantom drawn for ``condition`` at
        ``size`` voxels and the spacing of ``meta`` (a run's ``domain_meta``): the lungs, and the nodule
        of the condition's size and kind. What a layout model renders when no layouts are given."""
        geometry = read_meta(CTMeta, meta, self.name)
        spacing = tuple(geometry.spacing) if geometry.spacing is not None else default_spacing(size)
        phantom = chest_phantom(tuple(int(s) for s in size), spacing, dict(condition), rng)
        return phantom.label_map()

    def write(self, images: np.ndarray, conditions: Sequence[dict[str, str]], out: Path,
              formats: Sequence[str] | str | None = None, *, seed: int | None = None,
              indices: Sequence[int] | None = None, meta: Mapping[str, Any] | None = None,
              layouts: np.ndarray | None = None) -> list[Path]:
        """Generated volumes ``[N, 1, X, Y, Z]`` in [-1, 1] -> HU NIfTI and/or DICOM + labels.csv,
        at the spacing and through the HU window of ``meta`` (``CTMeta``: a run's ``domain_meta``).
        A layout model's label maps ``layouts`` ``[N, X, Y, Z]`` are written beside them (NIfTI with
        the image's affine, the ``mask`` column) and, with DICOM, as a DICOM Segmentation of the series."""
        geometry = read_meta(CTMeta, meta, self.name)
        images = np.asarray(images)
        if images.ndim != 5 or images.shape[1] != 1:
            raise SynthscapeError(f"lung-ct writes volumes [N, 1, X, Y, Z], got {list(images.shape)}")
        formats = parse_formats(formats)
        indices = list(range(len(images))) if indices is None else list(indices)
        spacing = tuple(geometry.spacing) if geometry.spacing is not None else default_spacing(images.shape[2:])
        affine = centred_affine(images.shape[2:], spacing)
        low, high = geometry.hu_window
        files, rows = [], []
        for position, (image, condition, index) in enumerate(zip(images, conditions, indices)):
            hu = (np.clip(image[0], -1, 1) + 1) / 2 * (high - low) + low
            name = f"sample-{index:06d}"
            row = {**condition, "seed": seed, "index": index}
            if "nifti" in formats:
                row["path"] = f"volumes/{name}.nii.gz"
                files.append(write_nifti(out / row["path"], hu, affine))
            if "dicom" in formats:
                row["dicom"] = f"dicom/{name}"
                row.setdefault("path", row["dicom"])
                files += write_dicom_series(out / row["dicom"], hu, affine, series_description=f"{SYNTHETIC} sample",
                                            derivation=f"synthscape generator; {condition_text(condition, seed, index)}")
            if layouts is not None:
                files += write_layout(out, name, row, LABELS.check(layouts[position], f"the label map of sample {index}"), affine)
            rows.append(row)
        files.append(write_labels(out, rows, SCHEMA, extras=("seed", "index", "dicom", "mask", "seg")))
        return files


DOMAIN = register(LungCT(), replace=True)
