"""Order rare driving scenarios from a generator trained on the simulator, on a CPU.

simulate 500 dashcam scenes (256x256) -> train a conditional GAN at 64x64 -> sample a plan of
rare combinations -> PNG grids of the simulator and of the generator (docs/images/).

    python examples/driving_rare_scenarios.py --out runs/driving-example [--steps 400]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import cv2
import numpy as np

from synthscape.cli import main as synthscape
from synthscape.core.files.atomic import write_bytes

PLAN = """weather,time,scenario,count
fog,night,pedestrian_crossing,8
snow,dusk,stalled_vehicle,8
rain,night,cyclist,8
clear,day,debris,8
"""


def run(argv: list[str]) -> None:
    if synthscape(argv) != 0:
        raise SystemExit(f"synthscape {argv[0]} failed")


def write_jpeg(path: Path, picture: np.ndarray) -> None:
    """Documentation pictures as JPEG (a tenth of the PNG's size)."""
    write_bytes(path, cv2.imencode(".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])[1].tobytes())


def mosaic(folder: Path, rows: list[dict[str, str]], per_row: int = 8, size: int = 128) -> np.ndarray:
    """Images of ``rows`` in a grid, ``per_row`` across, each resized to ``size``."""
    tiles = [cv2.resize(cv2.cvtColor(cv2.imread(str(folder / r["path"])), cv2.COLOR_BGR2RGB), (size, size),
                        interpolation=cv2.INTER_AREA) for r in rows]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % per_row)
    return np.concatenate([np.concatenate(tiles[i: i + per_row], axis=1) for i in range(0, len(tiles), per_row)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/driving-example"), help="new folder for everything")
    parser.add_argument("--count", type=int, default=500, help="simulated scenes (default 500)")
    parser.add_argument("--steps", type=int, default=400, help="GAN training steps (default 400)")
    parser.add_argument("--docs", type=Path, default=Path("docs/images"), help="where the two grids go (default docs/images)")
    args = parser.parse_args()

    seconds = {}
    data, run_dir, samples = args.out / "data", args.out / "run", args.out / "samples"
    start = time.perf_counter()
    run(["simulate", "driving", "--out", str(data), "--count", str(args.count), "--view", "dashcam"])
    seconds["simulate"] = time.perf_counter() - start
    start = time.perf_counter()
    run(["train", "driving", "--data", str(data), "--model", "gan", "--out", str(run_dir), "--size", "64",
                       "--steps", str(args.steps), "--batch-size", "16", "--eval-every", str(args.steps)])
    seconds["train"] = time.perf_counter() - start
    plan = args.out / "plan.csv"
    plan.write_text(PLAN)
    start = time.perf_counter()
    run(["sample", str(run_dir), "--plan", str(plan), "--out", str(samples)])
    seconds["sample"] = time.perf_counter() - start

    # the simulator's pictures of the same combinations (then of the same scenario, if too few)
    rows = list(csv.DictReader((data / "labels.csv").open()))
    simulated = []
    for line in PLAN.splitlines()[1:]:
        weather, time_of_day, scenario, _ = line.split(",")
        same = [r for r in rows if (r["weather"], r["time"], r["scenario"]) == (weather, time_of_day, scenario)]
        simulated += (same + [r for r in rows if r["scenario"] == scenario and r not in same])[:8]
    args.docs.mkdir(parents=True, exist_ok=True)
    write_jpeg(args.docs / "driving_simulator.jpg", mosaic(data, rows[:32]))
    write_jpeg(args.docs / "driving_simulator_rare.jpg", mosaic(data, simulated))
    write_jpeg(args.docs / "driving_generator.jpg", mosaic(samples, list(csv.DictReader((samples / "labels.csv").open()))))
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
