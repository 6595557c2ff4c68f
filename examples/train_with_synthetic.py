"""Train a nodule classifier on real CT, then on real + synthetic CT, and compare on held-out real CT.

simulate a small "real" lung-ct set (a training part and a held-out part; the chest phantom
simulator stands in for your own CT) -> train a conditional GAN on the training part, or take
--run -> train the same small classifier twice in a plain torch loop, on the real training set and
on ConcatDataset([real, SyntheticDataset(run)]) with a WeightedRandomSampler that sets the synthetic
share of every batch -> print the held-out nodule-presence accuracy of both.

    python examples/train_with_synthetic.py --out runs/synthetic-example [--run runs/x/run] [--steps 300]

The defaults take a few minutes on 2 CPU cores and show the pattern, not a gain: at 32^3 the
phantoms have ~10 mm voxels, so most nodules are one voxel, and this small classifier stays near
chance on 48 real volumes in 150 steps (0.47 on 64 held-out volumes, both arms, here). A 300-step
generator is weak too (nodule fidelity needs about 1200, docs/evaluation.md). For a comparison
that means something, raise --size, --real and --classifier-steps and pass a well-trained --run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

import synthscape
from synthscape.cli import main as synthscape_cli
from synthscape.core.evaluation.label_classifier import LabelClassifier
from synthscape.domains import get_domain

LUNG = get_domain("lung-ct")
NODULE = LUNG.schema.names.index("nodule")
BALANCED = {"nodule=present": 1, "nodule=absent": 1}  # what the synthetic part is asked for


def cli(argv: list[str]) -> None:
    if synthscape_cli(["-q", *argv]) != 0:
        raise SystemExit(f"synthscape {argv[0]} failed")


def train_classifier(data: Dataset, weights: torch.Tensor, args: argparse.Namespace) -> LabelClassifier:
    """A nodule-presence classifier trained for ``args.classifier_steps`` batches drawn by ``weights``;
    the same initial weights and the same number of steps whatever the data."""
    torch.manual_seed(args.seed)
    model = LabelClassifier(spatial_dims=3, in_channels=1, cardinalities=[2])
    order = WeightedRandomSampler(weights, num_samples=args.classifier_steps * args.batch_size, replacement=True,
                                  generator=torch.Generator().manual_seed(args.seed))
    loader = DataLoader(data, batch_size=args.batch_size, sampler=order, num_workers=args.workers,
                        persistent_workers=args.workers > 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for images, conditions in loader:
        loss = F.cross_entropy(model(images)[0], conditions[:, NODULE])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@torch.no_grad()
def accuracy(model: LabelClassifier, data: Dataset) -> float:
    model.eval()
    right = 0
    for images, conditions in DataLoader(data, batch_size=16):
        right += int((model(images)[0].argmax(1) == conditions[:, NODULE]).sum())
    return right / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic-example"), help="new folder for data and run")
    parser.add_argument("--run", type=Path, help="a trained lung-ct run folder or .onnx file (default: train one)")
    parser.add_argument("--real", type=int, default=48, help="real training volumes (default 48)")
    parser.add_argument("--held-out", type=int, default=64, help="real held-out volumes (default 64)")
    parser.add_argument("--size", type=int, default=32, help="volume size per axis (default 32)")
    parser.add_argument("--steps", type=int, default=300, help="GAN training steps when no --run (default 300)")
    parser.add_argument("--synthetic", type=int, default=256, help="synthetic items in the data set (default 256)")
    parser.add_argument("--synthetic-share", type=float, default=0.5,
                        help="share of synthetic items in every training batch (default 0.5)")
    parser.add_argument("--classifier-steps", type=int, default=150, help="classifier training steps (default 150)")
    parser.add_argument("--batch-size", type=int, default=16, help="classifier batch size (default 16)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of classifier weights, batch order and samples")
    args = parser.parse_args()
    if not 0 <= args.synthetic_share < 1:
        parser.error(f"--synthetic-share must lie in [0, 1), got {args.synthetic_share}")

    started = time.perf_counter()
    train_dir, held_out_dir = args.out / "real-train", args.out / "real-held-out"
    cli(["simulate", "lung-ct", "--out", str(train_dir), "--count", str(args.real), "--size", str(args.size)])
    cli(["simulate", "lung-ct", "--out", str(held_out_dir), "--count", str(args.held_out), "--size", str(args.size),
         "--seed", "1"])
    run = args.run
    if run is None:
        run = args.out / "run"
        cli(["train", "lung-ct", "--data", str(train_dir), "--model", "gan", "--out", str(run),
             "--steps", str(args.steps), "--eval-every", str(args.steps), "--checkpoint-every", str(args.steps)])
    print(f"data and generator ready in {time.perf_counter() - started:.0f} s")

    real = LUNG.dataset(train_dir, progress=False)
    held_out = LUNG.dataset(held_out_dir, progress=False)
    synthetic = synthscape.SyntheticDataset(run, BALANCED, length=args.synthetic, seed=args.seed)
    if synthetic[0][0].shape != real[0][0].shape:
        raise SystemExit(f"{run} makes volumes of shape {list(synthetic[0][0].shape)}, the real data has "
                         f"{list(real[0][0].shape)}: pass --size to match the run")

    results = {}
    only_real = torch.full((len(real),), 1.0 / len(real), dtype=torch.double)
    results["real only"] = accuracy(train_classifier(real, only_real, args), held_out)
    # One data set, two parts; the sampler's weights decide how much of every batch each part is.
    mixed = ConcatDataset([real, synthetic])
    weights = torch.cat([only_real * (1 - args.synthetic_share),
                         torch.full((len(synthetic),), args.synthetic_share / len(synthetic), dtype=torch.double)])
    results["real + synthetic"] = accuracy(train_classifier(mixed, weights, args), held_out)

    print(f"held-out nodule-presence accuracy on {len(held_out)} real volumes "
          f"({args.classifier_steps} steps of {args.batch_size} each):")
    print(f"  {results['real only']:.3f}  real only ({len(real)} volumes)")
    print(f"  {results['real + synthetic']:.3f}  real + synthetic ({len(synthetic)} items from {run}, "
          f"{args.synthetic_share:.0%} of each batch)")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
