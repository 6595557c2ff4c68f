"""What a domain provides, and the registry that finds domains by name.

A domain owns its condition schema, its simulator (the embedded default data), its reader of
real data (``dataset``) and its writers in the field's own formats. Simulators and writers import
no torch; only ``dataset`` does.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from synthscape.core.conditions import ConditionSchema
from synthscape.core.errors import SynthscapeError

log = logging.getLogger("synthscape")
ENTRY_POINT_GROUP = "synthscape.domains"
BUILTIN_MODULES: tuple[str, ...] = ("synthscape.domains.lung_ct.domain", "synthscape.domains.driving.domain")

_registry: dict[str, Domain] = {}
_discovered = False


@runtime_checkable
class Domain(Protocol):
    name: str
    schema: ConditionSchema
    spatial_dims: int

    def simulate(self, out: Path, count: int, seed: int, **options: Any) -> Path:
        """Write a labelled data set folder (files + labels.csv) from the embedded simulator."""

    def dataset(self, path: Path, **options: Any) -> Any:
        """A torch Dataset of ``(image in [-1, 1], condition indices)``; may expose ``.conditions``."""

    def write(self, images: np.ndarray, conditions: Sequence[dict[str, str]], out: Path,
              formats: Sequence[str], **meta: Any) -> list[Path]:
        """Write generated images in the domain's formats; returns the files written."""


def register(domain: Domain, *, replace: bool = False) -> Domain:
    """Make ``domain`` available by name to the CLI and ``synthscape.load``."""
    missing = [attr for attr in ("name", "schema", "spatial_dims", "simulate", "dataset", "write") if not hasattr(domain, attr)]
    if missing:
        raise SynthscapeError(f"{domain!r} is not a Domain: it lacks {', '.join(missing)}")
    if domain.name in _registry and not replace and _registry[domain.name] is not domain:
        raise SynthscapeError(f"a domain named {domain.name!r} is already registered")
    _registry[domain.name] = domain
    return domain


def unregister(name: str) -> None:
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
    _discover()
    return dict(sorted(_registry.items()))


def get_domain(name: str) -> Domain:
    domains = available_domains()
    if name not in domains:
        known = ", ".join(domains) or "none registered yet"
        raise SynthscapeError(f"unknown domain {name!r}; available domains: {known}")
    return domains[name]


def write_samples(domain: Domain, samples: Any, out: Path, formats: Sequence[str] | str | None = None,
                  meta: dict[str, Any] | None = None, preview: int = 64) -> list[Path]:
    """Write generated ``samples`` in the domain's formats plus ``preview.png``, a grid of the
    first ``preview`` of them to look at before opening any file."""
    from synthscape.core.grids import grid, write_png

    files = domain.write(samples.images, samples.conditions, out, formats=formats, seed=samples.seed,
                         indices=samples.indices.tolist(), **(meta or {}))
    if len(samples):
        files.append(write_png(out / "preview.png", grid(samples.images[:preview])))
    return files
