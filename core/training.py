"""The one training loop, for GAN and VAE alike.

Per step: next batch -> ``objective.step`` -> NaN/Inf guard -> every ``log_every`` a row in
metrics.csv -> every ``eval_every`` a sample grid per condition value -> every
``checkpoint_every`` (and at the end) a checkpoint plus ``config.json`` + ``generator.safetensors``.
A resumed run restores weights, optimizers, EMA, step, data position and noise RNG, and so
continues exactly as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from synthscape.core.artifacts import CONFIG, TorchSampler, save_generator
from synthscape.core.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from synthscape.core.conditions import ConditionPrior, ConditionSchema
from synthscape.core.config import ArtifactConfig, NetworkConfig, TrainConfig, default_network
from synthscape.core.data import ResumableSampler, dataset_conditions
from synthscape.core.distributed import ProcessGroup
from synthscape.core.errors import SynthscapeError, TrainingDiverged
from synthscape.core.gan import GAN
from synthscape.core.grids import grid, write_png
from synthscape.core.metrics_log import MetricsLog
from synthscape.core.networks import check_inputs
from synthscape.core.objective import Objective
from synthscape.core.vae import VAE

log = logging.getLogger("synthscape")
OBJECTIVES: dict[str, type[Objective]] = {"gan": GAN, "vae": VAE}
CheckpointCallback = Callable[[int, Path], None]
NOISE_SEED_STRIDE = 1_000_003  # rank r draws latents from seed + 1 + stride * r: disjoint streams


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SynthscapeError("--device cuda was asked for, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise SynthscapeError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def memory_format(spatial_dims: int) -> torch.memory_format:
    """Channels-last: 1.6x faster 3D and 1.25x faster 2D training steps on CPU (benchmarks/train_step.py)."""
    return torch.channels_last_3d if spatial_dims == 3 else torch.channels_last


def autocast_for(device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """bf16 autocast on CUDA; plain float32 on CPU (where bf16 is slower and changes results)."""
    if device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def prepare_run(run: Path, resume: bool, dataset: Dataset, schema: ConditionSchema, model: str, domain: str,
                network: NetworkConfig | None, train: TrainConfig, domain_meta: dict) -> ArtifactConfig:
    """The run's config: new from the arguments, or (resume) as saved, with only ``steps`` updated."""
    if resume:
        if latest_checkpoint(run) is None:
            raise SynthscapeError(f"--resume: {run} holds no checkpoint to resume from")
        config = ArtifactConfig.read(run / CONFIG)
        if config.model != model or config.domain != domain:
            raise SynthscapeError(f"--resume: {run} is a {config.domain} {config.model} run, not {domain} {model}")
        config.train.steps = train.steps
        log.info("resuming with the run's saved settings (batch size %d, seed %d, learning rates %g/%g); "
                 "only the step count (%d) comes from this call", config.train.batch_size, config.train.seed,
                 config.train.lr_generator, config.train.lr_critic, train.steps)
        return config
    if run.exists() and any(run.iterdir()):
        raise SynthscapeError(f"{run} already exists and is not empty; pass --resume to continue it or choose another --out")
    if len(dataset) == 0:
        raise SynthscapeError("the training data set is empty")
    shape = tuple(dataset[0][0].shape)
    network = network or default_network(len(shape) - 1, shape[1:], shape[0])
    prior = ConditionPrior.from_indices(schema, dataset_conditions(dataset, schema))
    return ArtifactConfig(domain, model, schema, prior, network, train, dict(domain_meta))


def check_batch(config: ArtifactConfig, images: torch.Tensor, condition: torch.Tensor) -> None:
    """The first batch is checked against the network: shape, dtype and the [-1, 1] range."""
    check_inputs(config.network, config.schema.cardinalities, None, condition, images)
    low, high = images.min().item(), images.max().item()
    if low < -1.001 or high > 1.001:
        raise SynthscapeError(f"training images must lie in [-1, 1]; this data set gives {low:.3g}..{high:.3g}")


def write_grids(run: Path, step: int, config: ArtifactConfig, sampler: TorchSampler) -> None:
    """One grid per attribute value (other attributes drawn from the data), same seeds each time."""
    folder = run / "samples" / f"step-{step:08d}"
    for attribute, values in config.schema.attributes:
        for value in values:
            samples = sampler.sample(config.train.samples_per_grid, {attribute: value}, seed=config.train.seed)
            write_png(folder / f"{attribute}={value}.png", grid(samples.images))


def finite_or_raise(metrics: dict[str, float], step: int, last_good: int | None, run: Path) -> None:
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    if bad:
        kept = f"the last good checkpoint (step {last_good}) in {run / 'checkpoint'} is intact" if last_good else "no checkpoint was written yet"
        raise TrainingDiverged(f"training diverged at step {step}: {', '.join(bad)} is NaN or Inf; {kept}")


def train(
    dataset: Dataset,
    run: str | Path,
    *,
    model: str,
    schema: ConditionSchema,
    domain: str = "custom",
    network: NetworkConfig | None = None,
    config: TrainConfig | None = None,
    domain_meta: dict | None = None,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    on_checkpoint: CheckpointCallback | None = None,
) -> ArtifactConfig:
    """Train a conditional GAN or VAE on ``dataset`` of ``(image in [-1, 1], condition indices)``.

    Writes the run directory of design.md and returns its final config. ``on_checkpoint(step,
    folder)`` is called after each checkpoint is complete on disk.

    Under ``torchrun`` each process trains a replica on its own slice of the data with
    ``batch_size`` images per step (the global batch is world size times that), gradients are
    averaged across processes before every optimizer step, and rank 0 alone writes.
    """
    if model not in OBJECTIVES:
        raise SynthscapeError(f"model must be one of {', '.join(OBJECTIVES)}, got {model!r}")
    run = Path(run)
    group, device_ = ProcessGroup.start(select_device(device))
    try:
        # every rank checks the same inputs, so a refusal is every rank's; nobody writes before it
        art = prepare_run(run, resume, dataset, schema, model, domain, network, config or TrainConfig(), domain_meta or {})
        group.barrier()
        return _train(dataset, run, art, resume, device_, group, progress and group.is_main, on_checkpoint)
    finally:
        group.close()


def _train(dataset: Dataset, run: Path, art: ArtifactConfig, resume: bool, device_: torch.device,
           group: ProcessGroup, progress: bool, on_checkpoint: CheckpointCallback | None) -> ArtifactConfig:
    """The loop itself, on this rank, once the run's config is settled."""
    cfg = art.train
    torch.manual_seed(cfg.seed)
    objective = OBJECTIVES[art.model](art.network, cfg, art.schema.cardinalities, device_)
    objective.gradient_sync = group.average_gradients
    layout = memory_format(art.network.spatial_dims)
    for module in objective.modules.values():
        module.to(memory_format=layout)
    if cfg.compile:  # in place: state_dict keys, checkpoints and the exported generator are unchanged
        for name in objective.compiled:
            objective.modules[name].compile()
    noise = torch.Generator(device_).manual_seed(cfg.seed + 1 + NOISE_SEED_STRIDE * group.rank)
    start, last_good = 0, None
    if resume:
        folder = latest_checkpoint(run)
        start, rng = load_checkpoint(folder, objective.modules, objective.optimizers)
        restore_noise(noise, rng, group, cfg.seed, start)
        torch.set_rng_state(rng["torch"])
        last_good = start
        log.info("resuming %s from step %d", run, start)
    group.broadcast_modules(objective.modules.values())
    if start >= cfg.steps:
        log.info("%s is already at step %d of %d; nothing to do", run, start, cfg.steps)
        return art

    if group.is_main:
        run.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, drop_last=True, num_workers=cfg.num_workers,
                        sampler=ResumableSampler(len(dataset), cfg.seed, start * cfg.batch_size * group.world,
                                                 group.rank, group.world),
                        pin_memory=device_.type == "cuda")
    metrics_log = MetricsLog(run, objective.metric_names, resume_step=start if resume else None) if group.is_main else None
    sampler = TorchSampler(art, objective.sampler_network, device_)
    autocast = autocast_for(device_)
    objective.train_mode()
    batches = iter(loader)
    bar = tqdm(range(start + 1, cfg.steps + 1), initial=start, total=cfg.steps, desc=f"train {art.model}",
               unit="step", disable=not progress)
    try:
        for step in bar:
            images, condition = next(batches)
            images = images.to(device_, non_blocking=True).float().contiguous(memory_format=layout)
            condition = condition.to(device_, non_blocking=True).long()
            if step == start + 1:
                check_batch(art, images, condition)
            metrics = {k: float(v) for k, v in objective.step(images, condition, step, noise, autocast).items()}
            metrics = group.average_metrics(metrics)  # every rank sees the same numbers, so all stop together
            finite_or_raise(metrics, step, last_good, run)
            if metrics_log is not None and (step % cfg.log_every == 0 or step == cfg.steps):
                metrics_log.write(step, metrics)
                bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items() if v == v}, refresh=False)
            if group.is_main and (step % cfg.eval_every == 0 or step == cfg.steps):
                write_grids(run, step, art, sampler)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                checkpoint(run, step, art, objective, noise, group)
                last_good = step
                if on_checkpoint is not None and group.is_main:
                    on_checkpoint(step, run / "checkpoint")
    finally:
        if metrics_log is not None:
            metrics_log.close()
        bar.close()
    group.barrier()
    world = f" on {group.world} processes" if group.distributed else ""
    if group.is_main:
        log.info("trained %s %s to step %d%s in %s", art.domain, art.model, cfg.steps, world, run)
    return art


def restore_noise(noise: torch.Generator, rng: dict, group: ProcessGroup, seed: int, step: int) -> None:
    """This rank's latent-noise stream as saved; a fresh one, said in the log, if the world size changed."""
    states = rng["noise_ranks"] if "noise_ranks" in rng else [rng["noise"]]  # "noise": single-process checkpoints of before
    if len(states) == group.world:
        noise.set_state(states[group.rank])
        return
    noise.manual_seed(seed + 1 + NOISE_SEED_STRIDE * (group.world * step + group.rank))
    if group.is_main:
        log.warning("resuming on %d processes a run checkpointed on %d: latent noise and data order continue "
                    "from fresh streams, not the ones an uninterrupted run would have drawn", group.world, len(states))


def checkpoint(run: Path, step: int, art: ArtifactConfig, objective: Objective, noise: torch.Generator,
               group: ProcessGroup) -> None:
    """Checkpoint, then the exportable generator; refuse to write non-finite weights.

    Every rank takes part (its noise state is gathered); rank 0 alone writes. The replicas'
    weights are equal, so the non-finite check gives every rank the same answer."""
    for name, module in objective.modules.items():
        if not all(torch.isfinite(p).all() for p in module.parameters()):
            raise TrainingDiverged(f"training diverged by step {step}: {name} weights are NaN or Inf; earlier checkpoints are intact")
    noise_ranks = group.gather(noise.get_state().cpu())
    if group.is_main:
        save_checkpoint(run, step, objective.modules, objective.optimizers,
                        {"noise_ranks": noise_ranks, "torch": torch.get_rng_state()})
        art.step = step
        save_generator(run, art, objective.sampler_network)
    group.barrier()
