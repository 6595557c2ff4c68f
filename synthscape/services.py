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
from synthscape.core.sampling.orders import Order, draw_order
from synthscape.core.sampling.sampler import Sampler, Samples
from synthscape.core.sampling.shards import Shard
from synthscape.domains import Domain
from synthscape.domains.base import write_samples

if TYPE_CHECKING:
    from synthscape.core.schema.config import ArtifactConfig, TrainConfig

log = logging.getLogger("synthscape")
GEOMETRY = ("size", "spacing")  # the domain options that set a data set's training geometry


def simulate_data(domain: Domain, out: Path, count: int, seed: int = 0, options: Mapping[str, Any] | None = None,
                  overwrite: bool = False) -> Path:
    """A labelled data set from ``domain``'s embedded simulator, in the new folder ``out``."""
    with new_folder(out, overwrite=overwrite) as tmp:
        domain.simulate(tmp, count=count, seed=seed, **dict(options or {}))
    return out


def train_run(domain: Domain, data: Path, run: Path, *, model: str, config: TrainConfig,
              geometry: Mapping[str, Any] | None = None, resume: bool = False, device: str = "auto",
              resume_overrides: Iterable[str] = ()) -> ArtifactConfig:
    """Train a ``model`` (gan or vae) on the data set folder ``data`` into the run folder ``run``.

    ``geometry`` (size, spacing) reads the data at that size; none: the data's own. The data set's
    ``meta`` travels into config.json, so samples are written back as the data was."""
    from synthscape.core.training.loop import train

    if not Path(data).is_dir():
        raise SynthscapeError(f"--data {data} is not a folder")
    dataset = domain.dataset(Path(data), **dict(geometry or {}))
    return train(dataset, run, model=model, schema=domain.schema, domain=domain.name, config=config,
                 domain_meta=getattr(dataset, "meta", {}), resume=resume, device=device,
                 resume_overrides=resume_overrides)


def sample_order(generator: Sampler, domain: Domain, order: Order, out: Path, *, seed: int = 0, start: int = 0,
                 batch_size: int = 16, formats: Sequence[str] | None = None, shard: Shard | None = None,
                 overwrite: bool = False, inputs: Iterable[Path] = ()) -> tuple[Samples, list[Path]]:
    """Draw every ``(condition, count)`` row of ``order`` (or ``shard``'s part of it) and write them
    in the domain's formats, with ``preview.png``, to the new folder ``out``."""
    with new_folder(out, overwrite=overwrite, inputs=inputs) as tmp:
        samples = draw_order(generator, order, seed=seed, start=start, batch_size=batch_size, progress=True,
                             shard=shard)
        files = write_samples(domain, samples, tmp, formats=formats or (), meta=generator.domain_meta)
    return samples, files


def export_run(run: Path, out: Path, precision: str = "fp32", opset: int = 17, overwrite: bool = False) -> dict:
    """The run's generator as the ONNX file ``out``, checked for parity with torch; returns the checks."""
    from synthscape.exports.onnx_export import export_onnx

    if out.suffix != ".onnx":
        raise SynthscapeError(f"--out {out} must end in .onnx")
    if out.exists() and not overwrite:
        raise SynthscapeError(f"{out} already exists; pass --overwrite to replace it")
    return export_onnx(run, out, opset=opset, precision=precision)
