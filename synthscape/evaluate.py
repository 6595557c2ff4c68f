"""``synthscape evaluate RUN|MODEL.onnx --data DIR --out REPORT_DIR``: metrics.json + report.html.

Loads the generator and the real data set through its domain (at the generator's own geometry),
scores it with ``core.evaluation.suite`` and pictures it with ``core.evaluation.report``: the metrics table first,
then per-condition grids of generated beside real, CT slice montages, intensity histograms, the
closest generated/training pairs and the training curves.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import new_folder, write_text
from synthscape.domains import get_domain
from synthscape.domains.base import read_meta
from synthscape.services import GEOMETRY

log = logging.getLogger("synthscape")


def real_arrays(domain, data: Path, meta: dict, allow_outside_paths: bool = False,
                layout: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The whole real data set as arrays, read at the generator's size (and spacing, for CT), with
    each item's label map for a layout model (else None); ``allow_outside_paths``: labels.csv may
    name files outside ``data`` (see ``train_run``)."""
    from synthscape.core.training.data import dataset_conditions

    geometry = {k: meta[k] for k in GEOMETRY if k in meta}
    options = {**({"allow_outside_paths": True} if allow_outside_paths else {}), **({"layout": True} if layout else {})}
    dataset = domain.dataset(data, **geometry, **options)
    items = [dataset[i] for i in range(len(dataset))]
    images = np.stack([np.asarray(item[0], dtype=np.float32) for item in items])
    layouts = np.stack([np.asarray(item[2]).astype(np.uint8) for item in items]) if layout else None
    return images, dataset_conditions(dataset, domain.schema), layouts


def evaluate_model(model: str | Path, data: str | Path, out: str | Path, seed: int = 0, holdout: float = 0.25,
                   overwrite: bool = False, allow_outside_paths: bool = False, **settings) -> dict:
    """Evaluate ``model`` (run folder or .onnx) on the real data folder ``data``; write ``out``
    (replacing an existing one, once the new one is complete, if ``overwrite``). Files named
    outside ``data`` are refused unless ``allow_outside_paths``: report.html shows real images."""
    import synthscape
    from synthscape.core.evaluation.suite import EvaluationSettings, evaluate

    model, data, out = Path(model), Path(data), Path(out)
    with new_folder(out, overwrite=overwrite, inputs=(model, data)) as tmp:
        if not data.is_dir():
            raise SynthscapeError(f"--data {data} is not a data set folder (files + labels.csv)")
        start = time.perf_counter()
        sampler = synthscape.load(model)
        domain = get_domain(sampler.domain)
        read_meta(domain.meta_type, sampler.domain_meta, domain.name)  # checked before its size and spacing are used
        layout = sampler.label_map is not None
        images, conditions, layouts = real_arrays(domain, data, sampler.domain_meta, allow_outside_paths, layout)
        if layout:  # what the domain says its mask rows score, unless the caller said; else EvaluationSettings'
            said = {k: getattr(domain, k) for k in ("mask_focus", "mask_score") if hasattr(domain, k)}
            settings = {**said, **settings}
        result = evaluate(sampler, images, conditions, domain.spatial_dims, holdout=holdout, seed=seed,
                          settings=EvaluationSettings(**settings), layouts=layouts)
        metrics = {"model": str(model), "data": str(data), "domain": domain.name, "seed": seed, "holdout": holdout,
                   "seconds": round(time.perf_counter() - start, 1), "headline": headline(result.values, domain),
                   "rows": [asdict(row) for row in result.rows], **result.values}
        write_text(tmp / "metrics.json", json.dumps(metrics, indent=2, default=float) + "\n")
        write_html(tmp, result, metrics, model, domain)
    log.info("evaluated %s in %.0f s: %s -> %s", model, metrics["seconds"], metrics["headline"], out / "report.html")
    return metrics


def headline(values: dict, domain) -> str:
    """The one line a person reads first: label fidelity of the first attribute and diversity."""
    fidelity = values["label_fidelity"][domain.schema.names[0]]
    return f"{domain.schema.names[0]} label fidelity {fidelity:.2f}, diversity {values['diversity']['ratio']:.2f} of real"


def write_html(out: Path, result, metrics: dict, model: Path, domain) -> Path:
    """report.html in ``out``: the metrics table, then the pictures a person checks it against."""
    from synthscape.core.evaluation.distances import histograms
    from synthscape.core.evaluation.report import (
        Figure,
        Histogram,
        Report,
        condition_grid,
        curves_from_metrics_csv,
        slice_montage,
        write_report,
    )
    from synthscape.core.files.grids import grid

    sections = []
    if result.layouts is not None:
        sections.append(outlined_section(result, domain))
    generated = condition_grid(result.generated, result.generated_conditions)
    real = condition_grid(result.real, result.real_conditions)
    sections.append(("Generated (left) and real (right), per condition",
                     [f for pair in zip(generated, real) for f in (_retitle(pair[0], "generated"), _retitle(pair[1], "real"))]))
    if domain.spatial_dims == 3:
        sections.append(("Slice montages (axial, coronal, sagittal rows)",
                         [Figure(f"generated: {', '.join(f'{k}={v}' for k, v in c.items())}", slice_montage(v))
                          for v, c in list(zip(result.generated, result.generated_conditions))[:: max(1, len(result.generated) // 4)][:4]]))
    edges, real_counts = histograms(result.held_out)
    _, generated_counts = histograms(result.matched)
    sections.append(("Intensity", [Histogram(f"channel {c}" if len(real_counts) > 1 else "intensity", edges,
                                             {"real held-out": real_counts[c], "generated": generated_counts[c]},
                                             "value on the [-1, 1] scale (CT: the HU window)")
                                   for c in range(len(real_counts))]))
    if result.closest_pairs:
        sections.append(("Closest generated / training pairs (memorisation check)",
                         [Figure(f"distance {d:.3f}", grid(np.stack([g, t]), columns=2), "generated, nearest training item")
                          for g, t, d in result.closest_pairs]))
    if (model / "metrics.csv").is_file():
        sections.append(("Training", curves_from_metrics_csv(model / "metrics.csv")))
    summary = {"domain": domain.name, "model": str(model), "real data": metrics["data"],
               "real items": f"{metrics['real_train']} train, {metrics['real_held_out']} held out",
               "headline": metrics["headline"], "time": f"{metrics['seconds']:.0f} s"}
    return write_report(out, Report(f"synthscape evaluation: {domain.name}", summary, result.rows, sections))


def outlined_section(result, domain) -> tuple[str, list]:
    """Generated and real side by side, each with the outline of the label map the generated one
    rendered (the real item's own), so a reader sees the nodule sit where the mask says."""
    from synthscape.core.evaluation.overlay import outlined, outlined_planes
    from synthscape.core.evaluation.report import Figure

    figures = []
    for g, r, labels, c in list(zip(result.generated, result.real, result.layouts, result.real_conditions))[:8]:
        text = ", ".join(f"{k}={v}" for k, v in c.items())
        draw = outlined_planes if domain.spatial_dims == 3 else outlined
        for side, image in (("generated", g), ("real", r)):
            figures.append(Figure(f"{side}: {text}", draw(image[0], labels)))
    return "Generated (left) and real (right) with the label map's outline", figures


def _retitle(figure, side: str):
    """``figure`` with its title prefixed by the side it shows (generated or real)."""
    figure.title = f"{side}: {figure.title}"
    return figure
