"""Conditional VAE: conditional encoder, reparameterisation, the shared generator as decoder.

Loss is the negative ELBO with a Gaussian likelihood (summed squared error per sample) and a KL
term weighted by ``kl_beta``, warmed up linearly over ``kl_warmup_steps`` so the decoder learns
to use the latent before the prior pulls it in.
"""

from __future__ import annotations

import torch
from torch import nn

from synthscape.core.networks import ConditionalEncoder, ConditionalGenerator
from synthscape.core.objective import Autocast, Objective, no_autocast


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.square() - logvar.exp())).sum(1).mean()


class VAE(Objective):
    metric_names = ("loss", "reconstruction", "kl", "kl_weight")
    compiled = ("encoder", "decoder")

    def __init__(self, network, train, cardinalities, device):
        super().__init__(network, train, cardinalities, device)
        self.encoder = ConditionalEncoder(network, cardinalities).to(device)
        self.decoder = ConditionalGenerator(network, cardinalities).to(device)
        self.modules = {"encoder": self.encoder, "decoder": self.decoder}
        self.optimizers = {"vae": self.adam(self.encoder, self.decoder, lr=train.lr_generator)}

    @property
    def sampler_network(self) -> nn.Module:
        return self.decoder

    def train_mode(self) -> None:
        self.encoder.train()
        self.decoder.train()

    def kl_weight(self, step: int) -> float:
        return self.train.kl_beta * min(1.0, step / max(1, self.train.kl_warmup_steps))

    def step(self, images, condition, step, noise, autocast: Autocast = no_autocast):
        with autocast():
            mu, logvar = self.encoder(images, condition)
            mu, logvar = mu.float(), logvar.float()
            z = mu + torch.randn(mu.shape, generator=noise, device=self.device) * (0.5 * logvar).exp()
            reconstruction = self.decoder(z, condition).float()
        rec = (reconstruction - images.float()).square().flatten(1).sum(1).mean()
        kl = kl_to_standard_normal(mu, logvar)
        weight = self.kl_weight(step)
        loss = rec + weight * kl
        self.optimizers["vae"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_step("vae")
        return {"loss": loss.detach(), "reconstruction": rec.detach(), "kl": kl.detach(),
                "kl_weight": torch.tensor(weight)}
