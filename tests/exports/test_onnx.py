"""ONNX export and the torch-free runtime: parity with torch, metadata, sampling without torch."""

import csv
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import onnx
import pytest

import synthscape
from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.artifacts import load_run
from synthscape.exports.onnx_export import export_onnx
from synthscape.exports.precision import BOUNDS
from synthscape.exports.runtime import execution_providers


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """2D (driving) and 3D (lung-ct) GANs and VAEs, trained for a few steps on simulated data;
    keyed "driving" (GAN), "lung-ct" (VAE), "driving-vae" and "lung-ct-gan"."""
    root = tmp_path_factory.mktemp("onnx")
    made = {}
    for key, domain, model in (("driving", "driving", "gan"), ("lung-ct", "lung-ct", "vae"),
                               ("driving-vae", "driving", "vae"), ("lung-ct-gan", "lung-ct", "gan")):
        data, run = root / f"{domain}-data", root / f"{key}-run"
        if not data.exists():
            assert main(["-q", "simulate", domain, "--out", str(data), "--count", "8", "--size", "16"]) == 0
        assert main(["-q", "train", domain, "--data", str(data), "--model", model, "--out", str(run),
                     "--steps", "3", "--batch-size", "4", "--size", "16"]) == 0
        onnx_path = root / f"{key}.onnx"
        made[key] = (run, onnx_path, export_onnx(run, onnx_path))
    return made


@pytest.mark.parametrize("domain", ["driving", "lung-ct", "driving-vae", "lung-ct-gan"])
def test_export_passes_checker_and_parity(runs, domain):
    _, path, report = runs[domain]
    errors = report["parity"]
    assert sorted(errors) == [1, 2, 7] and max(errors.values()) < 1e-4
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


@pytest.mark.parametrize("domain", ["driving", "lung-ct"])
def test_both_upsampling_forms_export_with_parity(runs, domain, tmp_path):
    """3D exports fold nearest upsampling into sub-pixel convolutions (no Resize); 2D keeps
    Resize. The form not chosen must export just as exactly."""
    run, default_path, _ = runs[domain]
    folded_by_default = domain == "lung-ct"
    ops = {node.op_type for node in onnx.load(str(default_path)).graph.node}
    assert ("Resize" in ops) != folded_by_default
    other = tmp_path / "other.onnx"
    report = export_onnx(run, other, fold=not folded_by_default)
    assert max(report["parity"].values()) < 1e-4
    assert ("Resize" in {node.op_type for node in onnx.load(str(other)).graph.node}) == folded_by_default
    np.testing.assert_allclose(synthscape.load(other).sample(3, seed=5).images,
                               synthscape.load(default_path).sample(3, seed=5).images, rtol=1e-3, atol=1e-4)


def test_execution_providers_by_device():
    import onnxruntime as ort

    assert execution_providers("cpu")[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(SynthscapeError, match="onnxruntime-gpu"):
            execution_providers("cuda")
    with pytest.raises(SynthscapeError, match="unknown device 'tpu'"):
        execution_providers("tpu")


@pytest.mark.parametrize("domain", ["driving", "lung-ct", "driving-vae", "lung-ct-gan"])
def test_onnx_sampler_matches_torch_for_the_same_seed(runs, domain):
    run, path, _ = runs[domain]
    torch_samples = load_run(run).sample(5, seed=3, batch_size=2)
    onnx_samples = synthscape.load(path).sample(5, seed=3, batch_size=4)
    assert onnx_samples.conditions == torch_samples.conditions
    np.testing.assert_allclose(onnx_samples.images, torch_samples.images, rtol=1e-3, atol=1e-4)


def test_metadata_makes_the_file_self_contained(runs):
    _, path, _ = runs["lung-ct"]
    model = onnx.load(str(path))
    meta = json.loads({p.key: p.value for p in model.metadata_props}["synthscape"])
    assert meta["domain"] == "lung-ct" and meta["schema"]["nodule"] == ["absent", "present"]
    assert meta["network"]["latent_dim"] > 0 and meta["output_range"] == [-1.0, 1.0]
    assert meta["domain_meta"]["hu_window"] == [-1024.0, 600.0] and len(meta["domain_meta"]["spacing"]) == 3
    assert meta["synthscape_version"] == synthscape.__version__
    inputs = {i.name: i for i in model.graph.input}
    assert inputs["z"].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert inputs["condition"].type.tensor_type.elem_type == onnx.TensorProto.INT64


TORCH_FREE = """
import sys
sys.modules["torch"] = None  # an edge device: importing torch fails
from synthscape.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_sample_from_onnx_without_torch_writes_the_domain_formats(runs, tmp_path):
    for domain, formats in (("lung-ct", "nifti,dicom"), ("driving", "png")):
        out = tmp_path / domain
        result = subprocess.run([sys.executable, "-c", TORCH_FREE, "-q", "sample", str(runs[domain][1]), "--count", "3",
                                 "--out", str(out), "--format", formats, "--seed", "1"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        rows = list(csv.DictReader((out / "labels.csv").open()))
        assert len(rows) == 3 and (out / "preview.png").is_file()
    volume = nib.load(tmp_path / "lung-ct" / rows_first(tmp_path / "lung-ct")["path"])
    assert volume.get_data_dtype() == np.int16 and volume.shape == (16, 16, 16)
    assert len(list((tmp_path / "lung-ct" / "dicom").rglob("*.dcm"))) == 3 * 16


def rows_first(folder):
    return next(csv.DictReader((folder / "labels.csv").open()))


def test_bad_onnx_files_are_one_line_errors(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(SynthscapeError, match="is not a loadable ONNX model"):
        synthscape.load(garbage)
    with pytest.raises(SynthscapeError, match="does not exist"):
        synthscape.load(tmp_path / "missing.onnx")
    plain = tmp_path / "plain.onnx"
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph), str(plain))
    with pytest.raises(SynthscapeError, match="has no 'synthscape' metadata"):
        synthscape.load(plain)


def test_cli_export_refuses_to_overwrite(runs, tmp_path, capsys):
    run, _, _ = runs["driving"]
    out = tmp_path / "g.onnx"
    assert main(["-q", "export", str(run), "--out", str(out)]) == 0 and out.is_file()
    assert main(["export", str(run), "--out", str(out)]) != 0
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["-q", "export", str(run), "--out", str(out), "--overwrite"]) == 0


@pytest.mark.parametrize("precision", ["fp16", "int8"])
@pytest.mark.parametrize("domain", ["driving", "lung-ct"])
def test_lower_precision_keeps_float_io_and_a_bounded_error(runs, domain, precision, tmp_path):
    run, fp32_path, _ = runs[domain]
    path = tmp_path / f"{precision}.onnx"
    report = export_onnx(run, path, precision=precision)
    error = report["precision_error"]
    assert 0 < error["max"] < BOUNDS[precision][0] and error["mean"] < BOUNDS[precision][1]
    model = onnx.load(str(path))
    assert {p.key: p.value for p in model.metadata_props}["precision"] == precision
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    low = synthscape.load(path).sample(4, seed=2)
    full = synthscape.load(fp32_path).sample(4, seed=2)
    assert low.images.dtype == np.float32 and low.conditions == full.conditions
    assert np.abs(low.images - full.images).mean() < BOUNDS[precision][1]
    if precision == "int8":
        assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)
        weights = {init.name: init for init in model.graph.initializer}
        float_convs = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in weights
                       and weights[n.input[1]].data_type == onnx.TensorProto.FLOAT]
        assert [weights[n.input[1]].dims[0] for n in float_convs] == [3 if domain == "driving" else 1]  # the image layer
    else:
        assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
