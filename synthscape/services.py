"""One function per verb, called by the command line and by ``synthscape run`` alike, so a fix
lands once: simulate a data set, train a run, sample an order, export a generator. (Evaluation is
``synthscape.evaluate.evaluate_model``.)

Each writes its output whole or not at all (``core.files.atomic``) and refuses to replace what
the user made unless asked (``overwrite``). They take checked values, not ``argparse`` namespaces.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import new_folder
from synthscape.core.files.lock import writer_lock
from synthscape.core.limits import MAX_BATCH, MAX_COUNT, MAX_WORKERS, check_bound, check_voxels
from synthscape.core.sampling.orders import Order, draw_batches
from synthscape.core.sampling.sampler import LayoutSource, Sampler
from synthscape.core.sampling.shards import Shard
from synthscape.domains import Domain
from synthscape.domains.base import Written, layout_support, read_meta, write_samples

if TYPE_CHECKING:
    from synthscape.core.schema.config import ArtifactConfig, TrainConfig

log = logging.getLogger("synthscape")
GEOMETRY = ("size", "spacing")  # the domain options that set a data set's training geometry


def simulate_data(domain: Domain, out: Path, count: int, seed: int = 0, options: Mapping[str, Any] | None = None,
                  overwrite: bool = False) -> Path:
    """A labelled data set from ``domain``'s embedded simulator, in the new folder ``out``."""
    check_sizes(domain, count=count, options=options or {})
    with new_folder(out, overwrite=overwrite) as tmp:
        domain.simulate(tmp, count=count, seed=seed, **dict(options or {}))
    return out


def check_sizes(domain: Domain, count: int | None = None, options: Mapping[str, Any] | None = None) -> None:
    """Refuse an absurd ``--count``, ``--size`` or ``--workers`` in one line, before any work or memory."""
    options = options or {}
    if count is not None:
        check_bound(count, "--count", MAX_COUNT)
    if options.get("size") is not None:
        sizes = options["size"] if isinstance(options["size"], (list, tuple)) else [options["size"]] * domain.spatial_dims
        check_voxels(sizes, "--size", "asks for")
    if options.get("workers") is not None:
        check_bound(options["workers"], "--workers", MAX_WORKERS)


def train_run(domain: Domain, data: Path, run: Path, *, model: str, config: TrainConfig,
              geometry: Mapping[str, Any] | None = None, resume: bool = False, device: str = "auto",
              resume_overrides: Iterable[str] = (), allow_outside_paths: bool = False, layout: bool = False,
              crop: int | None = None) -> ArtifactConfig:
    """Train a ``model`` (gan or vae) on the data set folder ``data`` into the run folder ``run``.

    ``geometry`` (size, spacing) reads the data at that size; none: the data's own. The data set's
    ``meta`` travels into config.json, so samples are written back as the data was.
    ``allow_outside_paths`` lets labels.csv name files outside ``data`` (passed to the domain only
    when set, so a domain without the option still trains on its own folder). ``layout``: a layout
    model, trained on the label maps the data lists, on crops of side ``crop``."""
    from synthscape.core.training.loop import run_lock, train

    if not Path(data).is_dir():
        raise SynthscapeError(f"--data {data} is not a folder")
    check_sizes(domain, options=geometry)
    outside = {"allow_outside_paths": True} if allow_outside_paths else {}
    labels = layout_support(domain) if layout else None
    if labels is not None:
        outside["layout"] = True
    with run_lock(run):  # before reading the data, which can take minutes: a second writer of the run stops at once
        dataset = domain.dataset(Path(data), **dict(geometry or {}), **outside)
        return train(dataset, run, model=model, schema=domain.schema, domain=domain.name, config=config,
                     domain_meta=getattr(dataset, "meta", {}), resume=resume, device=device,
                     resume_overrides=resume_overrides, labels=labels, crop=crop)


def sample_order(generator: Sampler, domain: Domain, order: Order, out: Path, *, seed: int = 0, start: int = 0,
                 batch_size: int = 16, formats: Sequence[str] | None = None, shard: Shard | None = None,
                 overwrite: bool = False, inputs: Iterable[Path] = (), layouts: LayoutSource | None = None) -> Written:
    """Draw every ``(condition, count)`` row of ``order`` (or ``shard``'s part of it) and write them
    in the domain's formats, with ``preview.png``, to the new folder ``out``: one batch at a time,
    drawn, written and dropped, so memory stays flat however many are ordered. A layout model renders
    the label maps of ``layouts`` (``synthscape.layouts``) and writes each beside its sample."""
    total = sum(count for _, count in order)
    check_bound(total, "the number of samples ordered", MAX_COUNT)
    check_bound(batch_size, "--batch-size", MAX_BATCH)
    read_meta(domain.meta_type, generator.domain_meta, domain.name)  # before drawing anything, not at the first write
    with new_folder(out, overwrite=overwrite, inputs=inputs) as tmp:
        batches = draw_batches(generator, order, seed=seed, start=start, batch_size=batch_size, progress=True,
                               shard=shard, layouts=layouts)
        return write_samples(domain, batches, tmp, formats=formats or (), meta=generator.domain_meta)


def export_run(run: Path, out: Path, precision: str = "fp32", opset: int = 17, overwrite: bool = False) -> dict:
    """The run's generator as the ONNX file ``out``, checked for parity with torch; returns the checks."""
    from synthscape.exports.onnx_export import export_onnx

    if out.suffix != ".onnx":
        raise SynthscapeError(f"--out {out} must end in .onnx")
    with writer_lock(out):
        if out.is_dir() or (out.exists() and not overwrite):
            raise SynthscapeError(f"{out} already exists{' and is a folder' if out.is_dir() else ''}; "
                                  f"{'choose another --out' if out.is_dir() else 'pass --overwrite to replace it'}")
        return export_onnx(run, out, opset=opset, precision=precision)
