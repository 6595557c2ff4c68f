"""The ``synthscape`` command line: domains, simulate, train, sample, export, evaluate, run.

Each command parses its options and calls the verb's service function (``synthscape.services``,
``synthscape.evaluate``, ``synthscape.pipeline``), the same one ``synthscape run`` calls. Every
command exits with code 2 and a one-line reason on bad input, and writes nothing partial.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from synthscape.core.allocator import keep_freed_memory
from synthscape.core.errors import SynthscapeError
from synthscape.core.sampling.shards import torchrun_environment
from synthscape.domains import available_domains, get_domain
from synthscape.sample_options import sample_layouts, sample_request, sample_shard
from synthscape.services import GEOMETRY, export_run, sample_order, simulate_data, train_run

log = logging.getLogger("synthscape")


def positive_int(text: str) -> int:
    """argparse type: an integer of 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer of 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def cmd_domains(args: argparse.Namespace) -> int:
    """Print every domain with its condition schema."""
    for name, domain in available_domains().items():
        print(f"{name} ({domain.spatial_dims}D)")
        for line in domain.schema.describe().splitlines():
            print(f"    {line}")
        if getattr(domain, "labels", None) is not None:
            print(f"    label map: {', '.join(domain.labels.described())}")
    return 0


def domain_options(args: argparse.Namespace, names: Sequence[str]) -> dict:
    """The domain-specific options the user actually gave (the domain refuses ones it lacks)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


SIMULATE_OPTIONS = ("size", "spacing", "formats", "view", "workers", "val_share", "nodule_sizes", "nodule_kinds")


def cmd_simulate(args: argparse.Namespace) -> int:
    """A data set from the domain's simulator."""
    simulate_data(get_domain(args.domain), args.out, args.count, args.seed,
                  domain_options(args, SIMULATE_OPTIONS), overwrite=args.overwrite)
    log.info("simulated %d %s samples in %s", args.count, args.domain, args.out)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a GAN or VAE on a data set folder (or resume one)."""
    from synthscape.core.schema.config import TrainConfig

    rates = {name: value for name in ("lr_generator", "lr_critic") if (value := getattr(args, name)) is not None}
    config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, seed=args.seed, **rates, log_every=args.log_every,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, num_workers=args.workers, compile=args.compile,
        dp_epsilon=args.dp_epsilon, dp_delta=args.dp_delta, dp_max_grad_norm=args.dp_max_grad_norm,
    )
    train_run(get_domain(args.domain), args.data, args.out, model=args.model, config=config,
              geometry=domain_options(args, GEOMETRY), resume=args.resume, device=args.device,
              resume_overrides=tuple(rates),  # rates given with --resume replace the run's (lower, after a divergence)
              allow_outside_paths=args.allow_outside_paths, layout=args.layout, crop=args.crop)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Samples of a run or an ONNX file, by condition, count-per-condition or plan."""
    import synthscape

    generator = synthscape.load(args.model, device=args.device)
    domain = get_domain(generator.domain)
    order, layouts = sample_layouts(args, generator, domain)
    order = order or sample_request(args, generator.schema)
    shard, out = sample_shard(args.shard, args.out)
    written = sample_order(generator, domain, order, out, seed=args.seed, start=args.start,
                           batch_size=args.batch_size, formats=args.format, shard=shard, overwrite=args.overwrite,
                           inputs=(args.model, *([args.plan] if args.plan else []), *([args.layouts] if args.layouts else [])),
                           layouts=layouts)
    part = f" (shard {shard.index}/{shard.count}: samples {written.first}-{written.last})" if shard else ""
    log.info("wrote %d samples (%d files)%s to %s", written.samples, written.files, part, out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A run's generator as an ONNX file, with its parity checks printed."""
    report = export_run(args.run, args.out, precision=args.precision, opset=args.opset, overwrite=args.overwrite)
    log.info("exported %s to %s (onnx.checker passed; fp32 max |onnx - torch| %s; %s vs fp32: max %.2g, mean %.2g)",
             args.run, args.out, ", ".join(f"batch {b}: {e:.1e}" for b, e in report["parity"].items()),
             args.precision, report["precision_error"]["max"], report["precision_error"]["mean"])
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """metrics.json and report.html for a generator against real data."""
    from synthscape.evaluate import evaluate_model

    evaluate_model(args.model, args.data, args.out, seed=args.seed, holdout=args.holdout,
                   classifier_steps=args.classifier_steps, utility_steps=args.utility_steps, pool=args.pool,
                   segmenter_steps=args.segmenter_steps,
                   overwrite=args.overwrite, allow_outside_paths=args.allow_outside_paths)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The whole pipeline (default: the lung-ct main job), resumable into the same --out."""
    from synthscape.pipeline import default_pipeline, run_pipeline
    from synthscape.pipeline_config import read_pipeline

    pipeline = read_pipeline(args.pipeline) if args.pipeline else default_pipeline()
    if args.steps:
        pipeline.train.steps = args.steps
    if args.count:
        pipeline.simulate.count = args.count
    if args.size:
        pipeline.simulate.options["size"] = args.size
    name = args.pipeline.stem if args.pipeline else pipeline.domain
    out = args.out or Path("runs") / time.strftime(f"{name}-%Y%m%d-%H%M%S")
    seconds = run_pipeline(out, pipeline, device=args.device)
    log.info("done in %.0f s (%s) -> %s", sum(seconds.values()), ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), out)
    for what, path in (("report", out / "report" / "report.html"), ("samples", out / "samples"),
                       ("ONNX generator", out / "generator.onnx")):
        if path.exists():
            print(f"{what}: {path}")
    return 0


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``, as every command that writes a folder spells it."""
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists: the new folder is "
                        "built beside it and swapped in only when complete")


def add_geometry_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--size`` and ``--spacing``: the geometry to simulate at, or to read training data at."""
    parser.add_argument("--size", type=positive_int, help=f"{what} image size in voxels/pixels per axis "
                        "(lung-ct: default 64 to simulate, the data's own to train; driving: default 256 to "
                        "simulate, 64 to train)")
    parser.add_argument("--spacing", type=float, metavar="MM", help=f"{what} voxel spacing in mm (lung-ct: default "
                        "fits the thorax in the field of view to simulate, the data's own to train)")


def add_data_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--data`` and ``--allow-outside-paths``, as train and evaluate spell them."""
    parser.add_argument("--data", type=Path, required=True, help=what)
    parser.add_argument("--allow-outside-paths", action="store_true", help="labels.csv may name files outside --data "
                        "(absolute paths, .., symbolic links leading out); off by default because a shared data "
                        "folder could otherwise pull any file on this machine into the model and report.html")


def add_domains_command(sub: argparse._SubParsersAction) -> None:
    """``synthscape domains``: no options."""
    p = sub.add_parser("domains", help="list domains and their condition schemas")
    p.set_defaults(func=cmd_domains)


def add_simulate_command(sub: argparse._SubParsersAction) -> None:
    """``synthscape simulate``: output folder, count, seed, geometry and the domains' own simulator options."""
    p = sub.add_parser("simulate", help="write a labelled data set from a domain's embedded simulator")
    p.add_argument("domain", help="domain name (see 'synthscape domains')")
    p.add_argument("--out", type=Path, required=True, help="new folder for the data set (must not exist or be empty, unless --overwrite)")
    p.add_argument("--count", type=positive_int, required=True, help="number of samples to simulate")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    add_geometry_options(p, "simulated")
    p.add_argument("--view", choices=("dashcam", "aerial"), help="driving only: dashcam (default) or aerial (drone)")
    p.add_argument("--workers", type=positive_int, help="processes simulating (default: one per CPU core, up to 8, "
                   "for 64 samples or more); the volumes and images are the same for any number")
    p.add_argument("--val-share", type=float, metavar="F", help="driving only: the share of the scenes in the "
                   "validation split (train.txt / val.txt, instances_train.json / instances_val.json, the split "
                   "column of labels.csv), strictly between 0 and 1, seeded and stratified by condition; default 0.2")
    p.add_argument("--format", dest="formats", action="append", metavar="FMT",
                   help="output format(s), repeatable or comma-separated (lung-ct: nifti, dicom; default nifti)")
    p.add_argument("--nodule-sizes", metavar="S,S", help="lung-ct only: the sizes the nodules (half the phantoms "
                   "hold one) are drawn from, comma-separated: small (3-6 mm), medium (6-15), large (15-30); default all")
    p.add_argument("--nodule-kinds", metavar="K,K", help="lung-ct only: the kinds the nodules are drawn from, "
                   "comma-separated: solid, ground_glass, part_solid; default all")
    add_overwrite_option(p)
    p.set_defaults(func=cmd_simulate)


def add_train_command(sub: argparse._SubParsersAction) -> None:
    """``synthscape train``: data, model kind, schedule, learning rates, device, DP-SGD and geometry."""
    p = sub.add_parser("train", help="train a conditional GAN or VAE on a domain's data")
    p.add_argument("domain", help="domain name (see 'synthscape domains')")
    add_data_options(p, "data set folder (files + labels.csv)")
    p.add_argument("--model", choices=("gan", "vae"), required=True, help="model kind")
    p.add_argument("--out", type=Path, required=True, help="run folder: config.json, generator.safetensors, checkpoint/, metrics.csv, samples/")
    p.add_argument("--steps", type=positive_int, default=2000, help="total optimisation steps (default 2000); with --resume, the new total")
    p.add_argument("--batch-size", type=positive_int, default=16, help="images per step (default 16)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed for weights, data order and noise (default 0)")
    p.add_argument("--lr-generator", type=positive_float, help="Adam learning rate of generator / VAE (default 2e-4; "
                   "with --resume, replaces the run's, e.g. lower after a divergence)")
    p.add_argument("--lr-critic", type=positive_float, help="Adam learning rate of the GAN critic (default 2e-4; "
                   "with --resume, replaces the run's)")
    p.add_argument("--log-every", type=positive_int, default=10, help="steps between metrics.csv rows (default 10)")
    p.add_argument("--eval-every", type=positive_int, default=500, help="steps between sample grids (default 500)")
    p.add_argument("--checkpoint-every", type=positive_int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks, for long runs on a GPU: the "
                   "first step takes minutes to compile; on CPU it measured no faster than eager (the 3D GAN at 64^3: "
                   "1.60 against 1.43 s a step on 2 cores, benchmarks/train_scale.py)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA (bf16 autocast) when present, else CPU")
    p.add_argument("--dp-epsilon", type=float, metavar="E", help="train with differential privacy (DP-SGD, Opacus) "
                   "to a total budget of epsilon E: the GAN critic, or the whole VAE, sees Poisson batches, clipped "
                   "per-sample gradients and Gaussian noise sized before training so that --steps spend at most E; "
                   "the epsilon spent is logged and stored in config.json (docs/privacy.md)")
    p.add_argument("--dp-delta", type=float, metavar="D", help="delta of the DP guarantee, in (0, 1) (default: "
                   "min(1e-5, 1/N^1.1) for N training items, well below 1/N)")
    p.add_argument("--dp-max-grad-norm", type=float, default=1.0, metavar="C", help="DP-SGD clip: each training "
                   "item's gradient is scaled down to norm at most C before the noise is added (default 1.0)")
    p.add_argument("--layout", action="store_true", help="train a layout model: the generator renders the label "
                   "maps the data's labels.csv lists (mask column; label_mapping.json beside it maps other values "
                   "to the domain's classes, see 'synthscape domains'), so every sample carries its exact mask and "
                   "renders at any size")
    p.add_argument("--crop", type=positive_int, metavar="N", help="layout models: train on class-balanced crops of N "
                   "voxels/pixels per axis (default 32 in 3D, 128 in 2D, at most the data's size; a multiple of 8)")
    add_geometry_options(p, "training")
    p.set_defaults(func=cmd_train)


def add_sample_command(sub: argparse._SubParsersAction) -> None:
    """``synthscape sample``: what to make (count, condition, plan), seeds and shards, formats, device."""
    p = sub.add_parser("sample", help="generate labelled samples from a trained run")
    p.add_argument("model", type=Path, help="run folder written by 'synthscape train', or a .onnx file from "
                   "'synthscape export' (needs no torch)")
    how_many = p.add_mutually_exclusive_group()
    how_many.add_argument("--count", type=non_negative_int, help="number of samples, all of the --condition given")
    how_many.add_argument("--count-per-condition", type=positive_int, metavar="N",
                          help="N samples of the --condition given, or of every --plan row without its own count")
    p.add_argument("--out", type=Path, required=True, help="new folder for the samples (must not exist or be empty, unless --overwrite)")
    p.add_argument("--condition", action="append", default=[], metavar="A=V",
                   help="condition attribute=value, repeatable; attributes left out follow the training data")
    p.add_argument("--plan", type=Path, metavar="CSV", help="order several conditions at once: a CSV with one column "
                   "per attribute (empty cell: as the training data has it) and a count column; exactly those "
                   "counts are made, indices running on across rows")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed; sample i depends only on (seed, i) (default 0)")
    p.add_argument("--start", type=non_negative_int, default=0, help="index of the first sample (default 0)")
    p.add_argument("--shard", metavar="I/N", help="make only part I of N (0-based) of the samples, for separate "
                   "machines; the N parts together are the unsharded samples bit for bit, their file names never "
                   "collide. Under torchrun each rank takes its part by itself and writes to --out/shard-RRR-of-NNN")
    p.add_argument("--format", action="append", metavar="FMT",
                   help="output format(s), repeatable or comma-separated (lung-ct: nifti, dicom; default: the domain's)")
    p.add_argument("--size", type=positive_int, metavar="N", help="layout models: render label maps of N voxels/pixels "
                   "per axis, drawn by the domain's simulator for each sample's condition (default: the training "
                   "data's size; a multiple of the generator's stride, 8 by default)")
    p.add_argument("--layouts", type=Path, metavar="DIR", help="layout models: render the label maps of DIR (a "
                   "folder like the training data: files + labels.csv with a mask column, e.g. a 'synthscape "
                   "simulate' output or real masks), one sample per row in row order with that row's condition; "
                   "--count takes the first rows; --condition may restyle them where the layout leaves the attribute "
                   "open (driving: weather, time: the same streets in fog at night)")
    p.add_argument("--allow-outside-paths", action="store_true", help="with --layouts: its labels.csv may name "
                   "files outside it (off by default, as for --data)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="samples per network call (default 16)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device for sampling (default cpu); for a .onnx file "
                   "the onnxruntime execution provider (cuda needs onnxruntime-gpu)")
    add_overwrite_option(p)
    p.set_defaults(func=cmd_sample)


def add_export_command(sub: argparse._SubParsersAction) -> None:
    """``synthscape export``: the ONNX file, its precision and opset."""
    p = sub.add_parser("export", help="export a run's generator to ONNX, checked for parity with torch")
    p.add_argument("run", type=Path, help="run folder written by 'synthscape train'")
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                   help="fp32 (default); fp16 (weights and activations, float32 inputs and outputs); int8 (static "
                   "quantization calibrated on sampled latents, and a layout model's on blob label maps); the error "
                   "against fp32 is checked and printed")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset version (default 17)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_export)


def add_evaluate_command(sub: argparse._SubParsersAction) -> None:
    """``synthscape evaluate``: the real data, the held-out share and the evaluation networks' budgets."""
    p = sub.add_parser("evaluate", help="score a generator against real data: metrics.json + report.html")
    p.add_argument("model", type=Path, help="run folder written by 'synthscape train', or a .onnx file")
    add_data_options(p, "the real data set folder (files + labels.csv) it learnt from")
    p.add_argument("--out", type=Path, required=True, help="new folder for metrics.json and report.html (unless --overwrite)")
    p.add_argument("--holdout", type=float, default=0.25, help="share of the real data held out as the reference (default 0.25)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the split, the samples and the evaluation networks (default 0)")
    p.add_argument("--classifier-steps", type=positive_int, default=300,
                   help="training steps of the label classifier, trained on the real data (default 300)")
    p.add_argument("--utility-steps", type=positive_int, default=200,
                   help="training steps of each downstream model of the utility metrics (default 200)")
    p.add_argument("--segmenter-steps", type=positive_int, default=1000,
                   help="layout models: training steps of each segmentation network of the mask rows (mask fidelity, "
                        "segmentation TSTR / TRTR), trained on crops; fewer make a weaker judge (default 1000)")
    p.add_argument("--pool", type=positive_int, default=1,
                   help="the label classifier, set distances and downstream models see images average-pooled by this "
                        "factor per axis: 2 makes a 64^3 volume the 32^3 they are sized for, at an eighth of the cost; "
                        "mask rows and pictures keep full resolution (default 1)")
    add_overwrite_option(p)
    p.set_defaults(func=cmd_evaluate)


def add_run_command(sub: argparse._SubParsersAction) -> None:
    """``synthscape run``: the pipeline file and the few overrides worth a flag."""
    p = sub.add_parser("run", help="the main job: simulate -> train -> sample -> evaluate -> export")
    p.add_argument("pipeline", nargs="?", type=Path, help="pipeline YAML (examples/*.yaml; default: the lung-ct "
                   "pipeline on the embedded simulator)")
    p.add_argument("--out", type=Path, help="folder for data/, run/, samples/, report/, generator.onnx (default "
                   "runs/NAME-DATE-TIME); rerun with the same --out to resume an interrupted run")
    p.add_argument("--steps", type=positive_int, help="override the pipeline's training steps")
    p.add_argument("--count", type=positive_int, help="override the pipeline's number of simulated samples")
    p.add_argument("--size", type=positive_int, help="override the pipeline's simulated size in voxels/pixels per axis")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when present, else CPU")
    p.set_defaults(func=cmd_run)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; ``--help`` on any of them explains each option."""
    parser = argparse.ArgumentParser(
        prog="synthscape",
        description="Labelled synthetic data for lung CT and driving/drone scenes: simulate, train "
                    "conditional GANs/VAEs, sample by condition label.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_domains_command(sub)
    add_simulate_command(sub)
    add_train_command(sub)
    add_sample_command(sub)
    add_export_command(sub)
    add_evaluate_command(sub)
    add_run_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (2 with a one-line reason on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        env = torchrun_environment()
        distributed = env is not None and env["WORLD_SIZE"] > 1
        logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                            format=f"synthscape[rank {env['RANK']}]: %(message)s" if distributed else "synthscape: %(message)s")
        logging.getLogger("highdicom").setLevel(logging.WARNING)  # its INFO is a line per module copied into each SEG
        if distributed and args.func not in (cmd_train, cmd_sample):  # the others would run N times over one folder
            name = args.func.__name__.removeprefix("cmd_")
            raise SynthscapeError(f"'synthscape {name}' does not run under torchrun (WORLD_SIZE={env['WORLD_SIZE']}): "
                                  "launch it as one process; torchrun is for 'train' and 'sample'")
        keep_freed_memory()  # core/allocator.py: 1.3x faster 3D training steps on CPU
        return args.func(args)
    except SynthscapeError as exc:
        print(f"synthscape: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("synthscape: interrupted; the last complete checkpoint and outputs are intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
