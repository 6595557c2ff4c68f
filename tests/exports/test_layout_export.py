"""ONNX export of layout models: label map and noise inputs, any size, parity with torch, no torch to sample."""

import csv
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from conftest import tiny_network, tiny_train
from spots import LABELS, SCHEMA, Spots

import synthscape
from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.artifacts import load_run, save_generator
from synthscape.core.networks.layout import LayoutGenerator
from synthscape.core.schema.conditions import ConditionPrior
from synthscape.core.schema.config import ArtifactConfig
from synthscape.core.training.loop import train
from synthscape.domains import get_domain
from synthscape.exports.onnx_export import example_inputs, example_layout, export_onnx

OTHER_SIZE = (16, 32, 24)  # not the 16^3 it was trained and traced at
TOLERANCE = {"rtol": 1e-3, "atol": 1e-4}


def source(size):
    """A layout source of blob label maps holding every class (numpy only)."""
    return lambda condition, seed, index: example_layout(len(LABELS), size, seed, index).astype(np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A layout GAN trained 3 steps at 16^3 and its ONNX export: (run, onnx path, export report)."""
    root = tmp_path_factory.mktemp("layout-onnx")
    run, path = root / "run", root / "layout.onnx"
    network = tiny_network(3, layout_classes=3, generator_channels=(8, 8, 8), critic_channels=(8, 8, 8), latent_dim=8,
                           embed_dim=8)
    config = tiny_train(steps=3, batch_size=4, checkpoint_every=3, eval_every=3, samples_per_grid=2)
    train(Spots(8, seed=0, size=16), run, model="gan", schema=SCHEMA, network=network, config=config, labels=LABELS, crop=16,
          progress=False, device="cpu")
    return run, path, export_onnx(run, path)


def test_export_checks_parity_at_several_batches_and_a_second_size(exported):
    _, _, report = exported
    assert sorted(report["parity"]) == ["1 at 16x16x16", "2 at 16x16x16", "2 at 32x16x16", "7 at 16x16x16"]
    assert max(report["parity"].values()) < 1e-4


@pytest.mark.parametrize("size", [(16, 16, 16), OTHER_SIZE])
def test_onnxruntime_renders_as_torch_at_any_size(exported, size):
    run, path, _ = exported
    torch_sampler, onnx_sampler = load_run(run), synthscape.load(path)
    z, c, layout, noise = example_inputs(torch_sampler, 2, seed=11, size=size)
    assert set(np.unique(layout)) == {0, 1, 2}
    expected = torch_sampler.generate(z, c, layout, noise)
    got = onnx_sampler.generate(z, c, layout, noise)
    assert got.shape == (2, 1, *size)
    np.testing.assert_allclose(got, expected, **TOLERANCE)
    # the inputs matter: another label map or noise map changes the image
    assert np.abs(onnx_sampler.generate(z, c, np.roll(layout, 5, axis=1), noise) - got).mean() > 1e-3
    assert np.abs(onnx_sampler.generate(z, c, layout, -noise) - got).mean() > 1e-4


def test_onnx_sampler_samples_as_the_run_for_the_same_seed_and_layouts(exported):
    run, path, _ = exported
    onnx_sampler = synthscape.load(path)
    assert onnx_sampler.label_map == load_run(run).label_map == LABELS
    torch_samples = load_run(run).sample(3, seed=3, batch_size=2, layouts=source(OTHER_SIZE))
    onnx_samples = onnx_sampler.sample(3, seed=3, batch_size=3, layouts=source(OTHER_SIZE))
    assert onnx_samples.conditions == torch_samples.conditions
    assert np.array_equal(onnx_samples.layouts, torch_samples.layouts) and onnx_samples.layouts.dtype == np.uint8
    assert onnx_samples.images.shape == (3, 1, *OTHER_SIZE)
    np.testing.assert_allclose(onnx_samples.images, torch_samples.images, **TOLERANCE)


def test_the_graph_takes_an_int64_label_map_with_symbolic_sizes(exported):
    model = onnx.load(str(exported[1]))

    def shape(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = {i.name: i for i in model.graph.input}
    assert list(inputs) == ["z", "condition", "layout", "noise"] and [o.name for o in model.graph.output] == ["image"]
    assert inputs["layout"].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert inputs["noise"].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert shape(inputs["layout"]) == ["batch", "size_0", "size_1", "size_2"]
    assert shape(inputs["noise"]) == ["batch", 1, "size_0", "size_1", "size_2"]
    assert shape(model.graph.output[0]) == ["batch", 1, "size_0", "size_1", "size_2"]
    meta = json.loads({p.key: p.value for p in model.metadata_props}["synthscape"])
    assert meta["label_map"] == list(LABELS.classes) and meta["network"]["layout_classes"] == 3


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_lower_precisions_of_a_layout_model_render_any_size_near_fp32(exported, tmp_path, precision):
    """fp16 and int8 graphs keep the layout and noise inputs (int64 and float32), are checked and (int8)
    calibrated on label maps, and render a size they were not checked at within their bounds of fp32."""
    from synthscape.exports.precision import BOUNDS

    run, path, _ = exported
    report = export_onnx(run, tmp_path / f"{precision}.onnx", precision=precision)
    bound_max, bound_mean = BOUNDS[precision]
    assert 0 < report["precision_error"]["max"] <= bound_max and report["precision_error"]["mean"] <= bound_mean
    lowered, reference = synthscape.load(tmp_path / f"{precision}.onnx"), synthscape.load(path)
    inputs = {i.name: i.type.tensor_type.elem_type for i in onnx.load(str(tmp_path / f"{precision}.onnx")).graph.input}
    assert inputs["layout"] == onnx.TensorProto.INT64 and inputs["noise"] == onnx.TensorProto.FLOAT
    z, c, layout, noise = example_inputs(load_run(run), 2, seed=12, size=OTHER_SIZE)
    got, expected = lowered.generate(z, c, layout, noise), reference.generate(z, c, layout, noise)
    assert got.shape == expected.shape == (2, 1, *OTHER_SIZE) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= bound_max and np.abs(got - expected).mean() <= bound_mean


def test_folding_is_refused_for_layout_models_in_one_line(exported, tmp_path):
    run, _, _ = exported
    with pytest.raises(SynthscapeError, match="for class-only generators"):
        export_onnx(run, tmp_path / "folded.onnx", fold=True)
    assert not list(tmp_path.iterdir())


TORCH_FREE = """
import json, sys
sys.modules["torch"] = None  # an edge device: importing torch fails
import numpy as np
import synthscape

def blobs(condition, seed, index):  # a numpy label-map source: nested boxes, shifted per sample
    labels = np.zeros((16, 24, 16), np.uint8)
    labels[2:14, 2:22, 2:14] = 1
    labels[4 + index % 4:10, 6:12, 5:9] = 2
    return labels

samples = synthscape.load(sys.argv[1]).sample(3, seed=4, layouts=blobs)
assert "torch" not in {name.split(".")[0] for name, module in sys.modules.items() if module is not None}
print(json.dumps({"images": list(samples.images.shape), "layouts": list(samples.layouts.shape),
                  "same": all(np.array_equal(m, blobs(None, 4, i)) for i, m in enumerate(samples.layouts)),
                  "range": [float(samples.images.min()), float(samples.images.max())]}))
"""


def test_sampling_a_layout_onnx_without_torch(exported):
    result = subprocess.run([sys.executable, "-c", TORCH_FREE, str(exported[1])], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == [3, 1, 16, 24, 16] and report["layouts"] == [3, 16, 24, 16] and report["same"]
    assert -1 <= report["range"][0] < report["range"][1] <= 1


TORCH_FREE_CLI = """
import sys
sys.modules["torch"] = None
from synthscape.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_the_edge_command_draws_lung_ct_layouts_with_the_simulator(tmp_path):
    """``synthscape sample model.onnx --size N`` on a lung-ct layout model, torch-free: the numpy
    simulator draws each label map, written beside its volume. (Untrained: the export path only.)"""
    domain = get_domain("lung-ct")
    network = tiny_network(3, layout_classes=len(domain.labels), generator_channels=(8, 8, 8), latent_dim=8, embed_dim=8)
    config = ArtifactConfig("lung-ct", "gan", domain.schema, ConditionPrior.uniform(domain.schema), network,
                            label_map=domain.labels)
    torch.manual_seed(0)
    save_generator(tmp_path / "run", config, LayoutGenerator(network, domain.schema.cardinalities).eval())
    path = tmp_path / "lung.onnx"
    assert main(["-q", "export", str(tmp_path / "run"), "--out", str(path)]) == 0
    out = tmp_path / "samples"
    result = subprocess.run([sys.executable, "-c", TORCH_FREE_CLI, "-q", "sample", str(path), "--count", "2", "--out",
                             str(out), "--size", "16", "--seed", "1", "--condition", "nodule=present", "--condition", "size=large",
                             "--condition", "kind=solid"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import nibabel as nib

    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert len(rows) == 2 and all(row["mask"] for row in rows)
    volume, labels = nib.load(out / rows[0]["path"]), np.asarray(nib.load(out / rows[0]["mask"]).dataobj)
    assert volume.shape == labels.shape == (16, 16, 16)
    assert {0, 1, domain.labels.classes.index("nodule_solid")} <= set(np.unique(labels))  # lungs, the nodule asked for
