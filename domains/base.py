"""What a domain provides, and the registry that finds domains by name.

A domain owns its condition schema, its simulator (the embedded default data), its reader of
real data (``dataset``) and its writers in the field's own formats. Simulators and writers import
no torch; only ``dataset`` does.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.schema.conditions import ConditionSchema

log = logging.getLogger("synthscape")
ENTRY_POINT_GROUP = "synthscape.domains"
BUILTIN_MODULES: tuple[str, ...] = ("synthscape.domains.lung_ct.domain", "synthscape.domains.driving.domain")

REQUIRED = ("name", "schema", "spatial_dims", "meta_type", "simulate", "dataset", "write")
Meta = TypeVar("Meta")

_registry: dict[str, Domain] = {}
_discovered = False


@runtime_checkable
class Domain(Protocol):
    """A field's data: its conditions, simulator, reader of real data and writers.

    A domain that supports layout models also has ``labels`` (its ``LabelMapSchema``), a
    ``draw_layout(condition, size, meta, rng)`` that draws a label map for a condition with its
    simulator, a ``dataset(..., layout=True)`` whose items carry label maps, and a ``write`` that
    takes ``layouts=`` and writes them beside the samples (``layout_support`` checks for them).
    Where its layouts know their objects, ``draw_layout`` returns a ``Layout`` with an instance map
    (and the dataset has ``.instances``), ``write`` takes ``instances=`` too, and an optional
    ``finish_samples(out, rows)`` writes what covers a whole order (driving: COCO and the splits)
    after its last batch.

    ``meta_type`` is a dataclass declaring what a data set records about its geometry and
    intensity mapping: the ``meta`` dict its dataset hands to training, stored as config.json's
    ``domain_meta`` and handed back to ``write``, so samples are written as the data was (a CT
    volume's spacing, a HU window). ``write`` refuses a key the dataclass does not declare
    (``read_meta``): a misspelt ``spacing`` must not fall back to a default silently.
    """

    name: str
    schema: ConditionSchema
    spatial_dims: int
    meta_type: type

    def simulate(self, out: Path, count: int, seed: int, **options: Any) -> Path:
        """Write a labelled data set folder (files + labels.csv) from the embedded simulator."""

    def dataset(self, path: Path, **options: Any) -> Any:
        """A torch Dataset of ``(image in [-1, 1], condition indices)`` with ``.meta`` (the fields
        of ``meta_type`` as a JSON-ready dict); may expose ``.conditions``."""

    def write(self, images: np.ndarray, conditions: Sequence[dict[str, str]], out: Path,
              formats: Sequence[str] | str | None = None, *, seed: int | None = None,
              indices: Sequence[int] | None = None, meta: Mapping[str, Any] | None = None) -> list[Path]:
        """Write generated images in the domain's formats, plus a labels.csv of their rows; returns
        the files written. Files are named by sample index (``indices``), so the batches of one
        order written into one folder never collide (``write_samples`` merges their labels.csv)."""


def read_meta(meta_type: type[Meta], meta: Mapping[str, Any] | None, domain: str) -> Meta:
    """``meta`` (a dataset's ``.meta``, config.json's ``domain_meta``) as the domain's dataclass.

    A key the dataclass does not declare, or a value its own check (``__post_init__``) or
    constructor refuses, is refused in one line naming the valid keys and, for a ``domain_meta``
    read from a file (``core.schema.config.DomainMeta``), that file; keys left out take the
    dataclass's defaults."""
    where = getattr(meta, "source", None)
    prefix = f"{where}: {domain} domain_meta" if where else f"{domain} meta"
    if meta is not None and not isinstance(meta, Mapping):
        raise SynthscapeError(f"{prefix} must be a mapping of its keys, got {type(meta).__name__}")
    known = [f.name for f in dataclasses.fields(meta_type) if f.init]
    unknown = [key for key in meta or {} if key not in known]
    if unknown:
        raise SynthscapeError(f"{prefix} has unknown key(s) {shown(', '.join(map(repr, unknown)))}; "
                              f"valid keys: {', '.join(known)}")
    try:
        return meta_type(**dict(meta or {}))
    except SynthscapeError as exc:
        raise SynthscapeError(f"{prefix}: {exc}") from None
    except (TypeError, ValueError) as exc:  # a plug-in's dataclass without checks of its own
        raise SynthscapeError(f"{prefix} is malformed: {shown(str(exc), 200)}") from None


def layout_support(domain: Domain) -> Any:
    """``domain.labels`` if the domain renders layouts (label maps), else one line saying it does not."""
    if getattr(domain, "labels", None) is None or not hasattr(domain, "draw_layout"):
        raise SynthscapeError(f"the {domain.name} domain has no label maps yet: layout models (--layout, --layouts) "
                              "are for domains that declare them (synthscape domains lists them)")
    return domain.labels


def register(domain: Domain, *, replace: bool = False) -> Domain:
    """Make ``domain`` available by name to the CLI and ``synthscape.load``."""
    missing = [attr for attr in REQUIRED if not hasattr(domain, attr)]
    if missing:
        raise SynthscapeError(f"{domain!r} is not a Domain: it lacks {', '.join(missing)}")
    if domain.name in _registry and not replace and _registry[domain.name] is not domain:
        raise SynthscapeError(f"a domain named {domain.name!r} is already registered")
    _registry[domain.name] = domain
    return domain


def unregister(name: str) -> None:
    """Forget the domain called ``name`` (tests register throwaway domains)."""
    _registry.pop(name, None)


def _discover() -> None:
    """Import built-in domains and load entry points once; a broken plug-in is logged, not fatal."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            register(loaded() if isinstance(loaded, type) else loaded, replace=True)
        except Exception as exc:  # a third-party plug-in must not break the CLI
            log.warning("domain plug-in %s could not be loaded: %s", entry.name, exc)


def available_domains() -> dict[str, Domain]:
    """Every registered domain by name, built-in ones and plug-ins, sorted."""
    _discover()
    return dict(sorted(_registry.items()))


def get_domain(name: str) -> Domain:
    """The domain called ``name``; an unknown name is refused with the available ones listed."""
    domains = available_domains()
    if name not in domains:
        known = ", ".join(domains) or "none registered yet"
        raise SynthscapeError(f"unknown domain {name!r}; available domains: {known}")
    return domains[name]


@dataclasses.dataclass
class Written:
    """What ``write_samples`` wrote: the number of samples and files, and the first and last sample
    index (None when there were none). Counts, not lists: it stays small for a million samples."""

    samples: int = 0
    files: int = 0
    first: int | None = None
    last: int | None = None


def write_samples(domain: Domain, batches: Iterable[Any], out: Path, formats: Sequence[str] | str | None = None,
                  meta: dict[str, Any] | None = None, preview: int = 64) -> Written:
    """Write generated ``batches`` in the domain's formats, one at a time, plus ``preview.png``, a grid
    of the first ``preview`` samples to look at before opening any file.

    ``batches`` are ``core.sampling.sampler.Samples`` (``orders.draw_batches`` yields one per network
    call): each is written and dropped before the next is drawn, so memory stays flat in the count.
    ``domain.write`` writes a complete folder, files plus a labels.csv of its own rows; the rows of
    each call are read back and the folder's labels.csv is rewritten with all of them at the end."""
    from synthscape.core.files.grids import grid, write_png
    from synthscape.domains.labels import LABELS, write_labels

    written, rows, header, shown_images = Written(), [], None, []
    for batch in batches:
        layouts = {"layouts": batch.layouts} if batch.layouts is not None else {}
        if batch.instances is not None:
            layouts["instances"] = batch.instances
        files = domain.write(batch.images, batch.conditions, out, formats=formats, seed=batch.seed,
                             indices=batch.indices.tolist(), meta=meta, **layouts)
        with (out / LABELS).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows += list(reader)
            header = header or reader.fieldnames
        written.files += sum(Path(f).name != LABELS for f in files)
        if len(batch):
            written.samples += len(batch)
            written.first = int(batch.indices[0]) if written.first is None else written.first
            written.last = int(batch.indices[-1])
        if sum(map(len, shown_images)) < preview:
            shown_images.append(batch.images[: preview - sum(map(len, shown_images))].copy())
    finish = getattr(domain, "finish_samples", None)
    if finish is not None and rows:  # whole-order files (driving: COCO and splits), which may add columns
        written.files += len(finish(out, rows))
    if header is not None:
        columns = dict.fromkeys([*header, *(key for row in rows for key in row)])
        write_labels(out, rows, domain.schema, extras=[c for c in columns if c not in ("path", *domain.schema.names)])
        written.files += 1
    if written.samples:
        write_png(out / "preview.png", grid(np.concatenate(shown_images)))
        written.files += 1
    return written
