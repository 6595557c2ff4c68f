"""Does a lower-precision ONNX export still draw the condition it is asked for? Label fidelity of
the torch generator and of its fp32, fp16 and int8 exports, side by side on the same draws.

One label classifier is trained on the real data's train split (as ``synthscape evaluate`` does);
each backend draws the same (seed, index) samples for the held-out rows' conditions; per attribute
the share read back as requested is reported, with the classifier's accuracy on the held-out real
data as the reference and the mean |image - fp32 image|. Writes JSON.

    python benchmarks/precision_fidelity.py RUN DATA --out benchmarks/results/precision_fidelity_DOMAIN.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import synthscape
from synthscape.core.evaluation.label_classifier import train_label_classifier
from synthscape.core.evaluation.suite import Generated, split
from synthscape.domains import get_domain
from synthscape.evaluate import real_arrays
from synthscape.exports.onnx_export import export_onnx

PRECISIONS = ("fp32", "fp16", "int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder written by 'synthscape train'")
    parser.add_argument("data", type=Path, help="the real data set folder it was trained on")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/precision_fidelity.json"), help="JSON output path")
    parser.add_argument("--holdout", type=float, default=0.25, help="held-out share of the real data (default 0.25)")
    parser.add_argument("--classifier-steps", type=int, default=300, help="label classifier steps (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed of split, classifier and draws (default 0)")
    args = parser.parse_args()

    samplers = {"torch": synthscape.load(args.run)}
    domain = get_domain(samplers["torch"].domain)
    images, conditions, _ = real_arrays(domain, args.data, samplers["torch"].domain_meta)
    train, held = split(conditions, args.holdout, args.seed)
    classifier = train_label_classifier(images[train], conditions[train], domain.schema.cardinalities,
                                        domain.spatial_dims, steps=args.classifier_steps, seed=args.seed)
    names = domain.schema.names
    results = {"run": str(args.run), "data": str(args.data), "held_out": len(held),
               "real_held_out": dict(zip(names, classifier.accuracy(images[held], conditions[held])))}
    with tempfile.TemporaryDirectory() as folder:
        for precision in PRECISIONS:
            path = Path(folder) / f"{precision}.onnx"
            export_onnx(args.run, path, precision=precision)
            samplers[f"onnx {precision}"] = synthscape.load(path)
        drawn = {name: Generated(sampler, args.seed).like(conditions[held])[0] for name, sampler in samplers.items()}
    reference = drawn["onnx fp32"]
    for name, generated in drawn.items():
        results[name] = {"label_fidelity": dict(zip(names, classifier.accuracy(generated, conditions[held]))),
                         "mean_abs_diff_to_fp32": float(np.abs(generated - reference).mean())}
        print(f"{name:10s} " + ", ".join(f"{k} {v:.3f}" for k, v in results[name]["label_fidelity"].items())
              + f"; mean |x - fp32| {results[name]['mean_abs_diff_to_fp32']:.4f}", flush=True)
    print("real held-out: " + ", ".join(f"{k} {v:.3f}" for k, v in results["real_held_out"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
