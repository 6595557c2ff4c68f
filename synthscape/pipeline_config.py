"""The pipeline file of ``synthscape run``: YAML read into checked dataclasses.

    domain: lung-ct
    seed: 0
    simulate: {count: 64, size: 32}          # or  data: path/to/real/data  (a dataset folder)
    # with data: allow_outside_paths: true   lets its labels.csv name files outside it (off by default)
    train: {model: gan, steps: 300, batch_size: 8}
    # with data: train: {size: 256, spacing: 1.25} reads it at that geometry (train --size/--spacing)
    sample:
      formats: [nifti, dicom]
      plan:
        - {condition: {nodule: absent}, count: 4}
        - {condition: {nodule: present, size: large}, count: 4}
    evaluate: {holdout: 0.25}                # or  evaluate: false
    export: {precision: fp32}                # or  export: false
    # export may also refuse a generator that copies its training data (needs evaluate):
    #   export: {precision: fp32, max_near_copy_share: 0.1, min_dcr_ratio: 0.8}

Every key is checked: an unknown one is refused with the valid ones listed, so a typo never
silently falls back to a default. Paths in the file are relative to the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from synthscape.core.errors import SynthscapeError
from synthscape.services import GEOMETRY


@dataclass
class SimulateStage:
    """``simulate:``: how many items the domain simulator makes; other keys (size, spacing, view,
    ...) go to the simulator through ``options``."""

    count: int = 64
    options: dict[str, Any] = field(default_factory=dict)  # domain options: size, spacing, view, ...


@dataclass
class TrainStage:
    """``train:``: model kind (gan or vae), steps and batch size; any other ``TrainConfig``
    field (lr_generator, mode_seeking, ...) goes through ``options``."""

    model: str = "gan"
    steps: int = 300
    batch_size: int = 8
    layout: bool = False  # a layout model: renders the data's label maps (train --layout)
    crop: int | None = None  # layout models: training crop side (train --crop)
    options: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields: lr_generator, ...
    # real data (data:) read at this geometry (train --size, --spacing); simulated data trains at simulate's.
    # Not a key of its own in the file (init=False): the file's train.size and train.spacing fill it
    geometry: dict[str, Any] = field(default_factory=dict, init=False)


@dataclass
class SampleStage:
    """``sample:``: the order as (condition, count) rows, an attribute left out drawn as the
    training data has it (no rows: 16 samples, every attribute drawn), and the file formats."""

    plan: list[tuple[dict[str, str], int]] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)  # empty: the domain's default formats
    size: int | None = None  # layout models: label-map side the simulator draws (sample --size); None: the data's


@dataclass
class EvaluateStage:
    """``evaluate:``: the share of the real data the evaluation sets aside as its held-out set
    (split stratified by condition); other keys are ``EvaluationSettings`` fields, via ``options``."""

    holdout: float = 0.25
    options: dict[str, Any] = field(default_factory=dict)  # EvaluationSettings fields


@dataclass
class ExportStage:
    """``export:``: the ONNX precision (fp32, fp16 or int8) and the memorisation gate's thresholds."""

    precision: str = "fp32"
    # The memorisation gate: the export refuses when the evaluate stage's metrics.json fails either
    # (None: not checked). They decide whether the export runs, not what any output holds, so a
    # rerun may loosen them after a refusal (``same_outputs``).
    max_near_copy_share: float | None = None  # share of generated samples nearer a training item than 95 % of real held-out ones
    min_dcr_ratio: float | None = None  # median distance to the closest training record, generated / held-out real


GATE = {"max_near_copy_share": (0.0, 1.0), "min_dcr_ratio": (0.0, math.inf)}  # name: allowed range


@dataclass
class Pipeline:
    """One run of simulate (or real data) -> train -> sample -> evaluate -> export."""

    domain: str = "lung-ct"
    seed: int = 0
    data: Path | None = None  # real data instead of simulating
    allow_outside_paths: bool = False  # data's labels.csv may name files outside it (--allow-outside-paths)
    simulate: SimulateStage = field(default_factory=SimulateStage)
    train: TrainStage = field(default_factory=TrainStage)
    sample: SampleStage = field(default_factory=SampleStage)
    evaluate: EvaluateStage | None = field(default_factory=EvaluateStage)
    export: ExportStage | None = field(default_factory=ExportStage)

    def to_json(self) -> str:
        """Canonical text, stored in the output folder so a rerun can tell it is the same pipeline."""
        return json.dumps(asdict(self), sort_keys=True, default=str)


def same_outputs(stored: str, current: str) -> bool:
    """Whether two ``to_json`` texts make the same outputs: equal but for the export gate's thresholds
    and ``allow_outside_paths`` (which admits data, it changes nothing made from it)."""
    def outputs(text: str) -> dict:
        data = json.loads(text)
        data.pop("allow_outside_paths", None)
        if isinstance(data.get("train"), dict):  # a pipeline.json written before train.geometry existed had none
            data["train"].setdefault("geometry", {})
        if isinstance(data.get("export"), dict):
            data["export"] = {k: v for k, v in data["export"].items() if k not in GATE}
        return data
    return outputs(stored) == outputs(current)


def _check_keys(where: str, given: dict, allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise SynthscapeError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")


def _mapping(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise SynthscapeError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _stage(where: str, value: Any, cls: type, option_keys: set[str] = frozenset()):
    """A stage from its mapping: its own fields by name, any ``option_keys`` into ``options``."""
    if value is False or value is None:
        return None
    value = dict(_mapping(where, value))
    own = {f.name for f in fields(cls) if f.init} - {"options"}
    _check_keys(where, value, own | set(option_keys))
    kwargs = {k: value.pop(k) for k in list(value) if k in own}
    if value:
        kwargs["options"] = value
    return cls(**kwargs)


def parse_plan(where: str, rows: Any) -> list[tuple[dict[str, str], int]]:
    """``sample.plan`` rows ``{condition: {...}, count: N}`` -> (condition, count) pairs. Values
    become text here; whether they are the domain's is checked when the stage samples."""
    if not isinstance(rows, list):
        raise SynthscapeError(f"{where} must be a list of {{condition: {{...}}, count: N}}")
    plan = []
    for i, row in enumerate(rows):
        row = _mapping(f"{where}[{i}]", row)
        _check_keys(f"{where}[{i}]", row, {"condition", "count"})
        count = row.get("count")
        if not isinstance(count, int) or count < 0:
            raise SynthscapeError(f"{where}[{i}].count must be a non-negative integer, got {count!r}")
        condition = {str(k): str(v) for k, v in _mapping(f"{where}[{i}].condition", row.get("condition") or {}).items()}
        plan.append((condition, count))
    return plan


def pipeline_from_dict(raw: dict, source: str, base: Path) -> Pipeline:
    """Check ``raw`` (from YAML) key by key; ``base`` resolves relative paths."""
    from synthscape.core.evaluation.suite import EvaluationSettings
    from synthscape.core.schema.config import TrainConfig

    raw = dict(_mapping(source, raw))
    _check_keys(source, raw, {f.name for f in fields(Pipeline)})
    if "data" in raw and "simulate" in raw:
        raise SynthscapeError(f"{source}: give either data (real data) or simulate, not both")
    if not isinstance(raw.get("allow_outside_paths", False), bool):
        raise SynthscapeError(f"{source}: allow_outside_paths must be true or false, got {raw['allow_outside_paths']!r}")
    if raw.get("allow_outside_paths") and not raw.get("data"):
        raise SynthscapeError(f"{source}: allow_outside_paths is for data (real data whose labels.csv names files "
                              "outside its folder); a simulated data set has none")
    train_options = {f.name for f in fields(TrainConfig)} - {"steps", "batch_size", "seed"}
    train = raw.get("train", {})
    geometry = {k: v for k, v in train.items() if k in GEOMETRY} if isinstance(train, dict) else {}
    train = {k: v for k, v in train.items() if k not in GEOMETRY} if isinstance(train, dict) else train
    if geometry and not raw.get("data"):
        raise SynthscapeError(f"{source}: train.{next(iter(geometry))} sets the geometry of real data (data:); "
                              f"simulated data trains at the simulator's, set simulate.{next(iter(geometry))}")
    sample = _mapping(f"{source}: sample", raw.get("sample", {}))
    _check_keys(f"{source}: sample", sample, {"plan", "formats", "size"})
    formats = sample.get("formats", [])
    pipeline = Pipeline(
        domain=str(raw.get("domain", "lung-ct")),
        seed=int(raw.get("seed", 0)),
        data=(base / raw["data"]) if raw.get("data") else None,
        allow_outside_paths=bool(raw.get("allow_outside_paths", False)),
        simulate=_stage(f"{source}: simulate", raw.get("simulate", {}), SimulateStage,
                        {"size", "spacing", "view", "workers", "nodule_sizes", "nodule_kinds"}) or SimulateStage(),
        train=_stage(f"{source}: train", train, TrainStage, train_options) or TrainStage(),
        sample=SampleStage(plan=parse_plan(f"{source}: sample.plan", sample.get("plan", [])),
                           formats=[formats] if isinstance(formats, str) else list(formats), size=sample.get("size")),
        evaluate=_stage(f"{source}: evaluate", raw.get("evaluate", {}), EvaluateStage,
                        {f.name for f in fields(EvaluationSettings)}),
        export=_stage(f"{source}: export", raw.get("export", {}), ExportStage),
    )
    pipeline.train.geometry = geometry
    if pipeline.train.model not in ("gan", "vae"):
        raise SynthscapeError(f"{source}: train.model must be gan or vae, got {pipeline.train.model!r}")
    if not isinstance(pipeline.train.layout, bool):
        raise SynthscapeError(f"{source}: train.layout must be true or false, got {pipeline.train.layout!r}")
    check_geometry(f"{source}: simulate", pipeline.simulate.options)
    check_geometry(f"{source}: train", pipeline.train.geometry)
    for where, value in (("train.crop", pipeline.train.crop), ("sample.size", pipeline.sample.size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SynthscapeError(f"{source}: {where} must be a positive whole number, got {value!r}")
    if pipeline.evaluate is not None:  # checked now, not after the training it would follow
        try:
            EvaluationSettings(**pipeline.evaluate.options)
        except SynthscapeError as exc:
            raise SynthscapeError(f"{source}: evaluate.{exc}") from None
    check_gate(source, pipeline)
    return pipeline


def check_geometry(where: str, options: dict[str, Any]) -> None:
    """``size`` (whole numbers from 1) and ``spacing`` (positive numbers), each one value or one per
    axis, as ``--size`` and ``--spacing`` take them: refused when the file is read, not as a
    traceback when the stage that reads the data starts."""
    for name, whole_only in (("size", True), ("spacing", False)):
        value = options.get(name)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        if not items or any(isinstance(v, bool) or not isinstance(v, int if whole_only else (int, float))
                            or not 0 < v < math.inf or (whole_only and v < 1) for v in items):
            kind = "a whole number from 1" if whole_only else "a positive number"
            raise SynthscapeError(f"{where}.{name} must be {kind} or a list of them (one per axis), got {value!r}")


def check_gate(source: str, pipeline: Pipeline) -> None:
    """The export gate's thresholds: numbers in range, and only with the evaluate stage that measures them."""
    for name, (low, high) in GATE.items():
        value = getattr(pipeline.export, name, None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            allowed = f"from {low:g} to {high:g}" if high < math.inf else f"of {low:g} or more"
            raise SynthscapeError(f"{source}: export.{name} must be a number {allowed}, got {value!r}")
        if pipeline.evaluate is None:
            raise SynthscapeError(f"{source}: export.{name} needs the evaluate stage, whose memorisation check it reads; "
                                  "drop the threshold or turn evaluate on")
        setattr(pipeline.export, name, float(value))


def read_pipeline(path: Path) -> Pipeline:
    """Read and check the pipeline YAML file at ``path``; relative paths in it resolve against the
    file's folder, and an empty file is the default pipeline."""
    import yaml

    if not path.is_file():
        raise SynthscapeError(f"pipeline file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SynthscapeError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return pipeline_from_dict(raw or {}, str(path), path.parent)
