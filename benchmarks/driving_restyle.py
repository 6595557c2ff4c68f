"""The same streets in clear day and in fog at night: does a driving layout model change the look
and not the labels, as the simulator does?

For ``--count`` dashcam streets drawn by the simulator (seed ``--seed``, at the run's size), each
rendered under clear/day, fog/day and fog/night, by the simulator (the same scene, its own weather and
time effects) and by the run's generator (the same label map, the two conditions; what
``synthscape sample RUN --layouts DIR --condition weather=fog --condition time=night`` does):

- ``brightness``: mean luminance (0-255) of the whole picture: fog at night must be darker than
  clear day;
- ``far_contrast``: standard deviation of luminance over the pixels more than ``--far`` metres away
  (the renderer's depth, sky left out): fog by day must lower it against clear day (by day, since
  at night the far lamps and headlights raise it in the simulator's fog too);
- ``labels_same``: the label map and instance map written for both conditions are identical.

Writes JSON beside a picture (``<out stem>.png``: simulator clear | fog-night, generator clear |
fog-night, one row per street).

    python benchmarks/driving_restyle.py runs/driving/run --out benchmarks/results/driving_restyle.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from synthscape.core.networks.artifacts import load_run
from synthscape.core.sampling.sampler import layout_stream
from synthscape.domains.driving.dashcam import render_dashcam
from synthscape.domains.driving.domain import DOMAIN, object_map, render
from synthscape.domains.driving.scene import SEMANTIC

CONDITIONS = {"clear_day": {"weather": "clear", "time": "day"}, "fog_day": {"weather": "fog", "time": "day"},
              "fog_night": {"weather": "fog", "time": "night"}}
SCENARIO = "pedestrian_crossing"


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of uint8 RGB ``[H, W, 3]``."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def looks(pictures: dict[str, np.ndarray], far: np.ndarray) -> dict[str, dict[str, float]]:
    """Brightness and far contrast of each condition's picture."""
    return {name: {"brightness": float(luminance(p).mean()), "far_contrast": float(luminance(p)[far].std())}
            for name, p in pictures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a driving layout run folder (config.json + generator.safetensors)")
    parser.add_argument("--out", type=Path, help="JSON file to write (default: print only)")
    parser.add_argument("--count", type=int, default=8, help="streets (default 8)")
    parser.add_argument("--seed", type=int, default=9, help="seed of the streets (default 9, not the training data's 0)")
    parser.add_argument("--far", type=float, default=40.0, help="metres beyond which contrast is measured (default 40)")
    args = parser.parse_args()

    sampler = load_run(args.run)
    size = int(sampler.domain_meta["size"])
    results, rows = {"simulator": [], "generator": []}, []
    for street in range(args.count):
        scene = render_dashcam(size, SCENARIO, layout_stream(args.seed, street))
        far = (scene.depth > args.far) & (scene.semantic != SEMANTIC.index("sky"))
        simulated, generated, labels_same = {}, {}, True
        for name, condition in CONDITIONS.items():
            full = {**condition, "scenario": SCENARIO}
            simulated[name] = render("dashcam", size, full, layout_stream(args.seed, street))[0]
            drawn = DOMAIN.draw_layout(full, (size, size), sampler.domain_meta, layout_stream(args.seed, street))
            labels_same &= bool(np.array_equal(drawn.labels, scene.semantic)
                                and np.array_equal(drawn.instances, object_map(scene)))
            batch = sampler.sample(1, full, seed=args.seed, start=street,
                                   layouts=lambda c, s, i, d=drawn: d)
            generated[name] = ((np.clip(batch.images[0], -1, 1) + 1) * 127.5).round().astype(np.uint8).transpose(1, 2, 0)
        results["simulator"].append(looks(simulated, far))
        results["generator"].append({**looks(generated, far), "labels_same": labels_same})
        rows.append(np.concatenate([simulated["clear_day"], simulated["fog_night"],
                                    generated["clear_day"], generated["fog_night"]], axis=1))
    summary = {}
    for source, items in results.items():
        summary[source] = {f"{name}_{key}": round(float(np.mean([i[name][key] for i in items])), 2)
                           for name in CONDITIONS for key in ("brightness", "far_contrast")}
        summary[source]["night_darker"] = sum(i["fog_night"]["brightness"] < i["clear_day"]["brightness"] for i in items)
        summary[source]["fog_flatter_far_by_day"] = sum(i["fog_day"]["far_contrast"] < i["clear_day"]["far_contrast"]
                                                        for i in items)
    summary["generator"]["labels_same"] = sum(i["labels_same"] for i in results["generator"])
    report = {"run": str(args.run), "streets": args.count, "size": size, "scenario": SCENARIO, "far_m": args.far,
              "summary": summary, "per_street": results}
    text = json.dumps(report, indent=2)
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(text + "\n")
        picture = np.concatenate(rows, axis=0)
        cv2.imwrite(str(args.out.with_suffix(".png")), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
