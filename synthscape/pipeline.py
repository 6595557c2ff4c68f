"""``synthscape run``: simulate (or real data) -> train -> sample -> evaluate -> export, resumable.

The output folder holds ``data/``, ``run/``, ``samples/``, ``report/``, ``generator.onnx``, the
pipeline as given (``pipeline.json``) and ``stages.json``, which records each finished stage with
its time. A rerun into the same folder skips what is done and resumes what was interrupted
(training continues from its last checkpoint; the other stages write to a temporary name and
rename, so an output that exists is complete and is kept). A different pipeline is refused rather than
mixed into the folder.

The export stage can be gated on the evaluate stage's memorisation check (``export:
max_near_copy_share, min_dcr_ratio``): a generator that fails a threshold is not exported and the
stage stays undone. The thresholds are the one part of a pipeline that a rerun into the same folder
may change, so a rerun with looser ones exports it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import write_text
from synthscape.core.files.lock import writer_lock
from synthscape.domains import Domain, get_domain
from synthscape.pipeline_config import (
    EvaluateStage,
    ExportStage,
    Pipeline,
    SampleStage,
    SimulateStage,
    TrainStage,
    same_outputs,
)
from synthscape.services import GEOMETRY, export_run, sample_order, simulate_data, train_run

log = logging.getLogger("synthscape")
STAGES = ("simulate", "train", "sample", "evaluate", "export")


def default_pipeline() -> Pipeline:
    """The main job: lung-ct on the embedded simulator, sized for minutes on 2 CPU cores
    (``examples/lung_ct.yaml`` spells out the same pipeline, why each number is what it is, and
    how long it took when last measured)."""
    return Pipeline(
        simulate=SimulateStage(count=160, options={"size": 64, "spacing": 1.25}),
        train=TrainStage(steps=250, batch_size=4, layout=True, crop=32, options={"mode_seeking": 0.1, "reconstruction": 100}),
        sample=SampleStage(formats=["nifti", "dicom"], plan=[({"nodule": "absent"}, 6), ({"nodule": "present"}, 6)]),
        evaluate=EvaluateStage(options={"classifier_steps": 600, "pool": 2}),
    )


class StageLog:
    """``stages.json``: which stages finished, in how many seconds."""

    def __init__(self, out: Path, pipeline: Pipeline):
        self.path = out / "stages.json"
        given = out / "pipeline.json"
        if given.is_file() and not same_outputs(given.read_text(), pipeline.to_json()):
            raise SynthscapeError(f"{out} holds a different pipeline's outputs (see {given}); choose another --out")
        if given.is_file() and given.read_text() != pipeline.to_json():  # new export thresholds: record them
            write_text(given, pipeline.to_json())
        if not given.is_file():
            if out.exists() and any(p.name not in ("stages.json",) for p in out.iterdir()):
                raise SynthscapeError(f"{out} already exists and is not a pipeline folder; choose another --out")
            out.mkdir(parents=True, exist_ok=True)
            write_text(given, pipeline.to_json())
        self.done: dict[str, float] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def run(self, name: str, stage: Callable[[], str]) -> None:
        """Run ``stage`` unless it finished before; record its time once it has (one log line either way)."""
        if name in self.done:
            log.info("%s: done before (%.0f s), skipped", name, self.done[name])
            return
        start = time.perf_counter()
        summary = stage()
        self.done[name] = round(time.perf_counter() - start, 1)
        write_text(self.path, json.dumps(self.done, indent=2) + "\n")
        log.info("%s: %s in %.0f s", name, summary, self.done[name])


def run_pipeline(out: Path, pipeline: Pipeline, device: str = "auto") -> dict[str, float]:
    """Run every stage not yet done into ``out``; returns seconds per stage (done ones included)."""
    with writer_lock(out):  # one pipeline per --out: a second 'run' of it stops here instead of racing this one
        return _run_stages(out, pipeline, device)


def _run_stages(out: Path, pipeline: Pipeline, device: str) -> dict[str, float]:
    """``run_pipeline``'s stages, with the folder locked."""
    domain = get_domain(pipeline.domain)
    stages = StageLog(out, pipeline)
    data = pipeline.data or out / "data"
    if pipeline.data is None:
        stages.run("simulate", lambda: simulate_stage(domain, out / "data", pipeline))
    stages.run("train", lambda: train_stage(domain, data, out / "run", pipeline, device))
    stages.run("sample", lambda: sample_stage(domain, out / "run", out / "samples", pipeline))
    if pipeline.evaluate is not None:
        stages.run("evaluate", lambda: evaluate_stage(out / "run", data, out / "report", pipeline))
    if pipeline.export is not None:
        stages.run("export", lambda: export_stage(out / "run", out / "generator.onnx", pipeline,
                                                  out / "report" / "metrics.json"))
    return dict(stages.done)


def simulate_stage(domain: Domain, data: Path, pipeline: Pipeline) -> str:
    """The data set, unless a complete one is there (an interrupted build leaves no folder)."""
    if data.exists():
        return f"kept {data}"
    simulate_data(domain, data, pipeline.simulate.count, pipeline.seed, pipeline.simulate.options)
    return f"simulated {pipeline.simulate.count} {domain.name} samples -> {data}"


def train_stage(domain: Domain, data: Path, run: Path, pipeline: Pipeline, device: str) -> str:
    """Train, or resume a run folder that exists (one killed before its first checkpoint starts over)."""
    from synthscape.core.schema.config import TrainConfig

    stage = pipeline.train
    if pipeline.data is None:  # simulated data trains at the geometry it was simulated at
        geometry = {k: v for k, v in pipeline.simulate.options.items() if k in GEOMETRY}
    else:
        geometry = dict(stage.geometry)
    every = max(1, stage.steps // 4)
    config = TrainConfig(**{"eval_every": every, "checkpoint_every": every, **stage.options},
                         steps=stage.steps, batch_size=stage.batch_size, seed=pipeline.seed)
    resume = run.exists()
    train_run(domain, data, run, model=stage.model, config=config, geometry=geometry, resume=resume, device=device,
              allow_outside_paths=pipeline.allow_outside_paths, layout=stage.layout, crop=stage.crop)
    return f"{'resumed and ' if resume else ''}trained a {stage.model} for {stage.steps} steps -> {run}"


def sample_stage(domain: Domain, run: Path, out: Path, pipeline: Pipeline) -> str:
    """The plan's samples, unless a complete folder of them is there."""
    from synthscape import load
    from synthscape.layouts import simulated_layouts

    if out.exists():
        return f"kept {out}"
    generator = load(run)
    plan = [(generator.schema.validate(c), n) for c, n in pipeline.sample.plan] or [({}, 16)]
    layouts = simulated_layouts(generator, domain, pipeline.sample.size) if generator.label_map is not None else None
    written = sample_order(generator, domain, plan, out, seed=pipeline.seed, formats=pipeline.sample.formats,
                           layouts=layouts)
    return f"sampled {written.samples} ({written.files} files) -> {out}"


def evaluate_stage(run: Path, data: Path, out: Path, pipeline: Pipeline) -> str:
    """metrics.json and report.html, unless a complete report is there."""
    from synthscape.evaluate import evaluate_model

    if (out / "report.html").is_file():
        return f"kept {out}"
    metrics = evaluate_model(run, data, out, seed=pipeline.seed, holdout=pipeline.evaluate.holdout,
                             allow_outside_paths=pipeline.allow_outside_paths,
                             **pipeline.evaluate.options)
    return f"report -> {out / 'report.html'} ({metrics['headline']})"


def export_stage(run: Path, out: Path, pipeline: Pipeline, metrics: Path) -> str:
    """The ONNX generator, if the memorisation gate lets it through and it is not there yet."""
    check_memorisation(metrics, pipeline.export)
    if out.is_file():
        return f"kept {out}"
    report = export_run(run, out, precision=pipeline.export.precision)
    return f"exported {pipeline.export.precision} -> {out} (max |onnx - torch| {max(report['parity'].values()):.1e})"


def check_memorisation(metrics: Path, export: ExportStage) -> None:
    """Refuse the export when the evaluate stage's memorisation values fail the user's thresholds."""
    if export.max_near_copy_share is None and export.min_dcr_ratio is None:
        return
    try:
        values = json.loads(metrics.read_text())["memorisation"]
        share, ratio = float(values["near_copy_share"]), float(values["ratio"])
    except (OSError, ValueError, KeyError, TypeError):
        raise SynthscapeError(f"{metrics} holds no memorisation check (near_copy_share, ratio), which the export "
                              "thresholds need; rerun the evaluate stage") from None
    failed = []
    if export.max_near_copy_share is not None and share > export.max_near_copy_share:
        failed.append(f"near-copy share {share:.4g} is above max_near_copy_share {export.max_near_copy_share:g}")
    if export.min_dcr_ratio is not None and ratio < export.min_dcr_ratio:
        failed.append(f"DCR ratio {ratio:.4g} is below min_dcr_ratio {export.min_dcr_ratio:g}")
    if failed:
        raise SynthscapeError(f"export refused, the generator may copy its training data: {'; '.join(failed)} "
                              f"(see {metrics}); no ONNX written")
