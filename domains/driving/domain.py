"""The driving domain: render scenes, apply weather and time, write PNG + COCO + YOLO + masks.

``simulate`` and ``write`` need no torch (the edge install); ``dataset`` does.

A simulated data set folder::

    images/scene-000000.png     the RGB picture
    masks/scene-000000.png      semantic classes (pixel value = index into SEMANTIC)
    instances/scene-000000.png  16-bit instance ids of the objects with a box (0: none)
    labels/scene-000000.txt     YOLO boxes; classes.txt and data.yaml name the classes
    annotations.json            COCO boxes of every image (file names relative to images/)
    train.txt, val.txt          YOLO lists of each split; data.yaml names them (Ultralytics)
    instances_train.json, instances_val.json   COCO boxes of each split
    labels.csv                  path, weather, time, scenario, view, seed, index, box count, split
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import write_text
from synthscape.core.files.grids import write_png
from synthscape.core.schema.labelmap import Layout
from synthscape.domains.base import read_meta, register
from synthscape.domains.driving.aerial import render_aerial
from synthscape.domains.driving.dashcam import render_dashcam
from synthscape.domains.driving.formats import write_detection_sets, yolo_lines
from synthscape.domains.driving.generated import write_detection_files, write_pictures
from synthscape.domains.driving.scene import Box, Scene
from synthscape.domains.driving.schema import LABELS, SCENARIOS, SCHEMA, TIMES, VIEWS, WEATHERS, DrivingMeta
from synthscape.domains.driving.splits import VAL_SHARE, split_names
from synthscape.domains.driving.weather import apply_conditions
from synthscape.domains.labels import write_labels
from synthscape.domains.parallel import parallel_map

RENDERERS = {"dashcam": render_dashcam, "aerial": render_aerial}
FORMATS = ("png",)
# The simulator's label mix: rare conditions over-represented so that a generator sees enough of
# each to learn it (a fleet's own data is the other way round).
MIX = {"weather": (WEATHERS, (0.4, 0.2, 0.2, 0.2)), "time": (TIMES, (0.5, 0.2, 0.3)),
       "scenario": (SCENARIOS, (0.4, 0.15, 0.15, 0.15, 0.15))}
MIN_VISIBLE = 0.25  # a box for an object at least this fraction visible
FOG_VISIBILITY = (30.0, 150.0)  # metres (where fog leaves 5 % of an object's contrast)
AERIAL_HAZE_HEIGHT = 15.0  # a drone's fog visibility scales with its distance to the ground / this


def draw_condition(rng: np.random.Generator) -> dict[str, str]:
    """A random weather, time and scenario, drawn from the simulator's mix (``MIX``)."""
    return {name: str(values[rng.choice(len(values), p=weights)]) for name, (values, weights) in MIX.items()}


def render(view: str, size: int | tuple[int, int], condition: dict[str, str], rng: np.random.Generator
           ) -> tuple[np.ndarray, list[Box], Scene]:
    """One labelled picture: the clear-day scene, then its time of day and weather; the boxes of
    the objects that are visible, behind what is in front of them and within the fog."""
    if view not in RENDERERS:
        raise SynthscapeError(f"unknown driving view {view!r}; valid views: {', '.join(VIEWS)}")
    scene = RENDERERS[view](size, condition["scenario"], rng)
    # fog and haze in metres for a street-level camera; a drone sees through its own height of air
    haze_scale = 1.0 if view == "dashcam" else float(np.median(scene.depth)) / AERIAL_HAZE_HEIGHT
    visibility = float(rng.uniform(*FOG_VISIBILITY)) * haze_scale
    image = apply_conditions(scene.image, condition["weather"], condition["time"], rng, depth=scene.depth,
                             semantic=scene.semantic, lights=scene.lights, visibility=visibility,
                             haze_scale=haze_scale)
    boxes = scene.boxes(MIN_VISIBLE)
    if condition["weather"] == "fog":  # beyond the visibility, fog leaves under 5 % of the contrast
        far = {obj.instance for obj in scene.objects if obj.distance > visibility}
        boxes = [box for box in boxes if box.instance not in far]
    return image, boxes, scene


def simulate_one(out: Path, seed: int, size: int, view: str, index: int) -> tuple[dict, tuple[str, int, int], list[Box]]:
    """Render scene ``index`` of ``seed`` and write its picture, mask and YOLO file; return its
    labels.csv row, COCO image entry and boxes."""
    rng = np.random.default_rng([seed, index])
    condition = draw_condition(rng)
    image, boxes, scene = render(view, size, condition, rng)
    name = f"scene-{index:06d}"
    height, width = image.shape[:2]
    write_png(out / "images" / f"{name}.png", image)
    write_png(out / "masks" / f"{name}.png", scene.semantic)
    write_png(out / "instances" / f"{name}.png", object_map(scene))
    write_text(out / "labels" / f"{name}.txt", yolo_lines(boxes, width, height))
    row = {"path": f"images/{name}.png", **condition, "view": view, "mask": f"masks/{name}.png",
           "instances": f"instances/{name}.png", "yolo": f"labels/{name}.txt", "boxes": len(boxes), "seed": seed,
           "index": index}
    return row, (f"{name}.png", width, height), boxes


def object_map(scene: Scene) -> np.ndarray:
    """The scene's instance map (uint16) with only the objects that earn a box in clear weather (at
    least ``MIN_VISIBLE`` visible): what a layout's boxes come from when it is rendered again, under
    any weather. Fog's far objects keep theirs; how far a generated fog hides is the picture's."""
    kept = [box.instance for box in scene.boxes(MIN_VISIBLE)]
    return np.where(np.isin(scene.instances, kept), scene.instances, 0).astype(np.uint16)


class Driving:
    """The driving domain: simulated dashcam and drone pictures with boxes and masks, training
    data from an image folder, and generated images written back as PNGs."""

    name = "driving"
    schema = SCHEMA
    labels = LABELS
    appearance = ("weather", "time")  # what a layout does not fix: `sample --layouts` may set these by --condition
    mask_score = "miou"  # the evaluation's mask rows: a street-scene segmenter of every class, scored by mIoU
    mask_focus = "pedestrian,cyclist,debris"  # ... with the IoU of the road users and hazards beside it
    spatial_dims = 2
    meta_type = DrivingMeta

    def simulate(self, out: Path, count: int, seed: int, size: int = 256, view: str = "dashcam",
                 workers: int | None = None, val_share: float = VAL_SHARE, **options: Any) -> Path:
        """Rendered scenes with visible-object boxes (COCO, YOLO), semantic masks and labels.csv,
        split into train and val (``val_share`` of the scenes, stratified by condition).

        Scene ``i`` depends on (seed, i) alone, so ``workers`` processes (default: one per CPU
        core for more than 64 scenes) make exactly the files one process makes.
        """
        if options:
            raise SynthscapeError(f"driving simulate does not take {', '.join(options)}; it takes size, view, "
                                  "workers, val_share")
        if int(size) < 16:
            raise SynthscapeError(f"driving size must be at least 16 pixels, got {size}")
        if view not in RENDERERS:
            raise SynthscapeError(f"unknown driving view {view!r}; valid views: {', '.join(VIEWS)}")
        if not 0 < float(val_share) < 1:
            raise SynthscapeError(f"driving val_share (--val-share) must lie strictly between 0 and 1, got {val_share}")
        results = parallel_map(partial(simulate_one, out, seed, size, view), count, workers,
                               desc=f"simulate driving ({view})", unit="scene")
        rows = [row for row, _, _ in results]
        for row, split in zip(rows, split_names(rows, float(val_share), seed)):
            row["split"] = split
        write_detection_sets(out, [image for _, image, _ in results], [boxes for _, _, boxes in results],
                             [row["split"] for row in rows])
        write_labels(out, rows, SCHEMA, extras=("view", "mask", "instances", "yolo", "boxes", "seed", "index", "split"))
        return out

    def dataset(self, path: Path, size: int | None = None, allow_outside_paths: bool = False, layout: bool = False,
                progress: bool = True, **options: Any):
        """The training set of an image folder with labels.csv, as ``size`` x ``size`` tensors (needs torch),
        with each row's label map for a ``layout`` model; images outside ``path`` are refused unless
        ``allow_outside_paths``."""
        from synthscape.domains.driving.dataset import DrivingDataset

        if options:
            raise SynthscapeError(f"driving training does not take {', '.join(options)}; it takes size")
        return DrivingDataset(path, size=size, allow_outside_paths=allow_outside_paths, layout=layout, progress=progress)

    def draw_layout(self, condition: Mapping[str, str], size: Sequence[int], meta: Mapping[str, Any] | None,
                    rng: np.random.Generator) -> Layout:
        """A label map (``LABELS`` ids, uint8 ``[H, W]``) of a new scene for ``condition``'s scenario,
        in the view of ``meta`` (a run's ``domain_meta``; none recorded: dashcam), with its objects'
        instance map (``object_map``) for the boxes. Weather and time change no class, so they are
        the generator's to render. What a layout model renders when no layouts are given."""
        view = read_meta(DrivingMeta, meta, self.name).view or "dashcam"
        scenario = SCHEMA.validate(dict(condition))["scenario"]
        height, width = (int(s) for s in size)
        scene = RENDERERS[view]((height, width), scenario, rng)
        return Layout(scene.semantic.astype(np.uint8), object_map(scene))

    def write(self, images: np.ndarray, conditions: Sequence[dict[str, str]], out: Path,
              formats: Sequence[str] | str | None = None, *, seed: int | None = None,
              indices: Sequence[int] | None = None, meta: Mapping[str, Any] | None = None,
              layouts: np.ndarray | None = None, instances: np.ndarray | None = None) -> list[Path]:
        """Generated images ``[N, 3, H, W]`` in [-1, 1] -> ``images/sample-N.png`` + labels.csv.
        ``meta`` (``DrivingMeta``) is checked; PNGs are written at the images' own size. A layout
        model's label maps ``layouts`` ``[N, H, W]`` are written beside them (``masks/``), and with
        their ``instances`` the objects' instance maps and YOLO boxes (``generated.write_pictures``)."""
        read_meta(DrivingMeta, meta, self.name)
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise SynthscapeError(f"driving writes RGB images [N, 3, H, W], got {list(images.shape)}")
        unknown = [f for item in ([formats] if isinstance(formats, str) else formats or ())
                   for f in item.split(",") if f.strip() and f.strip() not in FORMATS]
        if unknown:
            raise SynthscapeError(f"unknown driving sample format {unknown[0]!r}; generated images are written as "
                                  f"{', '.join(FORMATS)}")
        indices = list(range(len(images))) if indices is None else list(indices)
        files, rows = write_pictures(out, images, conditions, seed, indices, layouts, instances)
        extras = [c for c in ("seed", "index", "mask", "instances", "yolo", "boxes") if rows and c in rows[0]]
        files.append(write_labels(out, rows, SCHEMA, extras=extras or ("seed", "index")))
        return files

    def finish_samples(self, out: Path, rows: list[dict[str, str]]) -> list[Path]:
        """After a whole order is written: the detection files of samples with boxes (COCO, splits,
        data.yaml; ``generated.write_detection_files``), adding each row's ``split``."""
        return write_detection_files(out, rows)


DOMAIN = register(Driving(), replace=True)
