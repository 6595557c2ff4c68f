"""Lung CT volumes -> training tensors through a MONAI dictionary-transform pipeline.

load (NIfTI via nibabel or a DICOM series via pydicom, both to RAS+ with their affine)
-> Orientation RAS -> Spacing (target mm) -> HU window to [-1, 1] -> crop or pad (with air)
to the training size. Every transform is deterministic, so MONAI's CacheDataset runs the
pipeline once per volume.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from monai.data import CacheDataset, MetaTensor
from monai.transforms import Compose, MapTransform, Orientationd, ResizeWithPadOrCropd, ScaleIntensityRanged, Spacingd
from torch.utils.data import Dataset

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.labelmap import apply_mapping, folder_mapping
from synthscape.domains.labels import conditions_of, read_labels, unlisted_files
from synthscape.domains.lung_ct.dicom import read_dicom_series
from synthscape.domains.lung_ct.nifti import read_nifti
from synthscape.domains.lung_ct.schema import HU_WINDOW, LABELS, SCHEMA, CTMeta

RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))
NIFTI_SUFFIXES = (".nii", ".nii.gz")
FILE_COLUMNS = ("path", "lung_mask", "nodule_mask", "dicom", "mask")  # labels.csv columns that name files


def read_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI file or a DICOM series folder -> (HU [X, Y, Z] float32 in RAS+, 4x4 RAS+ affine)."""
    if path.is_dir():
        return read_dicom_series(path)
    if path.name.endswith(NIFTI_SUFFIXES):
        return read_nifti(path)
    raise SynthscapeError(f"{path} is neither a NIfTI file (.nii, .nii.gz) nor a DICOM series folder")


class LoadCTd(MapTransform):
    """Load ``data[key]`` (a path) into a channel-first MetaTensor carrying its RAS+ affine."""

    def __call__(self, data):
        out = dict(data)
        for key in self.key_iterator(out):
            volume, affine = read_volume(Path(out[key]))
            out[key] = MetaTensor(torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None],
                                  affine=torch.as_tensor(affine, dtype=torch.float64))
        return out


def ct_pipeline(size: Sequence[int], spacing: Sequence[float], window: Sequence[float] = HU_WINDOW,
                layout: bool = False) -> Compose:
    """The training transform of one volume, and with ``layout`` of its label map (``label``: resampled
    by nearest neighbour, padded with background), through the same geometry; the same for
    simulated and real data."""
    low, high = window
    keys = ("image", "label") if layout else ("image",)
    return Compose([
        LoadCTd(keys),
        Orientationd(keys, axcodes="RAS", labels=RAS_LABELS),
        Spacingd(keys, pixdim=tuple(spacing), mode=("bilinear", "nearest")[: len(keys)], padding_mode="border"),
        ResizeWithPadOrCropd("image", spatial_size=tuple(size), mode="constant", value=float(low)),
        *([ResizeWithPadOrCropd("label", spatial_size=tuple(size), mode="constant", value=0.0)] if layout else []),
        ScaleIntensityRanged("image", a_min=low, a_max=high, b_min=-1.0, b_max=1.0, clip=True),
    ])


def unlisted_volumes(root: Path, listed: set[str]) -> list[str]:
    """NIfTI files and DICOM folders under ``root`` that labels.csv does not mention."""
    found = [p for p in root.rglob("*") if p.name.endswith(NIFTI_SUFFIXES)]
    found += [p.parent for p in root.rglob("*.dcm")]
    return unlisted_files(root, found, listed)


@contextlib.contextmanager
def our_errors() -> Iterator[None]:
    """Let a reader's ``SynthscapeError`` through MONAI, which wraps whatever a transform raises in
    ``RuntimeError("applying transform ...")`` (once per nested Compose): the user gets the reader's
    one line naming the file, not a traceback."""
    try:
        yield
    except RuntimeError as exc:
        cause = exc.__cause__
        while isinstance(cause, RuntimeError) and not isinstance(cause, SynthscapeError):
            cause = cause.__cause__
        if isinstance(cause, SynthscapeError):
            raise cause from None
        raise


class LungCTDataset(Dataset):
    """``(image [1, X, Y, Z] in [-1, 1], condition indices [3])`` for every row of labels.csv; with
    ``layout``, also the label map ``[X, Y, Z]`` (int64, ``LABELS`` ids) its ``mask`` column names,
    through ``label_mapping.json`` beside labels.csv when the files use other values.

    ``size`` and ``spacing`` default to those of the first volume, so a simulated data set
    trains at its own geometry; real data usually wants both set. Files outside ``root``
    (absolute, ``..``, symbolic links leading out) are refused unless ``allow_outside_paths``.
    """

    def __init__(self, root: str | Path, size: int | Sequence[int] | None = None,
                 spacing: float | Sequence[float] | None = None, window: Sequence[float] = HU_WINDOW,
                 cache_workers: int = 0, progress: bool = True, allow_outside_paths: bool = False, layout: bool = False):
        root = Path(root)
        rows = read_labels(root, SCHEMA, file_columns=FILE_COLUMNS, allow_outside_paths=allow_outside_paths)
        listed = {row[c] for row in rows for c in FILE_COLUMNS if row.get(c)}
        if stray := unlisted_volumes(root, listed):
            raise SynthscapeError(f"{root / stray[0]} has no row in {root / 'labels.csv'} ({len(stray)} volume(s) unlisted)")
        self.paths = [root / row["path"] for row in rows]
        self.layout = layout
        items = [{"image": str(p)} for p in self.paths]
        if layout:
            items = self.with_masks(root, rows, items)
        self.conditions = SCHEMA.encode(conditions_of(rows, SCHEMA))
        if size is None or spacing is None:
            volume, affine = read_volume(self.paths[0])
            size = size or volume.shape
            spacing = spacing or tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
        self.size = tuple(int(s) for s in np.broadcast_to(np.asarray(size), (3,)))
        self.spacing = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, dtype=float), (3,)))
        self.window = tuple(float(w) for w in window)
        self.meta = asdict(CTMeta(hu_window=list(self.window), spacing=list(self.spacing), size=list(self.size)))
        with our_errors():
            self.volumes = CacheDataset(items, ct_pipeline(self.size, self.spacing, self.window, layout),
                                        num_workers=cache_workers or None, progress=progress and sys.stderr.isatty())

    def __len__(self) -> int:
        return len(self.paths)

    def with_masks(self, root: Path, rows: list[dict], items: list[dict]) -> list[dict]:
        """``items`` with each row's ``mask`` file as ``label``; every row must name one."""
        self.mapping = folder_mapping(root, rows, LABELS, "volume", "lung-ct")
        return [{**item, "label": str(root / row["mask"])} for item, row in zip(items, rows)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        with our_errors():
            item = self.volumes[index]
        image, condition = item["image"].as_tensor().float(), torch.from_numpy(self.conditions[index])
        if not self.layout:
            return image, condition
        label = apply_mapping(np.rint(item["label"].as_tensor()[0].numpy()).astype(np.int64), self.mapping, LABELS,
                              f"the label map of {self.paths[index]}")
        return image, condition, torch.from_numpy(label.astype(np.int64))
