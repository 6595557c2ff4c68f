"""What the training loop needs from a model kind (GAN or VAE), and nothing more."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ContextManager

import torch
from torch import nn

from synthscape.core.config import NetworkConfig, TrainConfig

Autocast = Callable[[], ContextManager]


def no_autocast() -> ContextManager:
    return contextlib.nullcontext()


class Objective(ABC):
    """Owns the networks and optimizers of one model kind and takes one training step.

    ``modules`` and ``optimizers`` are everything a checkpoint must hold; ``sampler_network``
    is the network that becomes ``generator.safetensors``.
    """

    metric_names: tuple[str, ...]
    compiled: tuple[str, ...] = ()  # the modules that TrainConfig.compile hands to torch.compile

    def __init__(self, network: NetworkConfig, train: TrainConfig, cardinalities: list[int], device: torch.device):
        self.network, self.train, self.cardinalities, self.device = network, train, cardinalities, device
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        # Called on each optimizer's parameters before it steps; torchrun averages gradients here.
        self.gradient_sync: Callable[[list[torch.Tensor]], None] = lambda parameters: None

    def optimizer_step(self, name: str) -> None:
        """Step optimizer ``name`` on its (synchronised) gradients."""
        optimizer = self.optimizers[name]
        self.gradient_sync([p for group in optimizer.param_groups for p in group["params"]])
        optimizer.step()

    def adam(self, *modules: nn.Module, lr: float) -> torch.optim.Adam:
        params = [p for m in modules for p in m.parameters()]
        return torch.optim.Adam(params, lr=lr, betas=self.train.betas)

    def latents(self, batch: int, noise: torch.Generator) -> torch.Tensor:
        return torch.randn(batch, self.network.latent_dim, generator=noise, device=self.device)

    @property
    @abstractmethod
    def sampler_network(self) -> nn.Module:
        """The generator that is exported: EMA generator (GAN) or decoder (VAE)."""

    @abstractmethod
    def step(self, images: torch.Tensor, condition: torch.Tensor, step: int, noise: torch.Generator,
             autocast: Autocast = no_autocast) -> dict[str, torch.Tensor]:
        """One optimisation step on one batch; returns detached scalar metrics by name."""

    def train_mode(self) -> None:
        for module in self.modules.values():
            module.train()
        self.sampler_network.eval()
