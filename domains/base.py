"""What a domain provides, and the registry that finds domains by name.

A domain owns its condition schema, its simulator (the embedded default data), its reader of
real data (``dataset``) and its writers in the field's own formats. Simulators and writers import
no torch; only ``dataset`` does.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from synthscape.core.errors import SynthscapeError
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
        """Write generated images in the domain's formats; returns the files written."""


def read_meta(meta_type: type[Meta], meta: Mapping[str, Any] | None, domain: str) -> Meta:
    """``meta`` (a dataset's ``.meta``, config.json's ``domain_meta``) as the domain's dataclass.

    A key the dataclass does not declare is refused in one line naming the valid ones; keys left
    out take the dataclass's defaults."""
    known = [f.name for f in dataclasses.fields(meta_type)]
    unknown = sorted(set(meta or {}) - set(known))
    if unknown:
        raise SynthscapeError(f"{domain} meta has unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"valid keys: {', '.join(known)}")
    return meta_type(**dict(meta or {}))


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


def write_samples(domain: Domain, samples: Any, out: Path, formats: Sequence[str] | str | None = None,
                  meta: dict[str, Any] | None = None, preview: int = 64) -> list[Path]:
    """Write generated ``samples`` in the domain's formats plus ``preview.png``, a grid of the
    first ``preview`` of them to look at before opening any file."""
    from synthscape.core.files.grids import grid, write_png

    files = domain.write(samples.images, samples.conditions, out, formats=formats, seed=samples.seed,
                         indices=samples.indices.tolist(), meta=meta)
    if len(samples):
        files.append(write_png(out / "preview.png", grid(samples.images[:preview])))
    return files
