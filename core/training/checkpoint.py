"""Checkpoints that a crash cannot corrupt, and that load without unpickling anything.

Layout: ``checkpoint/step-00000500/{weights.safetensors, state.pt}`` plus ``checkpoint/latest.json``
naming the newest complete one. A checkpoint folder is built under a temporary name and renamed
into place; ``latest.json`` is replaced atomically after it, so it always names a whole folder.
Old folders are renamed to a hidden temporary name before they are deleted, so a kill at any
moment leaves every ``step-*`` folder whole; the next save sweeps the hidden leftovers away.
Weights go through safetensors; optimizer and RNG state (tensors, numbers, lists) through
``torch.save`` and back through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import atomic_dir, remove_leftovers, remove_tree, write_json
from synthscape.core.networks.weights import flatten_state, load_modules, read_safetensors

KEEP = 2


def save_checkpoint(run: Path, step: int, modules: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer], rng: Mapping[str, torch.Tensor]) -> Path:
    """Write ``checkpoint/step-N`` crash-safely, point latest.json at it and prune to the ``KEEP``
    newest; returns the folder.

    ``modules`` go to weights.safetensors; ``optimizers``' state, ``step`` and ``rng`` (the noise and
    torch RNG states, the DP accountant: what a bit-exact resume needs beyond weights) go to
    state.pt as tensors, numbers and lists only, so it loads with ``weights_only=True``."""
    root = run / "checkpoint"
    final = root / f"step-{step:08d}"
    remove_leftovers(root)  # this folder is the run's alone: any temporary in it is a killed save's
    if final.exists():  # left by a run that crashed before updating latest.json: not the latest
        remove_tree(final)
    with atomic_dir(final) as tmp:
        save_file(flatten_state(modules), tmp / "weights.safetensors")
        state = {"step": step, "optimizers": {k: o.state_dict() for k, o in optimizers.items()}, "rng": dict(rng)}
        torch.save(state, tmp / "state.pt")
    write_json(root / "latest.json", {"step": step, "folder": final.name})
    prune(root, step)
    return final


def prune(root: Path, step: int) -> None:
    """Keep the ``KEEP`` newest checkpoints up to ``step``; later ones are a killed run's, never named by latest.json."""
    folders = sorted((int(p.name[5:]), p) for p in root.iterdir() if re.fullmatch(r"step-\d+", p.name) and p.is_dir())
    kept = [p for s, p in folders if s <= step][-KEEP:]
    for _, folder in folders:
        if folder not in kept:
            remove_tree(folder)


def latest_checkpoint(run: Path) -> Path | None:
    """The folder latest.json names, or None when the run has no checkpoint yet. A pointer that
    cannot be read or names a missing folder is refused, not taken as None: that would start
    the run over and discard its progress."""
    pointer = run / "checkpoint" / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text())["folder"]
    except (ValueError, KeyError, TypeError):
        raise SynthscapeError(f"{pointer} is not a checkpoint pointer (expected JSON with a \"folder\")") from None
    folder = run / "checkpoint" / str(name)
    if not folder.is_dir() or folder.parent != run / "checkpoint":
        raise SynthscapeError(f"{pointer} names {folder.name}, which does not exist")
    return folder


def load_checkpoint(folder: Path, modules: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer]) -> tuple[int, dict[str, Any]]:
    """Restore modules and optimizers in place; return the step and the saved RNG states."""
    load_modules(modules, read_safetensors(folder / "weights.safetensors"), str(folder / "weights.safetensors"))
    try:
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad or unsafe file
        raise SynthscapeError(f"{folder / 'state.pt'} could not be loaded safely: {str(exc).splitlines()[0]}") from None
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    return int(state["step"]), state["rng"]
