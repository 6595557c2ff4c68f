"""Hostile run configs (issue 17, part 4): config.json and the same config in ONNX metadata come
from other people. Every number is bounded, every JSON type checked and every unknown or misplaced
key refused before anything is built from it: ``synthscape sample`` exits 2 with one line naming
the file and the field, no traceback, nothing written, the run left as it was.

The runs here are made without training (an untrained generator saved with its config.json): what
is tested is the reading of the config, and a generator that was never built cannot allocate. For
the refusals at load, building a generator at all fails the test (``no_network``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from blobs import SCHEMA as BLOBS
from conftest import BlobsDomain, tiny_network, tiny_train
from hostile import refused
from onnx import TensorProto, helper

from synthscape.cli import main
from synthscape.core.networks import artifacts
from synthscape.core.networks.artifacts import save_generator
from synthscape.core.networks.nets import ConditionalGenerator
from synthscape.core.schema import conditions
from synthscape.core.schema.conditions import ConditionPrior
from synthscape.core.schema.config import ArtifactConfig, NetworkConfig, default_network
from synthscape.domains.base import register, unregister
from synthscape.domains.driving.schema import SCHEMA as DRIVING
from synthscape.domains.lung_ct.schema import SCHEMA as LUNG
from synthscape.exports.runtime import METADATA_KEY

RUNS = {  # domain: (schema, spatial dims, channels, domain_meta)
    "blobs": (BLOBS, 2, 1, {"source": "blobs"}),
    "driving": (DRIVING, 2, 3, {"size": 16, "source_size": [16, 16]}),
    "lung-ct": (LUNG, 3, 1, {"hu_window": [-1024.0, 600.0], "spacing": [2.0, 2.0, 2.0], "size": [16, 16, 16],
                             "orientation": "RAS"}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A run folder per domain: an untrained tiny generator and its config.json; plus an ONNX file."""
    root = tmp_path_factory.mktemp("hostile-configs")
    made = {}
    for domain, (schema, dims, channels, meta) in RUNS.items():
        network = tiny_network(dims, channels, latent_dim=8, generator_channels=(8, 8, 8), critic_channels=(8, 8, 8))
        config = ArtifactConfig(domain, "gan", schema, ConditionPrior.uniform(schema), network, tiny_train(), meta, step=1)
        save_generator(root / domain, config, ConditionalGenerator(network, schema.cardinalities))
        made[domain] = root / domain
    made["onnx"] = tiny_onnx(root / "model.onnx", json.loads((made["blobs"] / "config.json").read_text()))
    domain = register(BlobsDomain(), replace=True)
    yield made
    unregister(domain.name)


def tiny_onnx(path: Path, config: dict) -> Path:
    """A runnable stand-in for an exported blobs generator: image = tanh(z @ W) as [B, 1, 16, 16],
    with ``config`` as its synthscape metadata (as ``synthscape export`` writes it)."""
    weight = helper.make_tensor("W", TensorProto.FLOAT, [8, 256], np.zeros(8 * 256, np.float32).tolist())
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 16, 16])
    nodes = [helper.make_node("MatMul", ["z", "W"], ["flat"]), helper.make_node("Reshape", ["flat", "shape"], ["grid"]),
             helper.make_node("Tanh", ["grid"], ["image"])]
    graph = helper.make_graph(nodes, "generator", [
        helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 8]),
        helper.make_tensor_value_info("condition", TensorProto.INT64, ["batch", 2])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 16, 16])], [weight, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {METADATA_KEY: json.dumps(config)})
    onnx.save(model, str(path))
    return path


@pytest.fixture
def no_network(monkeypatch):
    """Building a generator fails the test: the refusal must come before any torch module exists."""
    def refuse(*args, **kwargs):
        raise AssertionError("a generator was built from a config that should have been refused")
    monkeypatch.setattr(artifacts, "build_generator", refuse)


def edited_run(runs: dict, domain: str, tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    run = Path(shutil.copytree(runs[domain], tmp_path / "run"))
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    return run


def put(section: str | None, key: str, value) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        (config[section] if section else config)[key] = value
    return edit


NETWORK = [
    ("latent_dim", 10**9), ("latent_dim", True), ("latent_dim", 1.5), ("latent_dim", "64"), ("latent_dim", 0),
    ("embed_dim", 10**6), ("channels", 65536), ("norm_groups", -1), ("spatial_dims", 2.0), ("spatial_dims", 4),
    ("generator_channels", [65536, 8, 8]), ("critic_channels", [8, [8], 8]), ("generator_channels", [8] * 20),
    ("generator_channels", "888"), ("image_size", [100000, 16]), ("image_size", [16, 16, 16]),
    ("image_size", [16.0, 16.0]), ("conditional", "yes"), ("spectral_norm", 1),
]


@pytest.mark.parametrize("key, value", NETWORK, ids=[f"network.{k}={v!r}"[:40] for k, v in NETWORK])
def test_network_numbers_and_types_are_bounded_before_anything_is_built(runs, tmp_path, capsys, no_network, key, value):
    run = edited_run(runs, "blobs", tmp_path, put("network", key, value))
    refused(["sample", run, "--count", 2, "--out", tmp_path / "out"], capsys, tmp_path, str(run / "config.json"), key)


def test_widths_and_sizes_each_within_bounds_can_still_make_too_big_a_network(runs, tmp_path, capsys, no_network):
    """Every number below its own bound, together 2^36 elements in one feature map: refused."""
    network = {"spatial_dims": 2, "image_size": [4096, 4096], "channels": 1, "latent_dim": 4096, "embed_dim": 32,
               "generator_channels": [4096, 4096, 4096], "critic_channels": [8, 8, 8]}
    run = edited_run(runs, "blobs", tmp_path, lambda config: config["network"].update(network))
    err = refused(["sample", run, "--count", 2, "--out", tmp_path / "out"], capsys, tmp_path, str(run / "config.json"))
    assert "more than the limit" in err


def test_a_512_cubed_ct_generator_and_a_2048_square_driving_one_pass():
    """The bounds leave room for real work: default_network at full resolution is accepted."""
    for dims, size, channels, latent in ((3, (512, 512, 512), 1, 64), (3, (512, 512, 512), 1, 256),
                                         (2, (2048, 2048), 3, 64), (2, (1024, 1024), 3, 512)):
        config = default_network(dims, size, channels)
        again = NetworkConfig(**{**config.__dict__, "latent_dim": latent, "embed_dim": 128})
        assert again.image_size == size


TRAIN = [
    ("steps", True), ("steps", 0), ("batch_size", 10**9), ("batch_size", 2.5), ("samples_per_grid", 10**6),
    ("num_workers", 10**6), ("seed", -1), ("log_every", "10"), ("lr_generator", "0.1"), ("lr_critic", float("nan")),
    ("lr_generator", 0), ("betas", [0.5, 1.0]), ("betas", [[0.5], 0.9]), ("betas", [0.5]), ("ema_decay", 2),
    ("r1_gamma", float("inf")), ("compile", "false"), ("dp_epsilon", True), ("kl_warmup_steps", -5),
]


@pytest.mark.parametrize("key, value", TRAIN, ids=[f"train.{k}={v!r}"[:40] for k, v in TRAIN])
def test_train_numbers_and_types_are_bounded(runs, tmp_path, capsys, no_network, key, value):
    run = edited_run(runs, "blobs", tmp_path, put("train", key, value))
    refused(["sample", run, "--count", 2, "--out", tmp_path / "out"], capsys, tmp_path, str(run / "config.json"), key)


def many_rows(config: dict) -> None:
    config["condition_counts"] = [[[p, t], 1] for p in range(4) for t in range(2)]


TOP = [
    ("step", put(None, "step", 1.5)), ("step", put(None, "step", -1)), ("model", put(None, "model", ["gan"])),
    ("domain", put(None, "domain", 5)), ("network", put(None, "network", [16])),
    ("network", put("network", "depth", 3)), ("train", put("train", "lr", 0.1)),
    ("condition_counts", put(None, "condition_counts", [])),
    ("condition_counts", put(None, "condition_counts", [[[0, 1], True]])),
    ("condition_counts", put(None, "condition_counts", [[[0, 1], 0]])),
    ("condition_counts", put(None, "condition_counts", [[[0, 99], 3]])),
    ("condition_counts", put(None, "condition_counts", [[[0, 1], 3], [[0, 1], 2]])),
    ("condition_counts", put(None, "condition_counts", {"0,1": 3})),
    ("condition_counts", many_rows),
    ("attributes", put(None, "schema", {f"a{i}": ["x", "y"] for i in range(100)})),
    ("values", put(None, "schema", {"position": [f"v{i}" for i in range(2000)], "tint": ["dim", "bright"]})),
    ("domain_meta", put(None, "domain_meta", {"source": [[1]]})),
    ("domain_meta", put(None, "domain_meta", {"source": "x" * 5000})),
    ("domain_meta", put(None, "domain_meta", {f"k{i}": 1 for i in range(40)})),
    ("../x", put(None, "domain_meta", {"../x": 1})),
]


@pytest.mark.parametrize("name, edit", TOP, ids=[f"{i}-{name}" for i, (name, _) in enumerate(TOP)])
def test_fields_schemas_counts_and_meta_structure_are_refused_at_load(runs, tmp_path, capsys, no_network, monkeypatch,
                                                                      name, edit):
    if edit is many_rows:  # 8 rows against a limit lowered to 3: a million rows would be a slow test
        monkeypatch.setattr(conditions, "MAX_COMBINATIONS", 3)
    run = edited_run(runs, "blobs", tmp_path, edit)
    refused(["sample", run, "--count", 2, "--out", tmp_path / "out"], capsys, tmp_path, str(run / "config.json"), name)


META = [  # domain, domain_meta, what the line names
    ("blobs", {"out": 1}, "'out'"), ("blobs", {"formats": "x"}, "'formats'"), ("blobs", {"seed": 3}, "'seed'"),
    ("blobs", {"meta": {}}, "domain_meta"), ("driving", {"spacing": [1, 1, 1]}, "'spacing'"),
    ("driving", {"size": 1.5}, "size"), ("driving", {"size": True}, "size"), ("driving", {"source_size": [0, 5]}, "source_size"),
    ("driving", {"size": 100000}, "size"),
    ("lung-ct", {"spacing": "abc"}, "spacing"), ("lung-ct", {"spacing": [1, 2]}, "spacing"),
    ("lung-ct", {"spacing": [0, 1, 1]}, "spacing"), ("lung-ct", {"hu_window": [600, -1024]}, "hu_window"),
    ("lung-ct", {"hu_window": [True, 1]}, "hu_window"), ("lung-ct", {"size": [100000, 16, 16]}, "size"),
    ("lung-ct", {"orientation": "LPS"}, "orientation"), ("lung-ct", {"orientation": 7}, "orientation"),
]


@pytest.mark.parametrize("domain, meta, named", META, ids=[f"{d}-{m}"[:40] for d, m, _ in META])
def test_domain_meta_the_writer_does_not_declare_or_cannot_use_is_one_line(runs, tmp_path, capsys, domain, meta, named):
    """Keys that are the writer's own arguments (out, formats, seed), unknown keys and declared keys
    of the wrong type or out of bounds: refused, naming config.json, with nothing written."""
    run = edited_run(runs, domain, tmp_path, put(None, "domain_meta", meta))
    refused(["sample", run, "--count", 2, "--out", tmp_path / "out"], capsys, tmp_path, str(run / "config.json"), named)


def test_the_untouched_runs_sample(runs, tmp_path, capsys):
    """The control: the same runs and ONNX file, unedited, make samples."""
    for domain in (*RUNS, "onnx"):
        assert main(["-q", "sample", str(runs[domain]), "--count", "2", "--out", str(tmp_path / domain)]) == 0, \
            capsys.readouterr().err


ONNX = [
    ("latent_dim", put("network", "latent_dim", 10**9)), ("generator_channels", put("network", "generator_channels", [65536, 8, 8])),
    ("image_size", put("network", "image_size", [100000, 16])), ("batch_size", put("train", "batch_size", True)),
    ("condition_counts", put(None, "condition_counts", [[[0, 1], 1.5]])), ("'out'", put(None, "domain_meta", {"out": 1})),
]


@pytest.mark.parametrize("named, edit", ONNX, ids=[n for n, _ in ONNX])
def test_onnx_metadata_is_bounded_like_config_json(runs, tmp_path, capsys, named, edit):
    config = json.loads((runs["blobs"] / "config.json").read_text())
    edit(config)
    path = tiny_onnx(tmp_path / "hostile.onnx", config)
    refused(["sample", path, "--count", 2, "--out", tmp_path / "out"], capsys, tmp_path, str(path), named)
