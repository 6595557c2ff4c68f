"""NIfTI-1 in and out for lung CT volumes and masks. numpy and nibabel only (no torch).

Conventions (shared with ``dicom.py``): a volume is a numpy array ``[X, Y, Z]`` paired with a 4x4
affine in nibabel's RAS+ world convention, ``world = affine @ [i, j, k, 1]``, in millimetres.

Written files carry the affine twice, as sform and as qform, both with code 1 (NIFTI_XFORM_SCANNER_ANAT).
Scanner, not aligned (2): the affine is the scanner's patient frame (DICOM patient coordinates flipped
to RAS) or, for synthetic volumes, the frame they were drawn in; nothing has been registered to
another image or to a template, which is what "aligned" claims. dcm2niix writes 1 for both as well,
so a series converted by it and the same volume written here agree header for header.
"""

from __future__ import annotations

import gzip
import logging
import math
from pathlib import Path

import nibabel as nib
import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import atomic_path
from synthscape.core.limits import check_voxels

log = logging.getLogger(__name__)

XFORM_SCANNER = 1
DTYPES = (np.int16, np.uint8, np.float32)
_SUFFIXES = (".nii", ".nii.gz")
# deflate codes a 258-byte match in as little as 2 bits after the first: at most 1032 bytes out per byte in
DEFLATE_RATIO = 1032
# a .nii.gz declaring more than this is also inflated once, a chunk at a time, to count what it holds
COUNT_ABOVE = 64 * 2**20
_CHUNK = 2**20


def _check_affine(affine, where: Path) -> np.ndarray:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise SynthscapeError(f"{where}: affine must be a finite 4x4 matrix, got shape {affine.shape}")
    if not np.allclose(affine[3], [0, 0, 0, 1]):
        raise SynthscapeError(f"{where}: affine's last row must be [0, 0, 0, 1], got {affine[3].tolist()}")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise SynthscapeError(f"{where}: affine is singular (a zero or repeated voxel axis)")
    return affine


def _cast(volume: np.ndarray, dtype, where: Path) -> np.ndarray:
    if not np.isfinite(volume).all():
        raise SynthscapeError(f"{where}: volume has NaN or infinite values")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(volume), info.min, info.max).astype(dtype)
    return volume.astype(dtype)


def write_nifti(path: str | Path, volume, affine, dtype=np.int16, *, overwrite: bool = False) -> Path:
    """Write ``volume`` [X, Y, Z] with its RAS+ ``affine`` to ``path`` (``.nii`` or ``.nii.gz``).

    ``dtype`` int16 (HU, the default: rounded and clipped to the int16 range), uint8 (masks: rounded
    and clipped to 0..255, intent NIFTI_INTENT_LABEL) or float32. sform and qform are both set from the
    affine with code 1 (scanner); pixdim holds the true voxel spacing (the affine's column norms) and
    xyzt_units says mm. The file appears whole or not at all; an existing file is refused unless
    ``overwrite=True``. Returns ``path``.
    """
    path = Path(path)
    if not path.name.endswith(_SUFFIXES):
        raise SynthscapeError(f"{path}: expected a .nii or .nii.gz file name")
    if path.exists() and not overwrite:
        raise SynthscapeError(f"{path}: already exists (pass overwrite=True to replace it)")
    dtype = np.dtype(dtype).type
    if dtype not in DTYPES:
        raise SynthscapeError(f"{path}: dtype {np.dtype(dtype).name} not supported, expected int16, uint8 or float32")
    volume = np.asarray(volume)
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise SynthscapeError(f"{path}: expected a 3D volume [X, Y, Z], got shape {volume.shape}")
    affine = _check_affine(affine, path)
    data = _cast(volume, dtype, path)

    img = nib.Nifti1Image(data, affine)
    header = img.header
    header.set_data_dtype(dtype)
    img.set_sform(affine, code=XFORM_SCANNER)
    img.set_qform(affine, code=XFORM_SCANNER)  # also sets pixdim from the affine's column norms
    header.set_xyzt_units(xyz="mm")
    header.set_slope_inter(1.0, 0.0)
    if dtype is np.uint8:
        header.set_intent("label")
    header["descrip"] = b"synthscape"

    payload = img.to_bytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    log.debug("wrote %s %s %s", path, data.shape, np.dtype(dtype).name)
    return path


def _inflated_size(path: Path, limit: int) -> int:
    """The bytes the gzip file ``path`` inflates to, counted a chunk at a time, stopping past ``limit``."""
    total = 0
    with gzip.open(path, "rb") as stream:
        while total < limit and (chunk := stream.read(_CHUNK)):
            total += len(chunk)
    return total


def check_declared(path: Path, img) -> int:
    """Refuse a NIfTI-1 or -2 image ``img`` (just loaded from ``path``, its data not yet read) whose
    header declares more voxels than the voxel cap, or more data than the file can hold; returns the
    bytes it declares. nibabel allocates the whole declared array before it finds the file short.

    The shape is every dimension the header declares (a 4D or 5D one too), the bytes per voxel its data
    type's, the offset where nibabel will start reading (all three as its data proxy holds them).
    A ``.nii`` must hold vox_offset + voxels x bytes. A ``.nii.gz`` can inflate to at most 1032 times its
    size (deflate's largest ratio), which refuses a tiny file declaring a large volume without reading
    it; one that passes but declares more than 64 MiB is also inflated once, a chunk at a time, and
    refused if it holds less. Counting every file would double the reading time of every large real
    scan; the ratio alone would let a 100 KB file make nibabel allocate 100 MB before refusing it. Both
    together cost one extra pass over large files only and keep a lying file's cost under 64 MiB.
    """
    proxy = img.dataobj
    shape = tuple(int(n) for n in proxy.shape)
    check_voxels(shape, str(path))
    dtype = np.dtype(proxy.dtype)
    end = int(proxy.offset) + math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    declares = f"{path}: header declares {'x'.join(map(str, shape))} {dtype.name} voxels, {end:,} bytes with the header"
    if not path.name.endswith(".gz"):
        if end > size:
            raise SynthscapeError(f"{declares}, but the file holds {size:,} (truncated?)")
    elif end > DEFLATE_RATIO * size:
        raise SynthscapeError(f"{declares}, but {size:,} gzip bytes inflate to at most {DEFLATE_RATIO * size:,}")
    elif end > COUNT_ABOVE and (held := _inflated_size(path, end)) < end:
        raise SynthscapeError(f"{declares}, but the file inflates to {held:,} (truncated?)")
    return end


def read_nifti(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D NIfTI file as (float32 array [X, Y, Z], 4x4 affine), reoriented to RAS+.

    The data are scaled by the header's scl_slope/scl_inter; the affine is nibabel's choice (sform
    if its code is set, else qform). A 4D file with one volume is read as 3D. What the header declares
    is checked against the voxel cap and the file's size before any data is read (``check_declared``).
    """
    path = Path(path)
    if not path.is_file():
        raise SynthscapeError(f"{path}: no such NIfTI file")
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise SynthscapeError(f"{path}: a {type(img).__name__}, expected a NIfTI-1 or NIfTI-2 file")
        check_declared(path, img)
        if img.ndim == 4 and img.shape[3] == 1:
            img = img.slicer[..., 0]
        if img.ndim != 3:
            raise SynthscapeError(f"{path}: shape {img.shape}, expected a 3D volume")
        img = nib.as_closest_canonical(img)
        data = img.get_fdata(dtype=np.float32)
    except SynthscapeError:
        raise
    except Exception as exc:  # nibabel, gzip and zlib each raise their own types for a bad file
        raise SynthscapeError(f"{path}: unreadable NIfTI file ({type(exc).__name__}: {exc})".splitlines()[0]) from exc
    if not np.isfinite(data).all():
        bad = int(np.size(data) - np.isfinite(data).sum())
        raise SynthscapeError(f"{path}: {bad} voxel(s) are NaN or infinite, expected finite HU values")
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise SynthscapeError(f"{path}: the affine (voxel to world) is not finite and invertible, expected voxel spacings and directions")
    return np.ascontiguousarray(data), affine
