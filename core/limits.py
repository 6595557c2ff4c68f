"""Bounds on what an untrusted file or option may make synthscape allocate.

Data folders, run folders, ONNX files and pipeline files come from other people (docs/privacy.md,
"Threat model"): a 72-byte ``.nii.gz`` can declare a volume of 2048^3 voxels, a config.json a
latent size of 1e9. Every reader checks what it is asked to build against these bounds *before*
allocating it, and refuses in one line naming the file, the value and the bound.

The one bound a user may need to raise is the voxel cap, for very large real scans: set the
environment variable ``SYNTHSCAPE_MAX_VOXELS`` (it reaches DataLoader workers and simulate
processes, which an option would not). The others are far beyond any sensible use.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from synthscape.core.errors import SynthscapeError, shown

MAX_VOXELS_ENV = "SYNTHSCAPE_MAX_VOXELS"
# 512 x 512 x 1024: a long chest CT at full resolution, 1 GiB as float32
DEFAULT_MAX_VOXELS = 2**28
MAX_COUNT = 10_000_000  # samples or simulated items one command makes
MAX_WORKERS = 256  # processes one command starts
MAX_BATCH = 4096  # images in one network call or training step
MAX_SIDE = 16384  # voxels or pixels along one axis of anything synthscape reads or makes


def max_voxels() -> int:
    """The voxel cap: ``SYNTHSCAPE_MAX_VOXELS`` if set (a positive whole number), else 2^28."""
    text = os.environ.get(MAX_VOXELS_ENV)
    if text is None or not text.strip():
        return DEFAULT_MAX_VOXELS
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise SynthscapeError(f"{MAX_VOXELS_ENV}={shown(text)} must be a positive whole number of voxels")
    return value


def check_voxels(shape: Iterable[int], where: str, what: str = "declares") -> int:
    """Refuse a shape with an axis outside 1..``MAX_SIDE`` or more voxels than ``max_voxels()``;
    returns the voxel count. ``where`` names the file or option, ``what`` the verb."""
    shape = [int(s) for s in shape]
    if not shape or min(shape) < 1 or max(shape) > MAX_SIDE:
        raise SynthscapeError(f"{where} {what} a shape of {'x'.join(map(str, shape)) or 'nothing'}, expected "
                              f"1 to {MAX_SIDE} voxels per axis")
    voxels, cap = math.prod(shape), max_voxels()
    if voxels > cap:
        raise SynthscapeError(f"{where} {what} {'x'.join(map(str, shape))} = {voxels:,} voxels, more than the cap of "
                              f"{cap:,}; set {MAX_VOXELS_ENV} to raise it if this is meant")
    return voxels


def check_bound(value: int, name: str, bound: int, where: str = "") -> int:
    """Refuse ``value`` above ``bound`` (``name`` says which option or field, ``where`` which file)."""
    if value > bound:
        prefix = f"{where}: " if where else ""
        raise SynthscapeError(f"{prefix}{name} {value:,} is above the limit of {bound:,}")
    return value
