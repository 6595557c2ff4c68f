"""The layout model's part of the evaluation: does the image obey its label map, and does one label map
give many images?

- **Mask fidelity**: a segmentation network (``segmentation.py``, MONAI's UNet) trained on the
  real train split looks for the focus classes (lung-ct: the nodule kinds) in images rendered from
  the held-out items' label maps, scored by Dice against those label maps. Reference: the same
  network on the held-out real images against their own masks.
- **Segmentation utility**: the same network trained on renders of the train split's label maps
  instead of the real images, tested on held-out real (TSTR), against the real-trained one (TRTR).
- **One layout, many images**: renders of one label map with different sample indices (latent and
  noise maps), their within-condition diversity against real items of the same condition: a
  generator that ignores its noise makes one image per layout, however good that image is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from synthscape.core.evaluation.diversity import within_condition_diversity
from synthscape.core.evaluation.segmentation import mask_fidelity, scene_iou, train_segmenter
from synthscape.core.evaluation.verdicts import MetricRow

if TYPE_CHECKING:
    from synthscape.core.evaluation.suite import _Run

log = logging.getLogger("synthscape")


def focus_ids(run: _Run) -> list[int]:
    """The classes the mask rows score (``settings.mask_focus``: class-name prefixes, comma-separated;
    empty: every class but the background)."""
    classes = run.draw.sampler.label_map.classes
    prefixes = tuple(p.strip() for p in run.settings.mask_focus.split(",")) if run.settings.mask_focus else ("",)
    return [i for i, name in enumerate(classes) if i and name.startswith(prefixes)]


def mask_rows(run: _Run, matched: np.ndarray, synthetic: np.ndarray) -> None:
    """Mask fidelity (``matched``: renders of the held-out label maps) and segmentation TSTR / TRTR
    (``synthetic``: renders of the train label maps), scored as ``settings.mask_score`` says: the
    focus classes as one, by Dice (``focus_rows``), or every class, by IoU (``class_rows``)."""
    log.info("evaluate: segmentation networks on %d real / %d rendered items (%d steps each)", len(run.x_train),
             len(synthetic), run.settings.segmenter_steps)
    (class_rows if run.settings.mask_score == "miou" else focus_rows)(run, matched, synthetic)


def _segmenter(run: _Run, images: np.ndarray, label_maps: np.ndarray, classes: int):
    """A segmenter trained on ``images`` and ``label_maps`` with the run's seed, steps and crop."""
    return train_segmenter(images, label_maps, classes, steps=run.settings.segmenter_steps, seed=run.seed,
                           crop=run.settings.segmenter_crop or None)


def focus_rows(run: _Run, matched: np.ndarray, synthetic: np.ndarray) -> None:
    """The segmenters learn the focus classes as one class against everything else, and the rows score
    that union by Dice: a 7-class segmenter (lung-ct with vessels and airways) found no nodule at all in
    300 steps on held-out real 64^3 volumes, where the same network trained focus-vs-rest did."""
    ids = focus_ids(run)
    names = "+".join(run.draw.sampler.label_map.classes[i] for i in ids)
    train, held = (np.isin(maps, ids).astype(np.int64) for maps in (run.l_train, run.l_held))
    real = _segmenter(run, run.x_train, train, 2)
    gen, ref = mask_fidelity(real, matched, held, [1]), mask_fidelity(real, run.x_held, held, [1])
    run.rows.append(MetricRow("mask fidelity", f"{names} Dice: a segmenter trained on real finds it where the label "
                              "map says", gen, ref, "higher", "reference: the same segmenter on held-out real images "
                              "and their masks; must reach 0.9 of it", tolerance=0.1))
    tstr = mask_fidelity(_segmenter(run, synthetic, train, 2), run.x_held, held, [1])
    ratio = tstr / ref if ref else float("nan")
    run.rows.append(MetricRow("utility", f"{names} segmentation: train on synthetic, test on real (TSTR / TRTR)", ratio,
                              1.0, "higher", f"TSTR Dice {tstr:.3f}, TRTR Dice {ref:.3f}", tolerance=0.2))
    run.values["mask_fidelity"] = {"classes": names, "generated": gen, "real": ref}
    run.values["segmentation_utility"] = {"tstr": tstr, "trtr": ref, "ratio": ratio}


def class_rows(run: _Run, matched: np.ndarray, synthetic: np.ndarray) -> None:
    """One segmenter learns every class of the label map, as a street-scene segmenter does, and the
    rows score the mean over classes of each class's IoU (mIoU), with the focus classes' own IoU
    beside it: a render can get road, sky and buildings right and still lose the pedestrian."""
    classes = run.draw.sampler.label_map.classes
    real = _segmenter(run, run.x_train, run.l_train, len(classes))
    gen, ref = scene_iou(real, matched, run.l_held), scene_iou(real, run.x_held, run.l_held)
    tstr = scene_iou(_segmenter(run, synthetic, run.l_train, len(classes)), run.x_held, run.l_held)
    gen_mean, ref_mean, tstr_mean = (float(np.nanmean(iou)) for iou in (gen, ref, tstr))
    run.rows.append(MetricRow("mask fidelity", "mIoU: a segmenter trained on real finds every class where the label "
                              "map says", gen_mean, ref_mean, "higher", "reference: the same segmenter on held-out "
                              "real images and their maps; must reach 0.8 of it", tolerance=0.2))
    for i in focus_ids(run):
        run.rows.append(MetricRow("mask fidelity", f"{classes[i]} IoU", gen[i], ref[i], "higher",
                                  "the same segmenter, this class alone", tolerance=0.2))
    ratio = tstr_mean / ref_mean if ref_mean else float("nan")
    run.rows.append(MetricRow("utility", "segmentation: train on synthetic, test on real (TSTR / TRTR mIoU)", ratio,
                              1.0, "higher", f"TSTR mIoU {tstr_mean:.3f}, TRTR mIoU {ref_mean:.3f}", tolerance=0.2))
    per_class = {name: {"generated": gen[i], "real": ref[i], "tstr": tstr[i]} for i, name in enumerate(classes)}
    run.values["mask_fidelity"] = {"score": "miou", "generated": gen_mean, "real": ref_mean, "classes": per_class}
    run.values["segmentation_utility"] = {"tstr": tstr_mean, "trtr": ref_mean, "ratio": ratio}


def same_layout_diversity(run: _Run, common: np.ndarray, real_index: np.ndarray) -> np.ndarray:
    """``per_condition`` renders of one label map per common condition row (the first real item's of
    that row), their within-condition diversity against the real items ``real_index`` of those rows.
    Returns the renders, grouped by row."""
    per, layouts, rows = run.settings.per_condition, [], []
    for row in common:
        item = int(np.flatnonzero((run.conditions == row).all(1))[0])
        layouts += [run.layouts[item]] * per
        rows += [row] * per
    renders, rows = run.draw.like(np.asarray(rows), np.asarray(layouts))
    gen = within_condition_diversity(renders, rows)["diversity"]
    real = within_condition_diversity(run.images[real_index], run.conditions[real_index])["diversity"]
    run.rows.append(MetricRow("diversity", "one label map, many images: diversity of renders of the same label map "
                              "(1 - mean pairwise MS-SSIM)", gen, real, "higher",
                              "reference: real items of the same condition, each its own anatomy; must reach half of it",
                              tolerance=0.5))
    run.values["same_layout_diversity"] = {"generated": gen, "real": real, "ratio": gen / real if real else float("nan")}
    return renders
