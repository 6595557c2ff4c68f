"""What the training loop needs from a model kind (GAN or VAE), and nothing more."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ContextManager

import torch
from torch import nn

from synthscape.core.schema.config import NetworkConfig, TrainConfig

if TYPE_CHECKING:
    from synthscape.core.schema.conditions import ConditionPrior
    from synthscape.core.training.privacy import DPSGD, PrivacyPlan

Autocast = Callable[[], ContextManager]


def no_autocast() -> ContextManager:
    """Forward passes as they are, in float32: the default ``Autocast``, as CPU training has it."""
    return contextlib.nullcontext()


class Objective(ABC):
    """Owns the networks and optimizers of one model kind and takes one training step.

    ``modules`` and ``optimizers`` are everything a checkpoint must hold; ``sampler_network``
    is the network that becomes ``generator.safetensors``.
    """

    metric_names: tuple[str, ...]
    compiled: tuple[str, ...] = ()  # the modules that TrainConfig.compile hands to torch.compile
    # DP-SGD (core/training/privacy.py): the modules that receive a gradient from a real sample, and their optimizer
    private_modules: tuple[str, ...] = ()
    private_optimizer: str = ""

    def __init__(self, network: NetworkConfig, train: TrainConfig, cardinalities: list[int], device: torch.device):
        self.network, self.train, self.cardinalities, self.device = network, train, cardinalities, device
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        # Called on each optimizer's parameters before it steps; torchrun averages gradients here.
        self.gradient_sync: Callable[[list[torch.Tensor]], None] = lambda parameters: None
        self.dp: DPSGD | None = None

    def make_private(self, plan: PrivacyPlan, prior: ConditionPrior) -> None:
        """Train ``private_modules`` with DP-SGD from now on: their optimizer becomes Opacus'
        ``DPOptimizer`` (same state_dict, so checkpoints keep their layout)."""
        from synthscape.core.training.privacy import DPSGD

        modules = {name: self.modules[name] for name in self.private_modules}
        self.dp = DPSGD(plan, modules, self.optimizers[self.private_optimizer])
        self.optimizers[self.private_optimizer] = self.dp.optimizer

    def optimizer_step(self, name: str, noise: torch.Generator | None = None) -> None:
        """Step optimizer ``name`` on its (synchronised) gradients; a private one draws its DP noise from ``noise``."""
        optimizer = self.optimizers[name]
        if self.dp is not None and optimizer is self.dp.optimizer:
            if noise is None:
                raise ValueError(f"the private optimizer {name!r} needs the run's noise generator")
            self.dp.use_noise(noise)
        self.gradient_sync([p for group in optimizer.param_groups for p in group["params"]])
        optimizer.step()

    def unprivate(self) -> ContextManager:
        """Run the private modules outside DP-SGD's bookkeeping (no-op when not private)."""
        return self.dp.paused() if self.dp is not None else contextlib.nullcontext()

    def adam(self, *modules: nn.Module, lr: float) -> torch.optim.Adam:
        """Adam over ``modules``' parameters with the run's ``betas`` (one optimizer may span several
        modules: the VAE's encoder and decoder)."""
        params = [p for m in modules for p in m.parameters()]
        return torch.optim.Adam(params, lr=lr, betas=self.train.betas)

    def latents(self, batch: int, noise: torch.Generator) -> torch.Tensor:
        """Standard-normal latents ``[batch, latent_dim]`` from ``noise``, the run's checkpointed
        generator, so a resumed run draws the same ones as an uninterrupted one."""
        return torch.randn(batch, self.network.latent_dim, generator=noise, device=self.device)

    def spatial_noise(self, layout: torch.Tensor | None, noise: torch.Generator) -> torch.Tensor | None:
        """A layout model's noise map ``[B, 1, *label map size]`` from ``noise`` (None without a layout)."""
        if layout is None:
            return None
        return torch.randn((layout.shape[0], 1, *layout.shape[1:]), generator=noise, device=self.device)

    @staticmethod
    def render(generator: nn.Module, z: torch.Tensor, condition: torch.Tensor, layout: torch.Tensor | None,
               noise_map: torch.Tensor | None) -> torch.Tensor:
        """The generator on its inputs: ``(z, condition)``, and a layout model's label map and noise map."""
        return generator(z, condition) if layout is None else generator(z, condition, layout, noise_map)

    @property
    @abstractmethod
    def sampler_network(self) -> nn.Module:
        """The generator that is exported: EMA generator (GAN) or decoder (VAE)."""

    @abstractmethod
    def step(self, images: torch.Tensor, condition: torch.Tensor, step: int, noise: torch.Generator,
             autocast: Autocast = no_autocast, layout: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One optimisation step on one batch (a layout model's: with its label maps); returns
        detached scalar metrics by name."""

    def train_mode(self) -> None:
        """Trained modules in training mode and ``sampler_network`` in eval: the GAN's EMA copy is
        never trained itself (the VAE overrides this: its sampler network is the trained decoder)."""
        for module in self.modules.values():
            module.train()
        self.sampler_network.eval()
