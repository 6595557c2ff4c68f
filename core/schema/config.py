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
from itertools import pairwise
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.limits import MAX_BATCH, MAX_WORKERS, check_voxels
from synthscape.core.schema.conditions import ConditionPrior, ConditionSchema, checked_name
from synthscape.core.schema.labelmap import MAX_CLASSES as MAX_LABEL_CLASSES
from synthscape.core.schema.labelmap import LabelMapSchema

FORMAT = "synthscape-generator"
FORMAT_VERSION = 1
MODEL_KINDS = ("gan", "vae")

# Bounds on every number of config.json (and of the same config in ONNX metadata), checked before
# anything is built from it: each far above what a real run uses (a 512^3 lung-ct generator from
# default_network has widths <= 128, latent 64 and ~0.75e9 weights with its encoder, a 2D one
# ~0.1e9), far below what would exhaust a machine. image_size is bounded by core.limits.check_voxels.
MAX_WIDTH = 4096  # channels of one network stage; also latent_dim, embed_dim and norm_groups
MAX_CHANNELS = 64  # image channels: 1 for CT, 3 for RGB
MAX_STAGES = 12  # widths per network: 11 resampling stages, a start grid 2048x smaller than the image
MAX_WEIGHTS = 2**32  # generator + critic/encoder weights (estimate): 16 GiB as float32, 64 with Adam's state
MAX_FEATURES = 2**32  # elements of one sample's largest feature map (estimate): 16 GiB as float32
MAX_STEPS = 10**9  # steps, step, the *_every periods, kl_warmup_steps
MAX_GRID = 256  # samples_per_grid: images in one sample grid, drawn once per condition value
MAX_SEED = 2**63 - 1  # numpy and torch take seeds up to 2^64; noise streams add to it
MAX_DOMAIN_META = 32  # keys of domain_meta; each value a number, short text or a list of up to 16 of them
MAX_TEXT = 1024  # characters of a text value in domain_meta, and of the domain name


def whole(value: Any, name: str, low: int, high: int) -> int:
    """``value`` if it is a whole number (not ``true``, not ``1.5``, not text) in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        raise SynthscapeError(f"{name} must be a whole number from {low:,} to {high:,}, got {shown(repr(value))}")
    return int(value)


def number(value: Any, name: str, low: float, high: float, *, above_low: bool = False, below_high: bool = False) -> float:
    """``value`` if it is a finite number (not ``true``, not text) in ``low..high`` (``above_low``,
    ``below_high``: excluding that end)."""
    ok = not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
    if not (ok and (low < value if above_low else low <= value) and (value < high if below_high else value <= high)):
        span = f"{'(' if above_low else '['}{low:g}, {high:g}{')' if below_high else ']'}"
        raise SynthscapeError(f"{name} must be a finite number in {span}, got {shown(repr(value))}")
    return float(value)


def whole_list(value: Any, name: str, low: int, high: int, length: tuple[int, int]) -> tuple[int, ...]:
    """A list of ``length[0]..length[1]`` whole numbers, each in ``low..high``."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or not length[0] <= len(value) <= length[1]:
        count = length[0] if length[0] == length[1] else f"{length[0]} to {length[1]}"
        raise SynthscapeError(f"{name} must be a list of {count} whole numbers, got {shown(repr(value))}")
    return tuple(whole(v, f"each entry of {name}", low, high) for v in value)


def flag(value: Any, name: str) -> bool:
    """``value`` if it is ``true`` or ``false`` (not 0, 1 or text)."""
    if not isinstance(value, bool):
        raise SynthscapeError(f"{name} must be true or false, got {shown(repr(value))}")
    return value


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
    layout_classes: int = 0  # classes of the label map a layout generator renders (core/networks/layout.py); 0: class-only

    def __post_init__(self) -> None:
        dims = self.spatial_dims
        if isinstance(dims, bool) or not isinstance(dims, Integral) or dims not in (2, 3):
            raise SynthscapeError(f"spatial_dims must be 2 or 3, got {shown(repr(self.spatial_dims))}")
        self.image_size = whole_list(self.image_size, "image_size", 1, 2**62, (self.spatial_dims, self.spatial_dims))
        check_voxels(self.image_size, "image_size", "is")
        self.channels = whole(self.channels, "channels", 1, MAX_CHANNELS)
        self.latent_dim = whole(self.latent_dim, "latent_dim", 1, MAX_WIDTH)
        self.embed_dim = whole(self.embed_dim, "embed_dim", 1, MAX_WIDTH)
        self.norm_groups = whole(self.norm_groups, "norm_groups", 1, MAX_WIDTH)
        self.conditional, self.spectral_norm = flag(self.conditional, "conditional"), flag(self.spectral_norm, "spectral_norm")
        self.layout_classes = whole(self.layout_classes, "layout_classes", 0, MAX_LABEL_CLASSES)
        if self.layout_classes == 1:
            raise SynthscapeError("layout_classes must be 0 (no label map) or at least 2 (background and one class)")
        for name in ("generator_channels", "critic_channels"):
            widths = whole_list(getattr(self, name), name, 1, MAX_WIDTH, (2, MAX_STAGES))
            setattr(self, name, widths)
            factor = 2 ** (len(widths) - 1)
            if any(s % factor or s < factor for s in self.image_size):
                raise SynthscapeError(
                    f"image_size {list(self.image_size)} must be a multiple of {factor} for {len(widths) - 1} "
                    f"resampling stages ({name}={list(widths)})"
                )
        self._check_size()

    def _check_size(self) -> None:
        """Refuse networks whose weights or largest feature map (estimated from the widths and
        sizes, the dominant terms of core/networks/nets.py) pass ``MAX_WEIGHTS`` or ``MAX_FEATURES``."""
        gen, critic, k = self.generator_channels, self.critic_channels, 3 ** self.spatial_dims
        weights = (self.latent_dim + self.embed_dim) * gen[0] * math.prod(self.start_size)  # the generator's projection
        weights += sum(k * (a * b + b * b) + a * b for a, b in pairwise(gen))  # its up blocks
        weights += sum(k * (a * a + a * b) + a * b for a, b in pairwise(critic))  # critic / encoder down blocks
        weights += critic[-1] * math.prod(self.end_size) * 2 * self.latent_dim  # the encoder's head
        features = max([w * math.prod(s << i for s in self.start_size) for i, w in enumerate(gen)]
                       + [w * math.prod(s >> i for s in self.image_size) for i, w in enumerate(critic)])
        for what, value, bound in (("weights", weights, MAX_WEIGHTS), ("elements in one feature map", features, MAX_FEATURES)):
            if value > bound:
                raise SynthscapeError(f"the network of image_size {list(self.image_size)}, latent_dim {self.latent_dim}, "
                                      f"generator_channels {list(gen)} and critic_channels {list(critic)} would have "
                                      f"about {value:,} {what}, more than the limit of {bound:,}")

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
    reconstruction: float = 0.0  # layout GAN: weight of the L1 between a render and the real image of its label map (pix2pix)
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
        for name, low, high in (("steps", 1, MAX_STEPS), ("batch_size", 1, MAX_BATCH), ("seed", 0, MAX_SEED),
                                ("r1_every", 1, MAX_STEPS), ("kl_warmup_steps", 0, MAX_STEPS), ("log_every", 1, MAX_STEPS),
                                ("eval_every", 1, MAX_STEPS), ("checkpoint_every", 1, MAX_STEPS),
                                ("samples_per_grid", 1, MAX_GRID), ("num_workers", 0, MAX_WORKERS)):
            setattr(self, name, whole(getattr(self, name), name, low, high))
        for name in ("lr_generator", "lr_critic"):
            setattr(self, name, number(getattr(self, name), name, 0, 1e9, above_low=True))  # nothing to allocate: any finite rate (tests diverge at 1e6)
        if isinstance(self.betas, (str, bytes, Mapping)) or not isinstance(self.betas, Sequence) or len(self.betas) != 2:
            raise SynthscapeError(f"betas must be a list of two numbers in [0, 1), got {shown(repr(self.betas))}")
        self.betas = tuple(number(b, "each of betas", 0, 1, below_high=True) for b in self.betas)
        self.ema_decay = number(self.ema_decay, "ema_decay", 0, 1)
        for name in ("r1_gamma", "kl_beta"):
            setattr(self, name, number(getattr(self, name), name, 0, 1e9))
        for name in ("mode_seeking", "classifier_loss", "reconstruction"):  # weights of extra loss terms: 0 is off
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < float("inf"):
                raise SynthscapeError(f"{name} must be a weight of 0 or more, got {shown(repr(value))}")
        self.compile = flag(self.compile, "compile")
        self._check_privacy()

    @property
    def private(self) -> bool:
        """Whether this is a DP-SGD run: ``dp_epsilon`` is set (there is no separate switch)."""
        return self.dp_epsilon is not None

    def _check_privacy(self) -> None:
        """Refuse DP settings that have no meaning, before any data is read."""
        def real(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        if self.dp_epsilon is not None and not (real(self.dp_epsilon) and 0 < self.dp_epsilon < math.inf):
            raise SynthscapeError(f"dp_epsilon (--dp-epsilon) must be a positive number, got {shown(repr(self.dp_epsilon))}")
        if self.dp_delta is not None and not (real(self.dp_delta) and 0 < self.dp_delta < 1):
            raise SynthscapeError(f"dp_delta (--dp-delta) must lie strictly between 0 and 1, got {shown(repr(self.dp_delta))}")
        if not (real(self.dp_max_grad_norm) and 0 < self.dp_max_grad_norm < math.inf):
            raise SynthscapeError(f"dp_max_grad_norm (--dp-max-grad-norm) must be a positive number, "
                                  f"got {shown(repr(self.dp_max_grad_norm))}")
        if self.dp_epsilon is None and self.dp_delta is not None:
            raise SynthscapeError("dp_delta (--dp-delta) was given without dp_epsilon (--dp-epsilon): say which epsilon to train to")
        if self.private and self.compile:
            raise SynthscapeError("differentially private training does not run compiled: Opacus' per-sample gradient "
                                  "hooks do not survive torch.compile; drop --compile or --dp-epsilon")


class DomainMeta(dict):
    """config.json's ``domain_meta``: a plain dict that remembers the file it was read from
    (``source``), so that the domain's own check of it (``synthscape.domains.base.read_meta``, when
    samples are written) names that file."""

    def __init__(self, data: Mapping[str, Any] = (), source: str | None = None):
        super().__init__(data)
        self.source = source


def checked_meta(meta: Any, source: str | None = None) -> DomainMeta:
    """``domain_meta`` checked as data, whatever the domain: at most ``MAX_DOMAIN_META`` keys that
    are names (``checked_name``: they become the domain's dataclass fields), each value null, true or
    false, a finite number, text of up to ``MAX_TEXT`` characters or a flat list of up to 16 of these.
    The domain's ``meta_type`` checks the rest (``read_meta``)."""
    if not isinstance(meta, Mapping):
        raise SynthscapeError(f"domain_meta must be a JSON object, got {type(meta).__name__}")
    if len(meta) > MAX_DOMAIN_META:
        raise SynthscapeError(f"domain_meta has {len(meta):,} keys, more than the limit of {MAX_DOMAIN_META}")
    for key, value in meta.items():
        key = checked_name(key, "a domain_meta key")
        items = value if isinstance(value, (list, tuple)) else [value]
        plain = all(item is None or isinstance(item, bool) or (isinstance(item, str) and len(item) <= MAX_TEXT)
                    or (isinstance(item, Real) and math.isfinite(item) and abs(item) <= 2**53) for item in items)
        if not plain or len(items) > 16:
            raise SynthscapeError(f"domain_meta {key!r} must be a number, text of up to {MAX_TEXT} characters, "
                                  f"true, false, null or a list of up to 16 of them, got {shown(repr(value))}")
    return DomainMeta(meta, source if source is not None else getattr(meta, "source", None))


def section(data: Mapping[str, Any], name: str, cls: type, required: bool = True) -> Any:
    """``cls`` (a dataclass) from the JSON object ``data[name]``: a key it does not declare, or one
    it needs, is refused by name (a ``TypeError``, which ``from_dict`` words as a malformed field)."""
    if name not in data and required:
        raise TypeError(f"{name!r} is missing")
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a JSON object, got {type(value).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in value if key not in known]
    if unknown:
        raise TypeError(f"{name} has unknown key(s) {shown(', '.join(map(repr, unknown)))}; valid keys: {', '.join(known)}")
    needed = [f.name for f in dataclasses.fields(cls)
              if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in value]
    if needed:
        raise TypeError(f"{name} lacks {', '.join(needed)}")
    return cls(**value)


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
    label_map: LabelMapSchema | None = None  # layout models: the classes of the label map the generator takes

    def __post_init__(self) -> None:
        if not isinstance(self.domain, str) or not 0 < len(self.domain) <= MAX_TEXT:
            raise SynthscapeError(f"domain must be a domain's name, got {shown(repr(self.domain))}")
        if not isinstance(self.model, str) or self.model not in MODEL_KINDS:
            raise SynthscapeError(f"model must be one of {', '.join(MODEL_KINDS)}, got {shown(repr(self.model))}")
        self.step = whole(self.step, "step", 0, MAX_STEPS)
        self.domain_meta = checked_meta(self.domain_meta)
        if self.privacy is not None and not isinstance(self.privacy, dict):
            raise SynthscapeError(f"privacy must be a JSON object or absent, got {type(self.privacy).__name__}")
        classes = len(self.label_map) if self.label_map is not None else 0
        if classes != self.network.layout_classes:
            raise SynthscapeError(f"label_map has {classes} classes but network.layout_classes is {self.network.layout_classes}")

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
            **({"label_map": self.label_map.to_list()} if self.label_map is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config.json") -> ArtifactConfig:
        """Build from parsed config.json, refusing another format, a newer ``format_version`` or a
        malformed field; every error names ``source`` so the user knows which file is at fault."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise SynthscapeError(f"{source} is not a synthscape generator config (format={shown(repr(found))})")
        version = data.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise SynthscapeError(f"{source} has format_version {shown(repr(version))}, expected an integer")
        if version > FORMAT_VERSION:
            raise SynthscapeError(f"{source} has format_version {shown(version)}; this synthscape reads up to {FORMAT_VERSION}")
        if not isinstance(data.get("domain_meta", {}), Mapping):
            raise SynthscapeError(f"{source} has domain_meta of type {type(data['domain_meta']).__name__}, expected a JSON object")
        try:  # every number is bounded, every name checked, before anything is built from them
            schema = ConditionSchema.from_dict(data["schema"])
            return cls(
                domain=data["domain"],
                model=data["model"],
                schema=schema,
                prior=ConditionPrior.from_list(schema, data["condition_counts"]),
                network=section(data, "network", NetworkConfig),
                train=section(data, "train", TrainConfig, required=False),
                domain_meta=checked_meta(data.get("domain_meta", {}), source),
                step=data.get("step", 0),
                privacy=data.get("privacy"),
                label_map=LabelMapSchema.from_list(data["label_map"]) if data.get("label_map") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SynthscapeError(f"{source} is missing or has a malformed field: {shown(str(exc), 300)}") from None
        except SynthscapeError as exc:  # a field's own check: say which file it is in
            raise SynthscapeError(f"{source}: {exc}") from None
        except RecursionError:  # a value nested too deeply even to be quoted
            raise SynthscapeError(f"{source} has a field nested too deeply") from None

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
        except RecursionError:  # lists nested thousands deep
            raise SynthscapeError(f"{path} is nested too deeply to be a synthscape generator config") from None
        return cls.from_dict(data, source=str(path))
