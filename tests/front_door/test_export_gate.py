"""``export: {max_near_copy_share, min_dcr_ratio}``: the pipeline refuses to export a generator whose
memorisation check fails the user's thresholds, and exports it on a rerun with looser ones."""

import json
from pathlib import Path

import pytest

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.pipeline import check_memorisation
from synthscape.pipeline_config import ExportStage, read_pipeline

TINY = """
domain: lung-ct
simulate: {{count: 24, size: 16}}
train: {{model: gan, steps: 2, batch_size: 4}}
sample:
  formats: [nifti]
  plan:
    - {{condition: {{nodule: present}}, count: 2}}
evaluate: {{holdout: 0.25, classifier_steps: 5, utility_steps: 2, per_condition: 3}}
export: {{precision: fp32, {gate}}}
"""


@pytest.mark.parametrize("gate, evaluate, message", [
    ("min_dcr_ratio: 0.8", "false", "export.min_dcr_ratio needs the evaluate stage"),
    ("max_near_copy_share: 0.1", "false", "export.max_near_copy_share needs the evaluate stage"),
    ("max_near_copy_share: 1.5", None, "export.max_near_copy_share must be a number from 0 to 1, got 1.5"),
    ("min_dcr_ratio: -1", None, "export.min_dcr_ratio must be a number of 0 or more, got -1"),
    ("min_dcr_ratio: high", None, "export.min_dcr_ratio must be a number of 0 or more, got 'high'"),
    ("max_near_copy_share: true", None, "must be a number from 0 to 1, got True"),
    ("min_dcr_ratio: .nan", None, "must be a number of 0 or more, got nan"),
    ("max_dcr_ratio: 1", None, "export: unknown key(s) max_dcr_ratio"),
])
def test_bad_thresholds_are_one_line_configuration_errors(tmp_path, capsys, gate, evaluate, message):
    text = TINY.format(gate=gate)
    if evaluate is not None:
        text = text.replace(text[text.index("evaluate:"):text.index("\nexport")], f"evaluate: {evaluate}")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(SynthscapeError) as error:
        read_pipeline(path)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_refused_export_writes_nothing_and_a_looser_rerun_exports(tmp_path, capsys):
    path, out = tmp_path / "p.yaml", tmp_path / "out"

    def run(gate: str) -> int:
        path.write_text(TINY.format(gate=gate))
        return main(["-q", "run", str(path), "--out", str(out)])

    assert run("min_dcr_ratio: 1000") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bars
    assert err.startswith("synthscape: error: export refused, the generator may copy its training data: ")
    assert "below min_dcr_ratio 1000" in err and str(out / "report" / "metrics.json") in err
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == ["simulate", "train", "sample", "evaluate"]
    assert not (out / "generator.onnx").exists() and not list(out.glob(".generator.onnx*"))

    memorisation = json.loads((out / "report" / "metrics.json").read_text())["memorisation"]
    ratio, share = memorisation["ratio"], memorisation["near_copy_share"]
    assert 0 < ratio < 1000 and 0 <= share <= 1
    assert run(f"min_dcr_ratio: {ratio * 1.01}, max_near_copy_share: {share}") == 2  # just above the measure
    err = capsys.readouterr().err
    assert f"DCR ratio {ratio:.4g} is below min_dcr_ratio {ratio * 1.01:g}" in err and "near-copy" not in err
    assert not (out / "generator.onnx").exists() and "export" not in json.loads((out / "stages.json").read_text())

    assert run(f"min_dcr_ratio: {ratio * 0.99}, max_near_copy_share: {share}") == 0  # just below: exported
    done = json.loads((out / "stages.json").read_text())
    assert list(done) == [*stages, "export"] and {k: done[k] for k in stages} == stages  # nothing redone
    assert (out / "generator.onnx").is_file()
    assert json.loads((out / "pipeline.json").read_text())["export"]["min_dcr_ratio"] == pytest.approx(ratio * 0.99)

    path.write_text(TINY.format(gate="min_dcr_ratio: 0").replace("steps: 2", "steps: 3"))
    assert main(["run", str(path), "--out", str(out)]) == 2  # anything but the thresholds: another pipeline
    assert "holds a different pipeline's outputs" in capsys.readouterr().err


def write_metrics(path: Path, share: float, ratio: float) -> Path:
    path.write_text(json.dumps({"memorisation": {"near_copy_share": share, "ratio": ratio}}))
    return path


def test_the_gate_reads_both_memorisation_values(tmp_path):
    metrics = write_metrics(tmp_path / "metrics.json", share=0.5, ratio=0.4)
    check_memorisation(metrics, ExportStage())  # no thresholds: no check
    check_memorisation(metrics, ExportStage(max_near_copy_share=0.5, min_dcr_ratio=0.4))  # at the threshold: passes
    with pytest.raises(SynthscapeError, match=r"near-copy share 0\.5 is above max_near_copy_share 0\.1 \(see "):
        check_memorisation(metrics, ExportStage(max_near_copy_share=0.1))
    with pytest.raises(SynthscapeError, match=r"share 0\.5 is above max_near_copy_share 0\.2; DCR ratio 0\.4 is below "
                                              r"min_dcr_ratio 0\.9"):
        check_memorisation(metrics, ExportStage(max_near_copy_share=0.2, min_dcr_ratio=0.9))
    (tmp_path / "old.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(SynthscapeError, match="holds no memorisation check"):
        check_memorisation(tmp_path / "old.json", ExportStage(min_dcr_ratio=0.5))
    with pytest.raises(SynthscapeError, match="holds no memorisation check"):
        check_memorisation(tmp_path / "missing.json", ExportStage(min_dcr_ratio=0.5))
