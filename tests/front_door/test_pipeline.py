"""``synthscape run PIPELINE.yaml``: checked YAML, stages recorded, reruns skip or resume."""

import contextlib
import io
import json

import pytest
from conftest import REPO

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.pipeline import default_pipeline
from synthscape.pipeline_config import read_pipeline

EXAMPLES = REPO / "examples"
TINY = """
domain: lung-ct
simulate: {count: 24, size: 16}
train: {model: gan, steps: 2, batch_size: 4}
sample:
  formats: [nifti]
  plan:
    - {condition: {nodule: present}, count: 2}
evaluate: {holdout: 0.25, classifier_steps: 5, utility_steps: 2, per_condition: 3}
export: {precision: fp32}
"""


def test_the_default_pipeline_is_examples_lung_ct_yaml():
    assert read_pipeline(EXAMPLES / "lung_ct.yaml").to_json() == default_pipeline().to_json()
    for name in ("driving.yaml", "driving_class_only.yaml", "aerial.yaml", "aerial_class_only.yaml"):
        pipeline = read_pipeline(EXAMPLES / name)
        assert pipeline.domain == "driving" and pipeline.sample.plan and pipeline.export is not None
    for name, view in (("driving.yaml", "dashcam"), ("aerial.yaml", "aerial")):  # layout models at 256x256 (issue 19)
        layout = read_pipeline(EXAMPLES / name)
        assert layout.train.layout and layout.simulate.options["size"] == 256 and layout.export.precision == "fp32"
        assert layout.simulate.options["view"] == view


@pytest.mark.parametrize("text, message", [
    ("trian: {steps: 3}", "unknown key(s) trian; valid: allow_outside_paths, data, domain, evaluate"),
    ("simulate: {cuont: 3}", "simulate: unknown key(s) cuont"),
    ("train: {model: diffusion}", "train.model must be gan or vae"),
    ("data: real/\nsimulate: {count: 3}", "either data (real data) or simulate"),
    ("simulate: {count: 3}\ntrain: {size: 32}", "train.size sets the geometry of real data (data:)"),
    ("data: real/\ntrain: {geometry: {size: 32}}", "train: unknown key(s) geometry"),
    ("data: real/\ntrain: {size: big}", "train.size must be a whole number from 1 or a list of them"),
    ("data: real/\ntrain: {spacing: [1.25, 0]}", "train.spacing must be a positive number or a list of them"),
    ("simulate: {count: 2, size: 2.5}", "simulate.size must be a whole number from 1 or a list of them"),
    ("simulate: {count: 2, spacing: wide}", "simulate.spacing must be a positive number or a list of them"),
    ("sample: {plan: [{condition: {nodule: present}, count: -1}]}", "count must be a non-negative integer"),
    ("evaluate: {holdout: 0.2, clasifier_steps: 3}", "evaluate: unknown key(s) clasifier_steps"),
    ("evaluate: {pool: 0}", "evaluate.pool must be a whole number from 1"),
    ("evaluate: {classifier_steps: many}", "evaluate.classifier_steps must be a whole number from 1"),
    ("train: [1, 2]", "train must be a mapping"),
    ("simulate: {count: 3\n", "is not valid YAML"),
])
def test_bad_pipeline_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(SynthscapeError, match=None) as error:
        read_pipeline(path)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``synthscape run`` of TINY, once for the module: (pipeline file, out folder, what it printed).
    A test that changes the folder leaves it whole again: all five stages done."""
    root = tmp_path_factory.mktemp("pipeline")
    pipeline, out = root / "tiny.yaml", root / "out"
    pipeline.write_text(TINY)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["-q", "run", str(pipeline), "--out", str(out)]) == 0
    return pipeline, out, stdout.getvalue()


def test_real_data_trains_at_the_pipeline_train_geometry(tmp_path):
    """``data:`` with ``train: {size: 32}`` reads 48x48 scenes at 32 (without it, driving's default 64);
    a pipeline.json stored before ``train.geometry`` existed is still the same pipeline."""
    import cv2

    from synthscape.pipeline_config import same_outputs

    assert main(["-q", "simulate", "driving", "--out", str(tmp_path / "real"), "--count", "6", "--size", "48"]) == 0
    path = tmp_path / "p.yaml"
    path.write_text("domain: driving\ndata: real\ntrain: {steps: 1, batch_size: 2, size: 32}\n"
                    "sample: {plan: [{condition: {weather: fog}, count: 1}]}\nevaluate: false\nexport: false\n")
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "out")]) == 0
    meta = json.loads((tmp_path / "out" / "run" / "config.json").read_text())["domain_meta"]
    assert meta["size"] == 32 and meta["source_size"] == [48, 48]
    assert cv2.imread(str(next((tmp_path / "out" / "samples" / "images").glob("*.png")))).shape == (32, 32, 3)
    pipeline = read_pipeline(path)
    assert pipeline.train.geometry == {"size": 32} and "size" not in pipeline.train.options
    current = read_pipeline(EXAMPLES / "driving.yaml").to_json()
    older = json.loads(current)
    older["train"].pop("geometry")  # as written before the field existed: no geometry, the same pipeline
    assert same_outputs(json.dumps(older), current)
    assert not same_outputs(pipeline.to_json().replace('"size": 32', '"size": 48'), pipeline.to_json())


def test_run_records_stages_and_a_rerun_skips_or_resumes(tiny_run, capsys):
    pipeline, out, printed = tiny_run
    assert f"report: {out / 'report' / 'report.html'}" in printed and str(out / "generator.onnx") in printed
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == ["simulate", "train", "sample", "evaluate", "export"]
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert {row["group"] for row in metrics["rows"]} == {"label fidelity", "fidelity", "diversity", "utility", "memorisation"}
    assert all(row["reference"] is not None for row in metrics["rows"])
    onnx_time = (out / "generator.onnx").stat().st_mtime_ns

    assert main(["-q", "run", str(pipeline), "--out", str(out)]) == 0  # all done: nothing redone
    assert json.loads((out / "stages.json").read_text()) == stages
    assert (out / "generator.onnx").stat().st_mtime_ns == onnx_time

    # interrupted after training: the later stages' records and outputs are gone
    (out / "stages.json").write_text(json.dumps({k: stages[k] for k in ("simulate", "train")}))
    (out / "generator.onnx").unlink()
    assert main(["-q", "run", str(pipeline), "--out", str(out)]) == 0
    assert list(json.loads((out / "stages.json").read_text())) == list(stages) and (out / "generator.onnx").is_file()

    changed = pipeline.with_name("changed.yaml")
    changed.write_text(TINY.replace("steps: 2", "steps: 3"))  # another pipeline: refused, not mixed in
    assert main(["run", str(changed), "--out", str(out)]) == 2
    assert "holds a different pipeline's outputs" in capsys.readouterr().err


def test_evaluate_command_writes_a_report_and_refuses_bad_input(tiny_run, tmp_path, capsys):
    out = tiny_run[1]  # only read: the pipeline's data (24 items) and run
    run, data, report = str(out / "run"), str(out / "data"), tmp_path / "report"
    fast = ["--classifier-steps", "5", "--utility-steps", "2"]
    assert main(["-q", "evaluate", run, "--data", data, "--out", str(report), *fast]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["domain"] == "lung-ct" and metrics["real_train"] + metrics["real_held_out"] == 24
    assert (report / "report.html").is_file()

    missing = tmp_path / "missing"
    assert main(["evaluate", run, "--data", str(missing), "--out", str(tmp_path / "r2"), *fast]) == 2
    assert f"--data {missing} is not a data set folder" in capsys.readouterr().err
    assert main(["evaluate", run, "--data", data, "--out", str(report), *fast]) == 2  # never over a report
    assert "already exists and is not empty" in capsys.readouterr().err
    assert main(["evaluate", run, "--data", data, "--out", str(tmp_path / "r3"), "--holdout", "0.05", *fast]) == 2
    assert "evaluation needs at least 4 held-out real items" in capsys.readouterr().err
    assert main(["evaluate", run, "--data", data, "--out", str(tmp_path / "r4"), "--pool", "3", *fast]) == 2
    err = capsys.readouterr().err
    assert "evaluation pool 3 must divide every image side, got sides [16, 16, 16]" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exited:  # argparse refuses it before anything runs
        main(["evaluate", run, "--data", data, "--out", str(tmp_path / "r4"), "--pool", "0", *fast])
    assert exited.value.code == 2 and "argument --pool: must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["evaluate", run, "--data", data, "--out", str(tmp_path / "r4"), "--segmenter-steps", "0", *fast])
    assert exited.value.code == 2 and "argument --segmenter-steps: must be a positive integer, got 0" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in ("r2", "r3", "r4"))
    assert not list(tmp_path.glob(".r*.partial"))  # nothing half-written
