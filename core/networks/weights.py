"""Network weights in safetensors: one flat file for several modules, loaded back strictly.

Never a pickle: a weights file from anywhere is only tensors. Shared by the run's exportable
generator (``artifacts.py``) and the training checkpoints (``core/training/checkpoint.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from synthscape.core.errors import SynthscapeError


def flatten_state(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """``{"generator": G, ...}`` -> ``{"generator.layer.weight": tensor, ...}``, contiguous, on CPU."""
    return {f"{name}.{key}": value.detach().to("cpu").contiguous()
            for name, module in modules.items() for key, value in module.state_dict().items()}


def load_modules(modules: Mapping[str, nn.Module], tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Load each module's slice of ``tensors``; any missing or extra key is an error naming ``source``."""
    for name, module in modules.items():
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        result = module.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise SynthscapeError(
                f"{source} does not match the {name} network: missing {result.missing_keys[:3]}, "
                f"unexpected {result.unexpected_keys[:3]}"
            )


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; a missing or unreadable file is a one-line error naming it."""
    if not path.is_file():
        raise SynthscapeError(f"{path} not found")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise SynthscapeError(f"{path} is not a readable safetensors file: {exc}") from None
