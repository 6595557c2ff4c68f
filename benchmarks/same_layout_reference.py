"""How different can images of one label map be? The simulator's own answer, beside the report's bar.

The report's "one label map, many images" row compares renders of one label map with real volumes
of the same condition, each its own patient (issue 18: "at least half of it"). This benchmark asks
the lung phantom what images that share a label map look like, by drawing one patient and then
redrawing, from a second seeded generator, everything from a given step of the phantom's fixed
draw order on (``chest_phantom``: "the draws come in a fixed order"):

- ``noise``: the final blur and voxel noise only. The lung, vessel, airway and nodule masks (the
  default label map) and every other structure stay; this is what a faithful renderer of the
  default map can vary, at most, where the body around the lungs is fixed too.
- ``trees``: the vessel and airway trees, the nodule's place and the noise. The lung outline and
  the body stay; this is what a renderer of a lung-only map that invents vessels, airways and
  the nodule's place could vary.
- ``patients``: a new patient per image, the same condition (the report's reference).

Each is 1 - mean pairwise MS-SSIM within a group (``within_condition_diversity``, the report's
function), on 64^3 volumes at 1.25 mm in the report's [-1, 1] HU window, for ``--maps`` patients of
each condition and ``--renders`` images of each. Writes JSON.

    python benchmarks/same_layout_reference.py --out benchmarks/results/same_layout_reference.json
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from synthscape.core.evaluation.diversity import within_condition_diversity
from synthscape.domains.lung_ct import phantom
from synthscape.domains.lung_ct.schema import HU_WINDOW

CONDITIONS = [
    {"nodule": "absent", "size": "none", "kind": "none"},
    {"nodule": "present", "size": "small", "kind": "solid"},
    {"nodule": "present", "size": "medium", "kind": "ground_glass"},
    {"nodule": "present", "size": "large", "kind": "part_solid"},
]


class SwitchingGenerator:
    """A ``np.random.Generator`` stand-in that forwards to ``first`` until ``switch()``, then to ``second``."""

    def __init__(self, first: np.random.Generator, second: np.random.Generator):
        self._active, self._second = first, second

    def switch(self) -> None:
        self._active = self._second

    def __getattr__(self, name):
        return getattr(self._active, name)


@contextmanager
def switch_at(step: str, rng: SwitchingGenerator):
    """Switch ``rng`` to its second generator when the phantom reaches ``step``, by wrapping the
    phantom module's function for that step for the duration of the block."""
    if step == "noise":
        name, original = "gaussian_blur", phantom.gaussian_blur

        def wrapped(hu, sigma):  # the blur's width was drawn just before the call: redraw it too
            rng.switch()
            return original(hu, float(rng.uniform(0.6, 0.85)))
    elif step == "trees":
        name, original = "vessel_trees", phantom.vessel_trees

        def wrapped(patient, h, _):
            rng.switch()
            return original(patient, h, rng)
    else:
        raise ValueError(f"step must be noise or trees, got {step!r}")
    setattr(phantom, name, wrapped)
    try:
        yield
    finally:
        setattr(phantom, name, original)


def image(condition: dict, patient: int, redraw: int | None, step: str | None, size: int, spacing: float) -> np.ndarray:
    """One phantom volume in the report's [-1, 1] window: patient ``patient``, redrawn from ``step`` on
    with seed ``redraw`` (or the patient as drawn)."""
    first = np.random.default_rng(patient)
    if step is None:
        hu = phantom.chest_phantom(size, spacing, condition, first).hu
    else:
        rng = SwitchingGenerator(first, np.random.default_rng([patient, 10_000 + redraw]))
        with switch_at(step, rng):
            hu = phantom.chest_phantom(size, spacing, condition, rng).hu
    low, high = HU_WINDOW
    return np.clip((hu.astype(np.float32) - low) / (high - low) * 2 - 1, -1, 1)[None]


def measure(step: str | None, maps: int, renders: int, size: int, spacing: float) -> dict:
    """Within-group diversity, a group being one patient's images (or, for ``None``, one condition's patients)."""
    images, groups = [], []
    for c, condition in enumerate(CONDITIONS):
        for m in range(maps):
            patient = 1000 * c + m
            for r in range(renders):
                if step is None:  # the reference: different patients of one condition
                    images.append(image(condition, 1000 * c + 100 + m * renders + r, None, None, size, spacing))
                    groups.append([c, 0])
                else:
                    images.append(image(condition, patient, r, step, size, spacing))
                    groups.append([c, m])
    result = within_condition_diversity(np.stack(images), np.asarray(groups))
    per_condition = {}
    for key, value in result["groups"].items():
        per_condition.setdefault(CONDITIONS[int(key.split(",")[0])]["size"], []).append(value)
    return {"diversity": result["diversity"],
            "per_condition": {k: float(np.mean(v)) for k, v in per_condition.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="JSON file to write (default: print only)")
    parser.add_argument("--maps", type=int, default=4, help="patients (label maps) per condition")
    parser.add_argument("--renders", type=int, default=4, help="images of each label map")
    parser.add_argument("--size", type=int, default=64, help="volume side in voxels (the default run's 64)")
    parser.add_argument("--spacing", type=float, default=1.25, help="voxel spacing in mm (the default run's 1.25)")
    args = parser.parse_args()
    start = time.perf_counter()
    result = {"size": args.size, "spacing_mm": args.spacing, "maps_per_condition": args.maps,
              "renders_per_map": args.renders, "conditions": CONDITIONS}
    for name, step in (("noise", "noise"), ("trees", "trees"), ("patients", None)):
        result[name] = measure(step, args.maps, args.renders, args.size, args.spacing)
        print(f"{name}: 1 - MS-SSIM {result[name]['diversity']:.3f}", flush=True)
    reference = result["patients"]["diversity"]
    result["ratio_to_patients"] = {k: result[k]["diversity"] / reference for k in ("noise", "trees")}
    result["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
