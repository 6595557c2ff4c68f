"""A trained generator on disk: ``config.json`` + ``generator.safetensors``, and loading it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import atomic_path, write_json
from synthscape.core.networks.nets import build_generator, check_inputs
from synthscape.core.networks.weights import load_modules, read_safetensors
from synthscape.core.sampling.sampler import Sampler
from synthscape.core.schema.config import ArtifactConfig

CONFIG = "config.json"
WEIGHTS = "generator.safetensors"


def save_generator(run: str | Path, config: ArtifactConfig, generator: nn.Module) -> None:
    """Write the weights, then the config that describes them; each atomically."""
    run = Path(run)
    state = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    with atomic_path(run / WEIGHTS) as tmp:
        save_file(state, tmp, metadata={"format": "synthscape-generator", "step": str(config.step)})
    write_json(run / CONFIG, config.to_dict())


class TorchSampler(Sampler):
    """Samples a generator (class-only or layout) with torch; see ``Sampler.sample``."""

    def __init__(self, config: ArtifactConfig, generator: nn.Module, device: str | torch.device = "cpu"):
        self.config = config
        self.schema, self.prior = config.schema, config.prior
        self.latent_dim = config.network.latent_dim
        self.domain, self.domain_meta = config.domain, config.domain_meta
        self.label_map = config.label_map
        self.device = torch.device(device)
        self.network = generator

    @torch.no_grad()
    def generate(self, latents: np.ndarray, condition: np.ndarray, layout: np.ndarray | None = None,
                 noise: np.ndarray | None = None) -> np.ndarray:
        """float32 ``[B, Z]`` + int64 ``[B, A]`` (+ a layout model's label maps and noise) -> float32
        images ``[B, C, *size]``, in eval mode (a network still being trained is put back in
        training mode afterwards)."""
        z = torch.as_tensor(latents, device=self.device)
        c = torch.as_tensor(condition, device=self.device)
        spatial = [torch.as_tensor(a, device=self.device) for a in (layout, noise) if a is not None]
        check_inputs(self.config.network, self.schema.cardinalities, z, c, None, *spatial)
        if self.config.network.layout_classes and len(spatial) != 2:
            raise SynthscapeError("this layout model needs a label map and a noise map beside z and the condition")
        was_training = self.network.training
        self.network.eval()
        try:
            return self.network(z, c, *spatial).float().cpu().numpy()
        finally:
            self.network.train(was_training)


def load_run(path: str | Path, device: str | torch.device = "cpu") -> TorchSampler:
    """Load a generator directory written by ``synthscape train``."""
    path = Path(path)
    if not path.is_dir():
        raise SynthscapeError(f"{path} is not a generator directory (expected config.json and {WEIGHTS} inside)")
    config = ArtifactConfig.read(path / CONFIG)
    generator = build_generator(config.network, config.schema.cardinalities)
    tensors = read_safetensors(path / WEIGHTS)
    load_modules({"generator": generator}, {f"generator.{k}": v for k, v in tensors.items()}, str(path / WEIGHTS))
    return TorchSampler(config, generator.to(device).eval(), device)
