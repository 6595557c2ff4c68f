"""Conditional VAE: conditional encoder, reparameterisation, the shared generator as decoder.

Loss is the negative ELBO with a Gaussian likelihood (summed squared error per sample) and a KL
term weighted by ``kl_beta``, warmed up linearly over ``kl_warmup_steps`` so the decoder learns
to use the latent before the prior pulls it in.
"""

from __future__ import annotations

import torch
from torch import nn

from synthscape.core.networks.nets import ConditionalEncoder, build_generator
from synthscape.core.training.objective import Autocast, Objective, no_autocast


def kl_per_sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions, one value per sample ``[B]``."""
    return (-0.5 * (1 + logvar - mu.square() - logvar.exp())).sum(1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions, averaged over the batch."""
    return kl_per_sample(mu, logvar).mean()


class VAE(Objective):
    """Conditional VAE.

    Under DP-SGD (``make_private``) the encoder *and* the decoder are private: the decoder sees
    each real image through the reconstruction loss, so privatising the encoder alone would leave
    the exported decoder free to memorise. One sample's gradient over both is clipped as one
    vector, and the guarantee covers the whole VAE (and so the exported decoder).
    """

    metric_names = ("loss", "reconstruction", "kl", "kl_weight")
    compiled = ("encoder", "decoder")
    private_modules = ("encoder", "decoder")
    private_optimizer = "vae"

    def __init__(self, network, train, cardinalities, device):
        super().__init__(network, train, cardinalities, device)
        self.encoder = ConditionalEncoder(network, cardinalities).to(device)
        self.decoder = build_generator(network, cardinalities).to(device)
        self.modules = {"encoder": self.encoder, "decoder": self.decoder}
        self.optimizers = {"vae": self.adam(self.encoder, self.decoder, lr=train.lr_generator)}

    @property
    def sampler_network(self) -> nn.Module:
        """The decoder: the exported generator. The encoder serves training only."""
        return self.decoder

    def train_mode(self) -> None:
        """Encoder and decoder both in training mode; overrides the base, which would put the
        sampler network (here the trained decoder) in eval."""
        self.encoder.train()
        self.decoder.train()

    def kl_weight(self, step: int) -> float:
        """The KL term's weight at ``step``: ``kl_beta`` ramped up linearly over ``kl_warmup_steps``."""
        return self.train.kl_beta * min(1.0, step / max(1, self.train.kl_warmup_steps))

    def step(self, images, condition, step, noise, autocast: Autocast = no_autocast, layout=None):
        """One negative-ELBO step on the batch; returns detached metrics by name. An empty batch
        (Poisson sampling, DP only) still takes the noise-only step, so the accountant's count holds."""
        weight = self.kl_weight(step)
        self.optimizers["vae"].zero_grad(set_to_none=True)
        if images.shape[0] == 0:  # only a Poisson batch (DP) is ever empty: the step is noise alone
            self.dp.no_data()
            self.optimizer_step("vae", noise)
            return {"kl_weight": torch.tensor(weight)}
        with autocast():
            mu, logvar = self.encoder(images, condition, layout)
            mu, logvar = mu.float(), logvar.float()
            z = mu + torch.randn(mu.shape, generator=noise, device=self.device) * (0.5 * logvar).exp()
            reconstruction = self.render(self.decoder, z, condition, layout, self.spatial_noise(layout, noise)).float()
        rec_each = (reconstruction - images.float()).square().flatten(1).sum(1)
        kl_each = kl_per_sample(mu, logvar)
        rec, kl = rec_each.mean(), kl_each.mean()
        loss = rec + weight * kl
        if self.dp is not None:  # per-sample gradients of the sum; DPOptimizer divides by the expected batch
            (rec_each + weight * kl_each).sum().backward()
        else:
            loss.backward()
        self.optimizer_step("vae", noise)
        return {"loss": loss.detach(), "reconstruction": rec.detach(), "kl": kl.detach(),
                "kl_weight": torch.tensor(weight)}
