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
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from synthscape.core.allocator import keep_freed_memory
from synthscape.core.errors import SynthscapeError, TrainingDiverged
from synthscape.core.files.atomic import leftovers, remove_entry, remove_leftovers
from synthscape.core.files.lock import writer_lock
from synthscape.core.networks.artifacts import CONFIG, TorchSampler, save_generator
from synthscape.core.networks.nets import check_inputs
from synthscape.core.progress import progress as show_progress
from synthscape.core.sampling.shards import torchrun_environment
from synthscape.core.schema.conditions import ConditionPrior, ConditionSchema
from synthscape.core.schema.config import ArtifactConfig, NetworkConfig, TrainConfig, default_network
from synthscape.core.schema.labelmap import LabelMapSchema
from synthscape.core.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from synthscape.core.networks.crops import crop_batch
from synthscape.core.training.data import ResumableSampler, dataset_conditions
from synthscape.core.training.devices import autocast_for, memory_format, select_device
from synthscape.core.training.distributed import ProcessGroup
from synthscape.core.training.gan import GAN
from synthscape.core.training.metrics_log import MetricsLog
from synthscape.core.training.objective import Objective
from synthscape.core.training.layout_runs import grid_items, layout_network
from synthscape.core.training.privacy import (
    PrivacyPlan,
    check_private_resume,
    check_world,
    plan_privacy,
    poisson_loader,
    private_settings,
)
from synthscape.core.training.sample_grids import write_grids, write_layout_grid
from synthscape.core.training.vae import VAE

log = logging.getLogger("synthscape")
OBJECTIVES: dict[str, type[Objective]] = {"gan": GAN, "vae": VAE}
CheckpointCallback = Callable[[int, Path], None]
NOISE_SEED_STRIDE = 1_000_003  # rank r draws latents from seed + 1 + stride * r: disjoint streams
RUN_FILES = {CONFIG, "generator.safetensors", "checkpoint", "metrics.csv", "samples", "tensorboard"}
RESUME_OVERRIDES = {"lr_generator", "lr_critic"}  # besides steps, what a resume may change: gentler rates after a divergence


def prepare_run(run: Path, resume: bool, dataset: Dataset, schema: ConditionSchema, model: str, domain: str,
                network: NetworkConfig | None, train: TrainConfig, domain_meta: dict,
                overrides: Iterable[str] = (), labels: LabelMapSchema | None = None,
                crop: int | None = None) -> ArtifactConfig:
    """The run's config: new from the arguments, or (resume) as saved, with ``steps`` and the
    ``overrides`` (names in ``RESUME_OVERRIDES``) taken from ``train``.

    ``--resume`` of a run that was stopped before its first checkpoint starts it over: the folder
    holds nothing but what training itself leaves behind, and refusing it would refuse forever."""
    if run.exists() and not run.is_dir():
        raise SynthscapeError(f"{run} is a file, not a run folder; choose another --out")
    if resume and latest_checkpoint(run) is not None:
        config = ArtifactConfig.read(run / CONFIG)
        if config.model != model or config.domain != domain:
            raise SynthscapeError(f"--resume: {run} is a {config.domain} {config.model} run, not {domain} {model}")
        unknown = set(overrides) - RESUME_OVERRIDES
        if unknown:
            raise SynthscapeError(f"a resumed run keeps its settings; only steps and {', '.join(sorted(RESUME_OVERRIDES))} "
                                  f"may change, not {', '.join(sorted(unknown))}")
        for name in ("steps", *overrides):
            setattr(config.train, name, getattr(train, name))
        if config.privacy is not None:
            check_private_resume(config.privacy, config.train.steps)
        log.info("resuming with the run's saved settings (batch size %d, seed %d); from this call: steps %d, "
                 "learning rates %g/%g%s", config.train.batch_size, config.train.seed, train.steps,
                 config.train.lr_generator, config.train.lr_critic, "" if overrides else " (as saved)")
        return config
    if resume and not (run.is_dir() and left_behind(run)):
        raise SynthscapeError(f"--resume: {run} holds no checkpoint to resume from")
    if resume:
        log.warning("--resume: %s stopped before its first checkpoint; starting it over", run)
    elif run.exists() and any(run.iterdir()):
        stopped = " (a run stopped before its first checkpoint: --resume starts it over)" if left_behind(run) else ""
        raise SynthscapeError(f"{run} already exists and is not empty{stopped}; pass --resume to continue it or choose another --out")
    if len(dataset) == 0:
        raise SynthscapeError("the training data set is empty")
    first = dataset[0]
    if (len(first) == 3) != (labels is not None):
        raise SynthscapeError("a layout model trains on (image, condition, label map) items, a class-only one on "
                              "(image, condition); this data set gives the other kind")
    shape = tuple(first[0].shape)
    if train.reconstruction > 0 and (labels is None or model != "gan"):
        raise SynthscapeError(f"reconstruction {train.reconstruction} compares a layout GAN's renders with the real images "
                              "of their label maps: train a gan with --layout, or set reconstruction to 0")
    if labels is not None:
        network = layout_network(network, shape, labels, crop, train)
    network = network or default_network(len(shape) - 1, shape[1:], shape[0])
    prior = ConditionPrior.from_indices(schema, dataset_conditions(dataset, schema))
    privacy = None
    if train.private:  # DP-SGD: the settings it needs, and the noise that spends the target epsilon
        network, train = private_settings(model, network, train)
        privacy = plan_privacy(train, len(dataset)).to_dict()
    return ArtifactConfig(domain, model, schema, prior, network, train, dict(domain_meta), privacy=privacy, label_map=labels)


def left_behind(run: Path) -> bool:
    """Whether ``run`` holds only what training writes (and their temporaries): nothing of the user's."""
    names = {entry.name for entry in run.iterdir()} - {p.name for p in leftovers(run, RUN_FILES)}
    return names <= RUN_FILES


def check_batch(config: ArtifactConfig, images: torch.Tensor, condition: torch.Tensor,
                layout: torch.Tensor | None = None) -> None:
    """The first batch is checked against the network: shape, dtype and the [-1, 1] range (whether
    items carry label maps was checked on the first item, by ``prepare_run``)."""
    check_inputs(config.network, config.schema.cardinalities, None, condition, images, layout)
    low, high = images.min().item(), images.max().item()
    if low < -1.001 or high > 1.001:
        raise SynthscapeError(f"training images must lie in [-1, 1]; this data set gives {low:.3g}..{high:.3g}")


def finite_or_raise(metrics: dict[str, float], step: int, last_good: int | None, run: Path, art: ArtifactConfig) -> None:
    """Stop at the first NaN or Inf loss, before it reaches a checkpoint (``diverged`` says how to go on)."""
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise diverged(f"{', '.join(bad)} is NaN or Inf", step, last_good, run, art)


def diverged(what: str, step: int, last_good: int | None, run: Path, art: ArtifactConfig) -> TrainingDiverged:
    """One line: where it blew up, what is kept, and the command-line way on (10x lower rates)."""
    cfg = art.train
    rates = [("generator", cfg.lr_generator)] + ([("critic", cfg.lr_critic)] if art.model == "gan" else [])
    lower = " ".join(f"--lr-{name} {lr / 10:g}" for name, lr in rates)
    now = "/".join(f"{lr:g}" for _, lr in rates)
    if last_good is None:
        kept = "no checkpoint was written yet; start over"
    else:
        kept = f"kept the last good checkpoint (step {last_good}) in {run / 'checkpoint' / f'step-{last_good:08d}'}; resume from it"
    return TrainingDiverged(f"training diverged at step {step}: {what}; {kept} with lower learning rates "
                            f"(now {now}), e.g. --resume {lower}")


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
    resume_overrides: Iterable[str] = (),
    labels: LabelMapSchema | None = None,
    crop: int | None = None,
) -> ArtifactConfig:
    """Train a conditional GAN or VAE on ``dataset`` of ``(image in [-1, 1], condition indices)``.

    Writes the run directory (README, "A run folder holds"; docs/core.md) as its one writer (``run_lock``) and
    returns its final config. ``on_checkpoint(step, folder)`` is called after each checkpoint is complete on
    disk. A resumed run keeps its saved settings but ``config.steps`` and the ``resume_overrides``.

    Under ``torchrun`` each process trains a replica on its own slice of the data, ``batch_size`` images a
    step (world size times that in all); gradients are averaged before each optimizer step; rank 0 writes.

    With ``labels`` (a layout model), items are ``(image, condition, label map)`` and the generator
    renders label maps (``core/networks/layout.py``), trained on class-balanced crops of side
    ``crop`` (``core/training/crops.py``; default: ``layout_runs.layout_network``).
    """
    if model not in OBJECTIVES:
        raise SynthscapeError(f"model must be one of {', '.join(OBJECTIVES)}, got {model!r}")
    run = Path(run)
    if config is not None and config.private:  # before joining a process group that DP would not use
        check_world((torchrun_environment() or {"WORLD_SIZE": 1})["WORLD_SIZE"])
    with run_lock(run):  # a second train or --resume of this folder stops here, before it deletes anything
        group, device_ = ProcessGroup.start(select_device(device))
        try:
            # every rank checks the same inputs, so a refusal is every rank's; nobody writes before it
            art = prepare_run(run, resume, dataset, schema, model, domain, network, config or TrainConfig(),
                              domain_meta or {}, resume_overrides, labels, crop)
            if art.privacy is not None:
                check_world(group.world)
            over = resume and latest_checkpoint(run) is None  # stopped before its first checkpoint: start over
            group.barrier()
            if resume and group.is_main:  # a killed run's temporaries (never a name of the user's), or all of it
                start_over(run) if over else remove_leftovers(run, RUN_FILES)
            return _train(dataset, run, art, resume and not over, device_, group, progress and group.is_main,
                          on_checkpoint)
        finally:
            group.close()


def run_lock(run: Path) -> contextlib.AbstractContextManager:
    """The run folder's writer lock (``core.files.lock``), on rank 0 alone: torchrun's other ranks write nothing."""
    return writer_lock(run) if (torchrun_environment() or {"RANK": 0})["RANK"] == 0 else contextlib.nullcontext()


def start_over(run: Path) -> None:
    """Empty a folder ``left_behind`` vouched for, so that the new run appends to none of the old files."""
    for entry in run.iterdir():
        remove_entry(entry)


def _train(dataset: Dataset, run: Path, art: ArtifactConfig, resume: bool, device_: torch.device,
           group: ProcessGroup, progress: bool, on_checkpoint: CheckpointCallback | None) -> ArtifactConfig:
    """The loop itself, on this rank, once the run's config is settled."""
    cfg = art.train
    keep_freed_memory()  # glibc: reuse freed activation memory rather than page-fault it in again (1.3x at 64^3 on CPU)
    torch.manual_seed(cfg.seed)
    objective = build_objective(art, device_, group)
    noise = torch.Generator(device_).manual_seed(cfg.seed + 1 + NOISE_SEED_STRIDE * group.rank)
    start = restore(run, objective, noise, group, cfg.seed) if resume else 0
    group.broadcast_modules(objective.modules.values())
    if start >= cfg.steps:
        log.info("%s is already at step %d of %d; nothing to do", run, start, cfg.steps)
        return art
    if group.is_main:
        run.mkdir(parents=True, exist_ok=True)
    loop = Loop(run, art, objective, noise, group, device_, on_checkpoint, last_good=start if resume else None)
    if art.label_map is not None:
        loop.grid_items = grid_items(dataset, art.train.samples_per_grid)
    loop.run(batch_loader(dataset, art, objective, start, device_, group), start, progress, resume)
    group.barrier()
    world = f" on {group.world} processes" if group.distributed else ""
    if group.is_main:
        log.info("trained %s %s to step %d%s in %s", art.domain, art.model, cfg.steps, world, run)
    return art


def build_objective(art: ArtifactConfig, device_: torch.device, group: ProcessGroup) -> Objective:
    """The run's networks and optimizers, channels-last, private or compiled as its config says."""
    cfg = art.train
    objective = OBJECTIVES[art.model](art.network, cfg, art.schema.cardinalities, device_)
    objective.gradient_sync = group.average_gradients
    if art.privacy is not None:
        objective.make_private(PrivacyPlan.from_dict(art.privacy), art.prior)
    layout = memory_format(art.network.spatial_dims)
    for module in objective.modules.values():
        module.to(memory_format=layout)
    if cfg.compile:  # in place: state_dict keys, checkpoints and the exported generator are unchanged
        for name in objective.compiled:
            objective.modules[name].compile()
    return objective


def restore(run: Path, objective: Objective, noise: torch.Generator, group: ProcessGroup, seed: int) -> int:
    """Load the latest checkpoint into ``objective`` and the RNGs; returns its step.

    The learning rates stay the config's (a resume may lower them after a divergence)."""
    folder = latest_checkpoint(run)
    rates = {name: [g["lr"] for g in o.param_groups] for name, o in objective.optimizers.items()}
    start, rng = load_checkpoint(folder, objective.modules, objective.optimizers)
    for name, optimizer in objective.optimizers.items():
        for param_group, lr in zip(optimizer.param_groups, rates[name]):
            param_group["lr"] = lr
    restore_noise(noise, rng, group, seed, start)
    torch.set_rng_state(rng["torch"])
    if objective.dp is not None:
        objective.dp.load_state_dict(rng.get("privacy"), start)
    log.info("resuming %s from step %d", run, start)
    return start


def batch_loader(dataset: Dataset, art: ArtifactConfig, objective: Objective, start: int, device_: torch.device,
                 group: ProcessGroup) -> DataLoader:
    """Batches from step ``start + 1`` on: this rank's slice of the seeded order, or Poisson batches (DP-SGD)."""
    cfg = art.train
    if art.privacy is not None:  # Poisson batches, as the accountant assumes
        return poisson_loader(dataset, objective.dp.plan, art.network, len(art.schema.cardinalities), cfg.seed,
                              start, cfg.num_workers, device_.type == "cuda")
    return DataLoader(dataset, batch_size=cfg.batch_size, drop_last=True, num_workers=cfg.num_workers,
                      sampler=ResumableSampler(len(dataset), cfg.seed, start * cfg.batch_size * group.world,
                                               group.rank, group.world),
                      pin_memory=device_.type == "cuda")


class Loop:
    """One rank's steps: batch -> ``objective.step`` -> NaN guard -> log, grids, checkpoints."""

    def __init__(self, run: Path, art: ArtifactConfig, objective: Objective, noise: torch.Generator,
                 group: ProcessGroup, device_: torch.device, on_checkpoint: CheckpointCallback | None,
                 last_good: int | None):
        self.run_dir, self.art, self.objective, self.noise = run, art, objective, noise
        self.group, self.device, self.on_checkpoint, self.last_good = group, device_, on_checkpoint, last_good
        self.layout = memory_format(art.network.spatial_dims)
        self.sampler = TorchSampler(art, objective.sampler_network, device_)
        self.autocast = autocast_for(device_)
        self.checked = False
        self.grid_items = None  # a layout model's grid: fixed training label maps and conditions (``grid_items``)

    def run(self, loader: DataLoader, start: int, progress: bool, resume: bool) -> None:
        """Steps ``start + 1`` .. ``steps``; metrics.csv is appended to on a resume."""
        cfg = self.art.train
        metrics_log = (MetricsLog(self.run_dir, self.objective.metric_names, resume_step=start if resume else None)
                       if self.group.is_main else None)
        self.objective.train_mode()
        batches = iter(loader)
        bar = show_progress(range(start + 1, cfg.steps + 1), initial=start, total=cfg.steps,
                            desc=f"train {self.art.model}", unit="step", enabled=progress)
        try:
            for step in bar:
                metrics = self.step(step, *next(batches))
                if metrics_log is not None and (step % cfg.log_every == 0 or step == cfg.steps):
                    metrics_log.write(step, metrics)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items() if v == v}, refresh=False)
                self.after_step(step)
        finally:
            if metrics_log is not None:
                metrics_log.close()
            bar.close()

    def step(self, step: int, images: torch.Tensor, condition: torch.Tensor,
             layout: torch.Tensor | None = None) -> dict[str, float]:
        """One optimisation step on a batch (a layout model's: cropped with its label maps); every
        rank gets the same, finite, metrics or raises."""
        images, condition = images.to(self.device, non_blocking=True).float(), condition.to(self.device, non_blocking=True).long()
        if layout is not None:
            layout = layout.to(self.device, non_blocking=True).long()
            images, layout = crop_batch(images, layout, self.art.network.image_size, self.noise)
        images = images.contiguous(memory_format=self.layout)
        if not self.checked and len(images):  # a Poisson batch (DP) may be empty
            check_batch(self.art, images, condition, layout)
            self.checked = True
        metrics = self.objective.step(images, condition, step, self.noise, self.autocast, layout=layout)
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics = self.group.average_metrics(metrics)  # every rank sees the same numbers, so all stop together
        finite_or_raise(metrics, step, self.last_good, self.run_dir, self.art)
        return metrics

    def after_step(self, step: int) -> None:
        """Sample grids and checkpoints on their schedules (and at the last step)."""
        cfg = self.art.train
        if self.group.is_main and (step % cfg.eval_every == 0 or step == cfg.steps):
            if self.grid_items is not None:
                write_layout_grid(self.run_dir, step, self.art, self.sampler, *self.grid_items)
            else:
                write_grids(self.run_dir, step, self.art, self.sampler)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint(self.run_dir, step, self.art, self.objective, self.noise, self.group, self.last_good)
            self.last_good = step
            if self.on_checkpoint is not None and self.group.is_main:
                self.on_checkpoint(step, self.run_dir / "checkpoint")


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
               group: ProcessGroup, last_good: int | None = None) -> None:
    """The exportable generator, then the checkpoint; refuse to write non-finite weights.

    The generator and config.json go first: a kill between the two leaves them a step ahead of
    latest.json (harmless, the resume rewrites them), never a checkpoint without its config.json.
    Every rank takes part (its noise state is gathered); rank 0 alone writes. The replicas'
    weights are equal, so the non-finite check gives every rank the same answer."""
    for name, module in objective.modules.items():
        if not all(torch.isfinite(t).all() for t in module.state_dict().values() if t.is_floating_point()):
            raise diverged(f"{name} weights are NaN or Inf", step, last_good, run, art)
    noise_ranks = group.gather(noise.get_state().cpu())
    rng = {"noise_ranks": noise_ranks, "torch": torch.get_rng_state()}
    if objective.dp is not None:  # the accountant, as plain lists; the epsilon spent so far into config.json
        rng["privacy"] = objective.dp.state_dict()
        art.privacy = objective.dp.summary()
        log.info(objective.dp.message())
    if group.is_main:
        art.step = step
        save_generator(run, art, objective.sampler_network)
        save_checkpoint(run, step, objective.modules, objective.optimizers, rng)
    group.barrier()
