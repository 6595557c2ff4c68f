"""Conditional GAN: hinge loss, projection critic, lazy R1 and an EMA generator."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from synthscape.core.networks.nets import ProjectionDiscriminator, build_generator
from synthscape.core.training.objective import Autocast, Objective, no_autocast


class EMA(nn.Module):
    """Exponential moving average of a model's weights, with a warmed-up decay.

    A fixed 0.999 decay is still mostly the initial weights after 1000 steps (measured), so the
    decay grows as min(max_decay, (1 + t) / (10 + t)).
    """

    def __init__(self, model: nn.Module, max_decay: float):
        super().__init__()
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.max_decay = max_decay

    def decay(self, step: int) -> float:
        """The decay at ``step``: ``(1 + step) / (10 + step)``, capped at ``max_decay``: low at
        first, so the average soon leaves the initial weights behind."""
        return min(self.max_decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the averaged weights ``1 - decay(step)`` of the way to ``model``'s; buffers are copied,
        not averaged."""
        weight = 1.0 - self.decay(step)
        torch._foreach_lerp_(list(self.module.parameters()), list(model.parameters()), weight)
        for mine, theirs in zip(self.module.buffers(), model.buffers()):
            mine.copy_(theirs)

    def state_dict(self, *args, **kwargs):
        """The averaged generator's own state_dict, keyed as a plain ``ConditionalGenerator``'s
        (no ``module.`` prefix), so checkpoints hold ``ema.*`` in the generator's layout."""
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load a state_dict keyed as ``state_dict`` writes it (a plain generator's keys)."""
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)


def mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor, half: int, noise_map: torch.Tensor | None = None) -> torch.Tensor:
    """Mao et al. 2019 (MSGAN): samples ``i`` and ``i + half`` share a condition and differ in the
    latent; the loss falls as their images move apart relative to their latents. The measured
    reason: with projection conditioning, the generator learnt each condition's picture and
    ignored the latent (within-condition diversity 0.05 against 0.15 for real lung phantoms)."""
    image_gap = (fake[:half] - fake[half:2 * half]).abs().flatten(1).mean(1)
    latent_gap = (z[:half] - z[half:2 * half]).abs().mean(1)
    if noise_map is not None:  # a layout model's pairs differ in the noise map as much as in z
        latent_gap = (latent_gap + (noise_map[:half] - noise_map[half:2 * half]).abs().flatten(1).mean(1)) / 2
    return 1.0 / ((image_gap / latent_gap).mean() + 1e-5)


class GAN(Objective):
    """Hinge GAN with a projection critic.

    Under DP-SGD (``make_private``) only the critic is private: the generator never sees a real
    image, it learns from the critic's scores of its own samples, so whatever it learns is
    post-processing of the private critic and needs no noise of its own. For that to hold, its
    step must not read the real batch either: its conditions are drawn from the condition counts
    of config.json (which are released as they are: docs/privacy.md), not taken from the batch.
    """

    metric_names = ("loss_d", "loss_g", "d_real", "d_fake", "r1", "cls_real", "cls_fake", "recon")
    compiled = ("generator", "critic")
    private_modules = ("critic",)
    private_optimizer = "critic"

    def __init__(self, network, train, cardinalities, device):
        super().__init__(network, train, cardinalities, device)
        self.generator = build_generator(network, cardinalities).to(device)
        self.critic = ProjectionDiscriminator(network, cardinalities, classifier=train.classifier_loss > 0).to(device)
        self.ema = EMA(self.generator, train.ema_decay)
        self.modules = {"generator": self.generator, "critic": self.critic, "ema": self.ema}
        self.optimizers = {
            "generator": self.adam(self.generator, lr=train.lr_generator),
            "critic": self.adam(self.critic, lr=train.lr_critic),
        }
        self.prior: tuple[torch.Tensor, torch.Tensor] | None = None

    def make_private(self, plan, prior) -> None:
        """DP-SGD on the critic alone, and from now on the generator step draws its conditions from
        ``prior`` (config.json's counts), never from the real batch. Refuses ``r1_gamma > 0``: the R1
        penalty's double backward has no per-sample gradients."""
        from synthscape.core.errors import SynthscapeError
        from synthscape.core.training.privacy import prior_conditions

        if self.train.r1_gamma > 0:  # core.privacy.private_settings turns it off for training runs
            raise SynthscapeError("DP training needs r1_gamma 0: the R1 penalty's double backward has no per-sample gradients")
        super().make_private(plan, prior)
        self.prior = prior_conditions(prior, self.device)

    @property
    def sampler_network(self) -> nn.Module:
        """The EMA generator: what generator.safetensors holds and the training grids sample from."""
        return self.ema.module

    def r1_penalty(self, images: torch.Tensor, condition: torch.Tensor, layout: torch.Tensor | None = None) -> torch.Tensor:
        """Squared gradient norm of the critic on real images, in float32 (Mescheder et al. 2018)."""
        images = images.detach().float().requires_grad_(True)
        # .forward, not __call__: under TrainConfig.compile the call is compiled, and a compiled
        # graph has no double backward; forward is the same network, eager
        (grad,) = torch.autograd.grad(self.critic.forward(images, condition, layout).sum(), images, create_graph=True)
        return grad.square().flatten(1).sum(1).mean()

    def step(self, images, condition, step, noise, autocast: Autocast = no_autocast, layout=None):
        """One critic step on the batch, then one generator step (a layout model's renders the batch's
        label maps); returns detached metrics by name. Under DP the generator's conditions come from
        the prior (see the class docstring)."""
        metrics = self.critic_step(images, condition, step, noise, autocast, layout)
        if self.prior is not None:  # DP: the generator step reads nothing of the real batch
            combos, counts = self.prior
            condition = combos[torch.multinomial(counts, self.train.batch_size, True, generator=noise)]
            images = None
        metrics.update(self.generator_step(condition, step, noise, autocast, layout, images))
        return metrics

    def critic_step(self, images, condition, step, noise, autocast: Autocast, layout=None) -> dict[str, torch.Tensor]:
        """Hinge loss on the real batch and fakes drawn for its labels, then lazy R1.

        Under DP-SGD real item i and its fake form one sample: the critic runs on both before one
        backward, Opacus adds their per-sample gradients row by row, and the pair is clipped as one."""
        batch = images.shape[0]
        cfg = self.train
        self.critic.requires_grad_(True)  # first: Opacus clears only the parameters that require grad
        self.optimizers["critic"].zero_grad(set_to_none=True)
        if batch == 0:  # only a Poisson batch (DP) is ever empty: the step is noise alone
            self.dp.no_data()
            self.optimizer_step("critic", noise)
            return {}
        with torch.no_grad(), autocast():
            fake = self.render(self.generator, self.latents(batch, noise), condition, layout, self.spatial_noise(layout, noise))
        with autocast():
            d_real, cls_real = self.scored(images, condition, layout)
            d_fake = self.critic(fake, condition, layout).float()
            per_sample = F.relu(1 - d_real) + F.relu(1 + d_fake) + cfg.classifier_loss * cls_real
            loss_d = per_sample.mean()
        if self.dp is not None:  # per-sample gradients of the sum; DPOptimizer divides by the expected batch
            per_sample.sum().backward()
        else:
            loss_d.backward()
        r1 = None
        if cfg.r1_gamma > 0 and step % cfg.r1_every == 0:  # lazy: scaled up, applied every r1_every steps
            r1 = self.r1_penalty(images, condition, layout)
            (0.5 * cfg.r1_gamma * cfg.r1_every * r1).backward()
        self.optimizer_step("critic", noise)
        metrics = {"loss_d": loss_d.detach(), "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
        if cfg.classifier_loss > 0:
            metrics["cls_real"] = cls_real.detach().mean()
        if r1 is not None:
            metrics["r1"] = r1.detach()
        return metrics

    def generator_step(self, condition, step, noise, autocast: Autocast, layout=None,
                       images=None) -> dict[str, torch.Tensor]:
        """Generator update against the frozen critic (hinge score, plus the AC-GAN, mode-seeking and a
        layout model's reconstruction terms when their weights are on: the last is the mean absolute
        difference to ``images``, the real images of the label maps rendered), then the EMA update.
        With mode seeking, the batch's first half of conditions is repeated so that samples ``i`` and
        ``i + half`` share one. The critic runs outside DP bookkeeping: this step trains only the
        generator. A layout model's pairs share the label map (and real image) too, and differ in the
        latent and the noise map: one layout, many images."""
        batch = condition.shape[0]
        cfg = self.train
        self.critic.requires_grad_(False)
        z = self.latents(batch, noise)
        if cfg.mode_seeking > 0 and batch >= 2:  # pairs share a condition: see mode_seeking_loss
            half = batch // 2
            condition = torch.cat([condition[:half], condition[:half], condition[2 * half:]])
            if layout is not None:
                layout = torch.cat([layout[:half], layout[:half], layout[2 * half:]])
                images = None if images is None else torch.cat([images[:half], images[:half], images[2 * half:]])
        noise_map = self.spatial_noise(layout, noise)
        recon = None
        with autocast(), self.unprivate():
            fake = self.render(self.generator, z, condition, layout, noise_map)
            score, cls_fake = self.scored(fake, condition, layout)
            loss_g = -score.mean() + cfg.classifier_loss * cls_fake.mean()
            if cfg.mode_seeking > 0 and batch >= 2:
                loss_g = loss_g + cfg.mode_seeking * mode_seeking_loss(fake.float(), z, batch // 2, noise_map)
            if cfg.reconstruction > 0 and layout is not None and images is not None:  # pix2pix's L1
                recon = (fake.float() - images.float()).abs().mean()
                loss_g = loss_g + cfg.reconstruction * recon
        self.optimizers["generator"].zero_grad(set_to_none=True)
        with self.unprivate():
            loss_g.backward()
        self.optimizer_step("generator")
        self.ema.update(self.generator, step)
        metrics = {"loss_g": loss_g.detach()}
        if cfg.classifier_loss > 0:
            metrics["cls_fake"] = cls_fake.detach().mean()
        if recon is not None:
            metrics["recon"] = recon.detach()
        return metrics

    def scored(self, images: torch.Tensor, condition: torch.Tensor,
               layout: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The critic's score ``[B]`` and, with ``classifier_loss``, each item's cross-entropy of the
        heads against ``condition`` summed over attributes ``[B]`` (zeros without)."""
        if self.train.classifier_loss <= 0:
            score = self.critic(images, condition, layout).float()
            return score, torch.zeros_like(score)
        score, logits = self.critic(images, condition, layout, logits=True)
        loss = sum(F.cross_entropy(l.float(), condition[:, a], reduction="none") for a, l in enumerate(logits))
        return score.float(), loss
