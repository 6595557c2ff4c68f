"""What the layout GAN's ``reconstruction`` weight buys and costs, on the default lung data.

For each weight W (``--weights``), the default lung pipeline's training (examples/lung_ct.yaml:
layout GAN, 32^3 crops, batch 4, mode seeking 0.1, ``--steps`` steps) with ``reconstruction: W``,
run as a user runs it (``synthscape run`` on a pipeline file, no evaluation), then scored on the
held-out quarter of the data (the report's split):

- ``dice``: nodule Dice of renders of the held-out label maps, by one nodule-vs-rest segmenter
  trained ``--segmenter-steps`` on the real train split (the report's mask fidelity), beside
  ``dice_real``, the same segmenter on the held-out real volumes;
- ``same_layout``: 1 - mean pairwise MS-SSIM of 8 renders of each of 3 held-out label maps (the
  report's "one label map, many images"), beside real volumes of one condition;
- ``l1``: mean absolute difference between each held-out render and its real volume;
- ``steps_per_s``: training speed (the weights share one machine load only roughly: read Dice).

Writes JSON and, per weight, ``<out stem>_W.png``: six held-out nodule slices, real | two renders
with different noise | label map.

    python benchmarks/layout_reconstruction.py --out benchmarks/results/layout_reconstruction.json  # ~35 min
    python benchmarks/layout_reconstruction.py --weights 100 --steps 10 --segmenter-steps 50  # a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SLICES = 6


def default():
    """The default pipeline (``synthscape.pipeline.default_pipeline``, = examples/lung_ct.yaml): the
    data and training this benchmark varies one weight of, read from it so the two cannot drift apart."""
    from synthscape.pipeline import default_pipeline

    return default_pipeline()


def simulate(folder: Path) -> Path:
    """The default pipeline's data (160 phantoms at 64^3 and 1.25 mm when last measured)."""
    stage, data = default().simulate, folder / "data"
    options = [f"--{key}={value}" for key, value in stage.options.items()]
    subprocess.run([sys.executable, "-m", "synthscape", "simulate", "lung-ct", "--out", str(data), "--count",
                    str(stage.count), "--seed", str(default().seed), *options], check=True)
    return data


def train(data: Path, folder: Path, weight: float, steps: int) -> tuple[Path, float]:
    """``synthscape run`` of the default training with ``reconstruction: weight`` and ``steps``; the
    run folder and its steps/s. The pipeline is written as JSON, which YAML reads as it is."""
    pipeline, stage = default(), default().train
    training = {"model": stage.model, "layout": stage.layout, "crop": stage.crop, "batch_size": stage.batch_size,
                **stage.options, "steps": steps, "reconstruction": weight, "eval_every": steps, "checkpoint_every": steps}
    path = folder / f"w{weight:g}.yaml"
    path.write_text(json.dumps({"domain": pipeline.domain, "seed": pipeline.seed, "data": str(data), "train": training,
                                "sample": {"formats": ["nifti"], "plan": [{"condition": {"nodule": "present"}, "count": 1}]},
                                "evaluate": False, "export": False}))
    out = folder / f"w{weight:g}"
    subprocess.run([sys.executable, "-m", "synthscape", "run", str(path), "--out", str(out)], check=True)
    seconds = json.loads((out / "stages.json").read_text())["train"]
    return out / "run", steps / seconds


def picture(real: np.ndarray, renders: list[np.ndarray], layouts: np.ndarray, focus: list[int], path: Path) -> None:
    """Axial slices through each item's nodule: real | renders | label map, rows of items."""
    import cv2

    rows = []
    for k in range(len(real)):
        z = int(np.argmax(np.isin(layouts[k], focus).sum((0, 1))))
        tiles = [real[k, 0, :, :, z], *(r[k, 0, :, :, z] for r in renders), layouts[k][:, :, z] / 3.0 - 1]
        rows.append(np.concatenate([np.pad(t, 1, constant_values=1) for t in tiles], 1))
    image = ((np.concatenate(rows) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))


def judge(data: Path, segmenter_steps: int) -> dict:
    """The real data (at the default run's geometry), the report's split and the nodule-vs-rest
    segmenter trained on the real train split: the same for every weight."""
    from synthscape.core.evaluation.diversity import within_condition_diversity
    from synthscape.core.evaluation.segmentation import train_segmenter
    from synthscape.core.evaluation.suite import split
    from synthscape.domains import get_domain
    from synthscape.evaluate import real_arrays

    domain, options = get_domain("lung-ct"), default().simulate.options
    meta = {"size": [options["size"]] * 3, "spacing": [options["spacing"]] * 3}
    images, conditions, layouts = real_arrays(domain, data, meta, layout=True)
    train_index, held = split(conditions, 0.25, 0)
    focus = [i for i, name in enumerate(domain.labels.classes) if name.startswith(domain.mask_focus)]
    binary = np.isin(layouts, focus).astype(np.int64)
    segmenter = train_segmenter(images[train_index], binary[train_index], 2, steps=segmenter_steps, seed=0, crop=32)
    return {"images": images, "conditions": conditions, "layouts": layouts, "held": held, "focus": focus,
            "binary": binary, "segmenter": segmenter,
            "same_condition_real": within_condition_diversity(images[held], conditions[held])["diversity"]}


def score(run: Path, real: dict, picture_path: Path) -> dict:
    """The figures of the module docstring for one trained run."""
    import synthscape
    from synthscape.core.evaluation.diversity import within_condition_diversity
    from synthscape.core.evaluation.segmentation import mask_fidelity
    from synthscape.core.evaluation.suite import Generated

    sampler = synthscape.load(run)
    images, conditions, layouts, held, binary = (real[k] for k in ("images", "conditions", "layouts", "held", "binary"))
    renders, _ = Generated(sampler, 0).like(conditions[held], layouts[held])
    three = held[[0, 1, len(held) // 2]]
    again, _ = Generated(sampler, 5).like(np.repeat(conditions[three], 8, 0), np.repeat(layouts[three], 8, 0))
    same = within_condition_diversity(again, np.repeat(np.arange(3), 8)[:, None])["diversity"]
    with_nodule = [i for i in range(len(held)) if binary[held[i]].any()][:SLICES]
    second, _ = Generated(sampler, 1).like(conditions[held[with_nodule]], layouts[held[with_nodule]])
    picture(images[held[with_nodule]], [renders[with_nodule], second], layouts[held[with_nodule]], real["focus"],
            picture_path)
    dice, dice_real = (mask_fidelity(real["segmenter"], x, binary[held], [1]) for x in (renders, images[held]))
    return {"dice": dice, "dice_real": dice_real, "dice_ratio": dice / dice_real, "same_layout": same,
            "same_condition_real": real["same_condition_real"], "l1": float(np.abs(renders - images[held]).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0, 10, 30, 100], help="reconstruction weights")
    parser.add_argument("--steps", type=int, default=250, help="training steps per weight (the default run's 250)")
    parser.add_argument("--segmenter-steps", type=int, default=1000, help="the judging segmenter's steps")
    parser.add_argument("--data", type=Path, help="a lung-ct data folder with masks (default: simulate the default's)")
    parser.add_argument("--out", type=Path, default=Path("layout_reconstruction.json"), help="JSON results")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or simulate(Path(tmp))
        real = judge(data, args.segmenter_steps)
        for weight in args.weights:
            start = time.perf_counter()
            run, rate = train(data, Path(tmp), weight, args.steps)
            figures = score(run, real, args.out.with_name(f"{args.out.stem}_{weight:g}.png"))
            results.append({"reconstruction": weight, "steps": args.steps, "steps_per_s": rate, **figures,
                            "seconds": time.perf_counter() - start})
            print(json.dumps(results[-1]), flush=True)
    args.out.write_text(json.dumps({"segmenter_steps": args.segmenter_steps, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
