"""Where a layout model's label maps come from when it samples: the domain's simulator, or a folder.

With no ``--layouts``, the domain's simulator draws each sample's label map from that sample's
complete condition at ``--size`` (default: the training data's size), from the sample's own
stream (``core.sampling.sampler.layout_stream``): sample ``i`` depends on (seed, i) alone. With
``--layouts DIR`` (a folder in the form of the training data: a ``synthscape simulate`` output,
or real volumes with a ``mask`` column), its label maps are rendered in its row order, each with
its row's condition, read through the same pipeline as training data (orientation, spacing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.limits import check_voxels
from synthscape.core.sampling.orders import Order
from synthscape.core.sampling.sampler import LayoutSource, Sampler, layout_stream
from synthscape.core.schema.labelmap import Layout
from synthscape.domains import Domain
from synthscape.domains.base import layout_support


def render_size(generator: Sampler, domain: Domain, size: int | None) -> tuple[int, ...]:
    """The label-map size to render: ``size`` on every axis, else the training data's (``domain_meta``
    ``size``), else the training crop's; each side must be a multiple of the generator's stride."""
    dims = domain.spatial_dims
    if size is not None:
        sides = (int(size),) * dims
    elif generator.domain_meta.get("size"):  # a side per axis (lung-ct), or one for a square (driving)
        sides = tuple(int(s) for s in np.broadcast_to(np.asarray(generator.domain_meta["size"]), (dims,)))
    else:
        sides = tuple(generator.config.network.image_size)
    check_voxels(sides, "--size", "asks for")
    stride = 2 ** (len(generator.config.network.generator_channels) - 1)
    if any(s % stride for s in sides):
        raise SynthscapeError(f"--size {list(sides)}: every side must be a multiple of {stride} for this generator")
    return sides


def simulated_layouts(generator: Sampler, domain: Domain, size: int | None) -> LayoutSource:
    """Label maps drawn by ``domain``'s simulator for each sample's condition, at ``render_size``."""
    layout_support(domain)
    sides = render_size(generator, domain, size)
    meta = generator.domain_meta

    def draw(condition: dict[str, str], seed: int, index: int) -> np.ndarray:
        return domain.draw_layout(condition, sides, meta, layout_stream(seed, index))

    return draw


def folder_layouts(generator: Sampler, domain: Domain, folder: Path, start: int = 0,
                   count: int | None = None, allow_outside_paths: bool = False) -> tuple[Order, LayoutSource]:
    """The order (one sample per row of ``folder``'s labels.csv, with that row's condition, the
    first ``count`` rows) and the label maps of those rows, read as training data is read at the
    run's spacing and size (``domain_meta``)."""
    layout_support(domain)
    if not Path(folder).is_dir():
        raise SynthscapeError(f"--layouts {folder} is not a folder (expected files + labels.csv with a mask column)")
    geometry = {k: generator.domain_meta[k] for k in ("size", "spacing") if generator.domain_meta.get(k)}
    outside = {"allow_outside_paths": True} if allow_outside_paths else {}
    try:
        dataset = domain.dataset(Path(folder), layout=True, progress=False, **geometry, **outside)
    except ImportError as exc:  # the edge install: the data-set reader is the training one (MONAI)
        raise SynthscapeError(f"--layouts reads {folder} as training data is read, which needs torch and MONAI "
                              f"(pip install 'synthscape[train]'; missing: {exc.name}); without them, sample at --size "
                              "with the simulator's layouts") from None
    rows = len(dataset) if count is None else min(count, len(dataset))
    conditions = domain.schema.decode(np.asarray(dataset.conditions[:rows]))

    objects = getattr(dataset, "instances", None)

    def read(condition: Mapping[str, Any], seed: int, index: int) -> np.ndarray | Layout:
        labels = np.asarray(dataset[index - start][2]).astype(np.uint8)
        return labels if objects is None else Layout(labels, objects[index - start])

    return [(c, 1) for c in conditions], read


def check_layout_options(generator: Sampler, size: int | None, layouts: Path | None,
                         conflicting: Sequence[str]) -> None:
    """Refuse ``--size``/``--layouts`` for a class-only model, and options that ``--layouts`` replaces."""
    if generator.label_map is None and (size is not None or layouts is not None):
        raise SynthscapeError("--size and --layouts are for layout models (trained with --layout); this one is class-only")
    if layouts is not None and conflicting:
        raise SynthscapeError(f"--layouts renders its folder's rows with their own conditions: drop {', '.join(conflicting)}")
