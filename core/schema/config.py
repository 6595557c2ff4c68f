"""Model and training settings, and the ``config.json`` that sits beside every generator.

Plain dataclasses that round-trip through JSON; no torch, so the edge runtime can read an
artifact's config as well.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.conditions import ConditionPrior, ConditionSchema

FORMAT = "synthscape-generator"
FORMAT_VERSION = 1
MODEL_KINDS = ("gan", "vae")


@dataclass
class NetworkConfig:
    """Shape of the generator (= VAE decoder), the discriminator and the encoder.

    ``generator_channels[0]`` is the width at the lowest resolution; each further entry is one
    nearest-upsample stage, so the start grid is ``image_size / 2 ** (len - 1)``. Keep the last
    (full-resolution) width narrow: nearly all of the compute is there.
    """

    spatial_dims: int
    image_size: tuple[int, ...]
    channels: int = 1
    latent_dim: int = 64
    embed_dim: int = 32
    generator_channels: tuple[int, ...] = (128, 64, 32, 16)
    critic_channels: tuple[int, ...] = (16, 32, 64, 128)
    conditional: bool = True
    spectral_norm: bool = True
    norm_groups: int = 8

    def __post_init__(self) -> None:
        self.image_size = tuple(int(s) for s in self.image_size)
        self.generator_channels = tuple(int(c) for c in self.generator_channels)
        self.critic_channels = tuple(int(c) for c in self.critic_channels)
        if self.spatial_dims not in (2, 3):
            raise SynthscapeError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if len(self.image_size) != self.spatial_dims:
            raise SynthscapeError(f"image_size {list(self.image_size)} must have {self.spatial_dims} entries")
        for name, widths in (("generator_channels", self.generator_channels), ("critic_channels", self.critic_channels)):
            if len(widths) < 2 or min(widths) < 1:
                raise SynthscapeError(f"{name} needs at least two positive widths, got {list(widths)}")
            factor = 2 ** (len(widths) - 1)
            if any(s % factor or s < factor for s in self.image_size):
                raise SynthscapeError(
                    f"image_size {list(self.image_size)} must be a multiple of {factor} for {len(widths) - 1} "
                    f"resampling stages ({name}={list(widths)})"
                )

    @property
    def start_size(self) -> tuple[int, ...]:
        """Spatial size of the generator's first grid, the one its linear layer fills:
        ``image_size / 2 ** (len(generator_channels) - 1)`` per axis."""
        factor = 2 ** (len(self.generator_channels) - 1)
        return tuple(s // factor for s in self.image_size)

    @property
    def end_size(self) -> tuple[int, ...]:
        """Spatial size of the critic/encoder trunk's last feature map."""
        factor = 2 ** (len(self.critic_channels) - 1)
        return tuple(s // factor for s in self.image_size)


def default_network(spatial_dims: int, image_size: Sequence[int], channels: int) -> NetworkConfig:
    """Widths that train in minutes on a laptop CPU: 3 or 4 resampling stages, narrow at full size."""
    smallest = min(image_size)
    stages = 4 if smallest >= 64 else 3 if smallest >= 16 else 2
    if spatial_dims == 3:
        gen = (64, 32, 16, 8, 8)[: stages + 1]
        critic = (8, 32, 64, 128, 128)[: stages + 1]  # full-resolution stage kept narrow: it dominates
    else:
        gen = (256, 128, 64, 32, 32)[: stages + 1]
        critic = (32, 64, 128, 256, 256)[: stages + 1]
    return NetworkConfig(spatial_dims, tuple(image_size), channels, generator_channels=gen, critic_channels=critic)


@dataclass
class TrainConfig:
    """Everything that decides a training run, so that a resume continues it exactly."""

    steps: int = 2000
    batch_size: int = 16
    seed: int = 0
    lr_generator: float = 2e-4
    lr_critic: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 0.1
    r1_every: int = 16
    ema_decay: float = 0.999
    mode_seeking: float = 0.0  # GAN: weight of the mode-seeking term (core/training/gan.py), against collapse per condition
    classifier_loss: float = 0.0  # GAN: weight of the AC-GAN term (core/training/gan.py): critic heads read the labels back
    kl_beta: float = 1.0
    kl_warmup_steps: int = 500
    log_every: int = 10
    eval_every: int = 500
    checkpoint_every: int = 500
    samples_per_grid: int = 8
    num_workers: int = 0
    compile: bool = False  # torch.compile the trained networks (for GPUs; on 2 CPU cores no faster, benchmarks/train_scale.py)
    # Differential privacy (DP-SGD with Opacus; core/training/privacy.py, docs/privacy.md). dp_epsilon None: off.
    dp_epsilon: float | None = None
    dp_delta: float | None = None  # None: min(1e-5, 1 / N^1.1) for N training items (core/training/privacy.py)
    dp_max_grad_norm: float = 1.0  # per-sample gradient clip

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        for name in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every", "samples_per_grid"):
            if int(getattr(self, name)) < 1:
                raise SynthscapeError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("mode_seeking", "classifier_loss"):  # weights of extra loss terms: 0 is off
            if not 0 <= float(getattr(self, name)) < float("inf"):
                raise SynthscapeError(f"{name} must be a weight of 0 or more, got {getattr(self, name)!r}")
        self._check_privacy()

    @property
    def private(self) -> bool:
        """Whether this is a DP-SGD run: ``dp_epsilon`` is set (there is no separate switch)."""
        return self.dp_epsilon is not None

    def _check_privacy(self) -> None:
        """Refuse DP settings that have no meaning, before any data is read."""
        if self.dp_epsilon is not None and not (isinstance(self.dp_epsilon, (int, float)) and 0 < self.dp_epsilon < math.inf):
            raise SynthscapeError(f"dp_epsilon (--dp-epsilon) must be a positive number, got {self.dp_epsilon!r}")
        if self.dp_delta is not None and not (isinstance(self.dp_delta, (int, float)) and 0 < self.dp_delta < 1):
            raise SynthscapeError(f"dp_delta (--dp-delta) must lie strictly between 0 and 1, got {self.dp_delta!r}")
        if not (isinstance(self.dp_max_grad_norm, (int, float)) and 0 < self.dp_max_grad_norm < math.inf):
            raise SynthscapeError(f"dp_max_grad_norm (--dp-max-grad-norm) must be a positive number, got {self.dp_max_grad_norm!r}")
        if self.dp_epsilon is None and self.dp_delta is not None:
            raise SynthscapeError("dp_delta (--dp-delta) was given without dp_epsilon (--dp-epsilon): say which epsilon to train to")
        if self.private and self.compile:
            raise SynthscapeError("differentially private training does not run compiled: Opacus' per-sample gradient "
                                  "hooks do not survive torch.compile; drop --compile or --dp-epsilon")


@dataclass
class ArtifactConfig:
    """The contents of ``config.json``: enough to rebuild and interpret the generator alone."""

    domain: str
    model: str
    schema: ConditionSchema
    prior: ConditionPrior
    network: NetworkConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    domain_meta: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    # DP-SGD runs only (core/training/privacy.py): the plan (target epsilon, delta, noise multiplier, clip,
    # sample rate, steps, accountant) and, from each checkpoint on, the epsilon spent so far
    privacy: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.model not in MODEL_KINDS:
            raise SynthscapeError(f"model must be one of {', '.join(MODEL_KINDS)}, got {self.model!r}")
        if self.privacy is not None and not isinstance(self.privacy, dict):
            raise SynthscapeError(f"privacy must be a JSON object or absent, got {type(self.privacy).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as config.json, tagged with ``FORMAT`` and ``FORMAT_VERSION``;
        ``output_range`` tells a torch-free reader the generator's images lie in [-1, 1] (tanh)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "domain": self.domain,
            "model": self.model,
            "step": self.step,
            "schema": self.schema.to_dict(),
            "condition_counts": self.prior.to_list(),
            "network": dataclasses.asdict(self.network),
            "train": dataclasses.asdict(self.train),
            "domain_meta": self.domain_meta,
            "output_range": [-1.0, 1.0],
            **({"privacy": self.privacy} if self.privacy is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config.json") -> ArtifactConfig:
        """Build from parsed config.json, refusing another format, a newer ``format_version`` or a
        malformed field; every error names ``source`` so the user knows which file is at fault."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise SynthscapeError(f"{source} is not a synthscape generator config (format={found!r})")
        version = data.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise SynthscapeError(f"{source} has format_version {version!r}, expected an integer")
        if version > FORMAT_VERSION:
            raise SynthscapeError(f"{source} has format_version {version}; this synthscape reads up to {FORMAT_VERSION}")
        if not isinstance(data.get("domain_meta", {}), Mapping):
            raise SynthscapeError(f"{source} has domain_meta of type {type(data['domain_meta']).__name__}, expected a JSON object")
        try:
            schema = ConditionSchema.from_dict(data["schema"])
            return cls(
                domain=data["domain"],
                model=data["model"],
                schema=schema,
                prior=ConditionPrior.from_list(schema, data["condition_counts"]),
                network=NetworkConfig(**data["network"]),
                train=TrainConfig(**data.get("train", {})),
                domain_meta=dict(data.get("domain_meta", {})),
                step=int(data.get("step", 0)),
                privacy=data.get("privacy"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SynthscapeError(f"{source} is missing or has a malformed field: {exc}") from None
        except SynthscapeError as exc:  # a field's own check: say which file it is in
            raise SynthscapeError(f"{source}: {exc}") from None

    @classmethod
    def read(cls, path: str | Path) -> ArtifactConfig:
        """Read and check the config.json at ``path`` (see ``from_dict``); a missing file or bad JSON
        is a ``SynthscapeError``, not a traceback."""
        path = Path(path)
        if not path.is_file():
            raise SynthscapeError(f"{path} not found: a generator directory holds config.json and generator.safetensors")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SynthscapeError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=str(path))
