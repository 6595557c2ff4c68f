"""Differentially private training: DP-SGD with Opacus, planned from a target epsilon.

What is private is every module that receives a gradient from a real sample: the GAN critic
(the generator learns only through the critic, so it is post-processing), or the VAE encoder
*and* decoder (the decoder sees the data through the reconstruction loss). Each real sample's
gradient over those modules is clipped to ``dp_max_grad_norm`` as one vector, the clipped
gradients are summed, Gaussian noise of ``noise_multiplier * dp_max_grad_norm`` is added and the
sum is divided by the expected batch size (Opacus' ``GradSampleHooks`` + ``DPOptimizer``).

Batches are Poisson samples (each item in with probability ``batch_size / N``, drawn from
(seed, step) alone), the sampling Opacus' accountant assumes, and resumable at any step. The
noise comes from the run's checkpointed noise generator and the accountant's history travels in
the checkpoint as plain lists, so a resumed DP run is bitwise the uninterrupted one.

Opacus is imported inside the functions that need it: importing it costs seconds.
docs/privacy.md says what is protected and what is not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.conditions import ConditionPrior
from synthscape.core.schema.config import NetworkConfig, TrainConfig

log = logging.getLogger("synthscape")
ACCOUNTANT = "rdp"  # Renyi DP (Mironov 2017), Opacus' default: stable for any steps and sample rate
EPSILON_TOLERANCE = 0.01  # the planned noise spends between target - 0.01 and target at the last step
POISSON_STREAM = 0x0D9  # keeps the batch draws apart from every other seeded stream of the run
# Opacus' orders plus higher ones: small data sets and few steps put the best order above 63
ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [64, 80, 96, 128, 192, 256, 512, 1024]


def default_delta(size: int) -> float:
    """``min(1e-5, 1 / N ** 1.1)``. Delta must sit well below ``1 / N``: a mechanism that
    publishes one random record whole is (0, 1/N)-DP. 1e-5 is the usual value and is the smaller
    up to N of about 35 000; beyond, ``1 / N ** 1.1`` keeps delta below ``1 / N`` as N grows."""
    return min(1e-5, 1.0 / float(size) ** 1.1)


@dataclass
class PrivacyPlan:
    """The noise that spends ``epsilon`` (at ``delta``) over ``steps`` Poisson batches of rate ``sample_rate``."""

    epsilon: float
    delta: float
    max_grad_norm: float
    noise_multiplier: float
    sample_rate: float
    expected_batch_size: int
    steps: int
    accountant: str = ACCOUNTANT

    def to_dict(self) -> dict[str, Any]:
        """The plan as config.json's ``privacy`` entry, mechanism and sampling named for the reader;
        ``from_dict`` reads it back."""
        return {"mechanism": "DP-SGD (Opacus)", "sampling": "poisson", "epsilon_target": self.epsilon,
                "delta": self.delta, "noise_multiplier": self.noise_multiplier, "max_grad_norm": self.max_grad_norm,
                "sample_rate": self.sample_rate, "expected_batch_size": self.expected_batch_size,
                "steps_planned": self.steps, "accountant": self.accountant}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyPlan:
        """The plan from config.json's ``privacy`` entry (extra keys such as ``epsilon_spent`` are
        ignored), so a resume trains with the noise it was planned with."""
        try:
            return cls(float(data["epsilon_target"]), float(data["delta"]), float(data["max_grad_norm"]),
                       float(data["noise_multiplier"]), float(data["sample_rate"]), int(data["expected_batch_size"]),
                       int(data["steps_planned"]), str(data["accountant"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SynthscapeError(f"config.json: the privacy entry is missing or has a malformed field: {exc}") from None


def plan_privacy(train: TrainConfig, size: int) -> PrivacyPlan:
    """Find the noise multiplier for the target (epsilon, delta) with Opacus' accountant, before training."""
    from opacus.accountants.analysis.rdp import get_privacy_spent
    from opacus.accountants.utils import get_noise_multiplier

    if train.batch_size > size:
        raise SynthscapeError(f"DP training samples each item with probability batch size / data set size: "
                              f"--batch-size {train.batch_size} is more than the {size} training items")
    delta = train.dp_delta if train.dp_delta is not None else default_delta(size)
    rate = train.batch_size / size
    with warnings.catch_warnings():  # "optimal order is the largest alpha": expected for infinite noise
        warnings.simplefilter("ignore", UserWarning)
        floor, _ = get_privacy_spent(orders=ALPHAS, rdp=np.zeros(len(ALPHAS)), delta=delta)
    if train.dp_epsilon <= floor:  # refused at once: the search below would take minutes to fail
        raise SynthscapeError(f"--dp-epsilon {train.dp_epsilon:g} cannot be met: at delta {delta:.3g} the "
                              f"{ACCOUNTANT} accountant gives at least {floor:.3g} whatever the noise; raise epsilon or delta")
    try:
        sigma = get_noise_multiplier(target_epsilon=train.dp_epsilon, target_delta=delta, sample_rate=rate,
                                     steps=train.steps, accountant=ACCOUNTANT, epsilon_tolerance=EPSILON_TOLERANCE,
                                     alphas=ALPHAS)
    except ValueError:  # Opacus: "The privacy budget is too low."
        raise SynthscapeError(f"--dp-epsilon {train.dp_epsilon:g} cannot be met: no noise multiplier up to 1e6 "
                              f"spends so little over {train.steps} steps at sample rate {rate:.3g}") from None
    return PrivacyPlan(float(train.dp_epsilon), float(delta), float(train.dp_max_grad_norm), float(sigma), rate,
                       train.batch_size, train.steps)


def private_settings(model: str, network: NetworkConfig, train: TrainConfig) -> tuple[NetworkConfig, TrainConfig]:
    """The network and training settings a DP GAN needs, each change said in the log: no spectral
    norm on the critic (a parametrisation with buffers: no per-sample gradients) and no R1
    penalty (its double backward has none either). config.json then says what was trained."""
    if model != "gan":
        return network, train
    if network.spectral_norm:
        log.info("dp: spectral norm off on the critic (Opacus computes no per-sample gradients through it)")
        network = dataclasses.replace(network, spectral_norm=False)
    if train.r1_gamma > 0:
        log.info("dp: R1 penalty off (its double backward has no per-sample gradients)")
        train = dataclasses.replace(train, r1_gamma=0.0)
    return network, train


def check_private_resume(privacy: Mapping[str, Any], steps: int) -> None:
    """A DP run resumes to at most its planned steps: more would spend more than the target epsilon."""
    plan = PrivacyPlan.from_dict(privacy)
    if steps > plan.steps:
        raise SynthscapeError(f"--resume: this DP run was planned for {plan.steps} steps at epsilon {plan.epsilon:g}; "
                              f"{steps} steps would spend more: keep --steps at most {plan.steps} or start a new run")


def check_world(world: int) -> None:
    """Refuse DP training under torchrun (``world`` > 1): the Poisson batches and the accountant
    assume one process drawing from the whole data set."""
    if world > 1:
        raise SynthscapeError(f"differentially private training runs as one process, not under torchrun "
                              f"(WORLD_SIZE={world}): Poisson batches and the accountant are per run, not per rank")


def one_line(exc: BaseException) -> str:
    """An exception's message on one line of at most 300 characters, for refusals quoting Opacus."""
    return " ".join(str(exc).split())[:300]


def check_private(module: nn.Module, name: str) -> None:
    """Refuse, in one line, a module whose per-sample gradients Opacus cannot compute exactly."""
    from opacus.validators import ModuleValidator
    from opacus.validators.errors import UnsupportedModuleError

    if any(parametrize.is_parametrized(m) for m in module.modules()):
        raise SynthscapeError(f"DP training: the {name} holds a parametrisation (spectral norm?), which has no "
                              "per-sample gradients: build it with spectral_norm off")
    try:
        ModuleValidator.validate(module, strict=True)
    except UnsupportedModuleError as exc:
        raise SynthscapeError(f"DP training: Opacus refuses the {name}: {one_line(exc)}") from None


class DPSGD:
    """DP-SGD over the modules that see real data, and the accountant that counts its steps.

    ``optimizer`` (the Adam over exactly those modules) is wrapped in Opacus' ``DPOptimizer``;
    use ``self.optimizer`` in its place. Losses are backpropagated as sums over the batch
    (per-sample gradients of the sum), and ``DPOptimizer`` divides the noised sum by the expected
    batch size, so the scale is that of the usual batch mean.
    """

    def __init__(self, plan: PrivacyPlan, modules: Mapping[str, nn.Module], optimizer: torch.optim.Optimizer):
        from opacus.accountants import create_accountant
        from opacus.grad_sample import GradSampleModule
        from opacus.optimizers import DPOptimizer

        owned = {id(p) for m in modules.values() for p in m.parameters()}
        if owned != {id(p) for group in optimizer.param_groups for p in group["params"]}:
            raise SynthscapeError(f"DP training: the optimizer must train exactly the private modules {', '.join(modules)}")
        for name, module in modules.items():
            check_private(module, name)
        # torch warns each backward that the first layer's input (the images) needs no gradient;
        # Opacus' hooks only need the layer's output gradient, so the warning says nothing here
        warnings.filterwarnings("ignore", "Full backward hook is firing when gradients are computed with respect "
                                "to module outputs", UserWarning)
        # The wrappers only own the hooks they put on each module's layers; the objective calls the
        # modules themselves, so state_dict keys and checkpoints stay as without DP
        try:
            self.hooks = [GradSampleModule(m, loss_reduction="sum", strict=True) for m in modules.values()]
        except NotImplementedError as exc:
            raise SynthscapeError(f"DP training: Opacus cannot compute per-sample gradients: {one_line(exc)}") from None
        self.plan, self.names = plan, tuple(modules)
        self.optimizer = DPOptimizer(optimizer, noise_multiplier=plan.noise_multiplier, max_grad_norm=plan.max_grad_norm,
                                     expected_batch_size=plan.expected_batch_size, loss_reduction="mean")
        self.accountant = create_accountant(plan.accountant)
        self.optimizer.attach_step_hook(
            lambda _: self.accountant.step(noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate))

    def use_noise(self, noise: torch.Generator) -> None:
        """Draw the Gaussian noise from ``noise``: the run's seeded, checkpointed generator."""
        self.optimizer.generator = noise

    def no_data(self) -> None:
        """An empty Poisson batch: no gradient, yet the step still adds its noise and is counted."""
        for p in self.optimizer.params:
            p.grad_sample = p.new_zeros((0, *p.shape))

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Run the private modules with no per-sample bookkeeping (the GAN's generator step, where
        the critic passes gradients on to the generator and is not itself trained)."""
        for hooks in self.hooks:
            hooks.disable_hooks()
        try:
            yield
        finally:
            for hooks in self.hooks:
                hooks.enable_hooks()

    @property
    def steps(self) -> int:
        """DP steps the accountant has counted; on resume it must equal the checkpoint's step."""
        return sum(int(entry[2]) for entry in self.accountant.history)

    def epsilon(self) -> float:
        """Epsilon spent so far at the plan's delta; 0.0 before the first step."""
        return float(self.accountant.get_epsilon(delta=self.plan.delta, alphas=ALPHAS)) if self.accountant.history else 0.0

    def summary(self) -> dict[str, Any]:
        """The plan and what has been spent, for config.json's ``privacy`` entry."""
        return {**self.plan.to_dict(), "epsilon_spent": self.epsilon(), "steps_taken": self.steps,
                "private_modules": list(self.names)}

    def message(self) -> str:
        """Epsilon spent against the target, and steps taken against planned, as one log line."""
        return (f"dp: epsilon spent {self.epsilon():.4g} of {self.plan.epsilon:g} (delta {self.plan.delta:.3g}) "
                f"after {self.steps} of {self.plan.steps} steps")

    def state_dict(self) -> dict[str, Any]:
        """The accountant's state as plain lists and strings: loads with ``torch.load(weights_only=True)``."""
        return {"mechanism": self.accountant.mechanism(), "history": [list(entry) for entry in self.accountant.history]}

    def load_state_dict(self, state: Mapping[str, Any] | None, step: int) -> None:
        """Restore the accountant from a checkpoint's ``state_dict``. Refuses a missing or foreign
        state, or one whose step count is not ``step``: the run could not then report an honest epsilon."""
        if not state or state.get("mechanism") != self.accountant.mechanism():
            raise SynthscapeError(f"--resume: the checkpoint holds no {self.accountant.mechanism()} accountant state "
                                  "for this DP run; it cannot continue with an honest epsilon")
        self.accountant.history = [(float(s), float(q), int(n)) for s, q, n in state["history"]]
        if self.steps != step:
            raise SynthscapeError(f"--resume: the checkpoint's accountant counted {self.steps} DP steps, not its {step} steps")


def prior_conditions(prior: ConditionPrior, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior's combinations ``[K, A]`` and their counts ``[K]``, to draw conditions with torch."""
    combos = sorted(prior.counts)
    return (torch.tensor(combos, dtype=torch.int64, device=device),
            torch.tensor([float(prior.counts[c]) for c in combos], device=device))


class PoissonBatches(Sampler[list[int]]):
    """Step ``t``'s batch: each of the ``size`` items independently with probability
    ``sample_rate``, drawn from ``(seed, t)`` alone, so a run resumed at step ``t`` draws exactly
    the batches an uninterrupted run would. Batches vary in size and may be empty."""

    def __init__(self, size: int, sample_rate: float, seed: int, start: int = 0):
        self.size, self.sample_rate, self.seed, self.start = size, sample_rate, seed, start

    def batch(self, step: int) -> list[int]:
        """Item indices of step ``step``'s batch, from (seed, ``POISSON_STREAM``, step) alone; may be empty."""
        draws = np.random.default_rng([self.seed, POISSON_STREAM, step]).random(self.size)
        return np.flatnonzero(draws < self.sample_rate).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start
        while True:
            step += 1
            yield self.batch(step)


class CollateOrEmpty:
    """``default_collate``, and for an empty batch the empty tensors of the right shapes."""

    def __init__(self, image_shape: tuple[int, ...], attributes: int):
        self.image_shape, self.attributes = tuple(image_shape), attributes

    def __call__(self, items: list) -> Any:
        if items:
            return default_collate(items)
        return torch.zeros((0, *self.image_shape)), torch.zeros((0, self.attributes), dtype=torch.int64)


def poisson_loader(dataset: Dataset, plan: PrivacyPlan, network: NetworkConfig, attributes: int, seed: int,
                   start: int, num_workers: int, pin_memory: bool) -> DataLoader:
    """The DP run's data: Poisson batches from step ``start + 1`` on."""
    return DataLoader(dataset, batch_sampler=PoissonBatches(len(dataset), plan.sample_rate, seed, start),
                      collate_fn=CollateOrEmpty((network.channels, *network.image_size), attributes),
                      num_workers=num_workers, pin_memory=pin_memory)
