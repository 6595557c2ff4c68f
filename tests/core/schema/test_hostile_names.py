"""Names that become paths (issue 17, part 2): attribute names and values read from a run's
config.json or an ONNX file's metadata become file names (``samples/step-N/ATTRIBUTE=VALUE.png``),
labels.csv cells and DICOM text. One rule (``checked_name``) holds wherever a schema enters: a
name that could leave its folder, hide, or run as a spreadsheet formula is refused in one line
naming the file and the name, before anything is written; the run and its neighbours stay as
they were.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import onnx
import pytest
from blobs import SCHEMA as BLOBS
from conftest import BlobsDomain, tiny_network, tiny_train
from hostile import refused
from onnx import TensorProto, helper

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.schema.conditions import NAME_MAX, ConditionSchema, checked_name
from synthscape.core.training.loop import train
from synthscape.core.training.sample_grids import grid_path
from synthscape.domains import available_domains
from synthscape.domains.base import register, unregister
from synthscape.exports.runtime import METADATA_KEY

BAD = ["../../../escaped", "..", ".hidden", "a/b", "a\\b", "/etc", "=cmd", "+1", "-1", "@x", "\tx", "\rx", "a b",
       "", "a=b", "a,b", "é", "x" * 1000, "x" * (NAME_MAX + 1)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A blobs data folder and a GAN run trained one step on it (checkpoint and sample grids)."""
    root = tmp_path_factory.mktemp("hostile-names")
    domain = register(BlobsDomain(), replace=True)
    data = root / "data"
    domain.simulate(data, count=8, seed=0)
    train(domain.dataset(data), root / "run", model="gan", schema=BLOBS, domain="blobs", progress=False,
          network=tiny_network(latent_dim=8, generator_channels=(8, 8, 8), critic_channels=(8, 8, 8)),
          config=tiny_train(steps=1, batch_size=4, checkpoint_every=1, eval_every=1, samples_per_grid=2),
          domain_meta={"source": "blobs"})
    yield {"data": data, "run": root / "run"}
    unregister(domain.name)


def with_schema(config: dict, attribute: str = "position", value: str | None = None) -> dict:
    """``config`` with the attribute ``position`` renamed ``attribute`` and, if given, its value "a" made ``value``."""
    values = [value if value is not None and v == "a" else v for v in config["schema"]["position"]]
    return {**config, "schema": {attribute: values, "tint": config["schema"]["tint"]}}


def edited_run(trained: dict, tmp_path: Path, **change) -> Path:
    run = Path(shutil.copytree(trained["run"], tmp_path / "run"))
    (run / "config.json").write_text(json.dumps(with_schema(json.loads((run / "config.json").read_text()), **change)))
    return run


@pytest.mark.parametrize("attribute", ["../../../escaped", "..", "a/b", "{tmp}/escaped-absolute", "=cmd"])
def test_resume_refuses_an_attribute_name_that_would_leave_the_run(trained, tmp_path, capsys, attribute):
    """The sample grids of a resumed run are named after its config.json's schema: a name that
    climbs out (``../../../escaped`` lands beside the run, an absolute one anywhere) is refused
    before the run is touched, and nothing appears beside it."""
    attribute = attribute.format(tmp=tmp_path)
    run = edited_run(trained, tmp_path, attribute=attribute)
    refused(["train", "blobs", "--data", trained["data"], "--model", "gan", "--out", run, "--steps", 2, "--resume"],
            capsys, tmp_path, str(run / "config.json"), shown(repr(attribute)))
    assert not list(tmp_path.parent.glob("escaped*")) and not list(tmp_path.glob("escaped*"))


@pytest.mark.parametrize("bad", BAD, ids=[repr(b)[:20] for b in BAD])
@pytest.mark.parametrize("where", ["value", "attribute"])
def test_sample_refuses_a_hostile_name_or_value_in_config_json(trained, tmp_path, capsys, where, bad):
    run = edited_run(trained, tmp_path, **{where: bad})
    refused(["sample", run, "--count", 2, "--out", tmp_path / "out"], capsys, tmp_path,
            str(run / "config.json"), shown(repr(bad)))


def onnx_with(path: Path, config: dict) -> Path:
    """A loadable ONNX model (image = condition, unused) carrying ``config`` as its synthscape metadata:
    what is read here is the metadata; a refused one never runs the graph."""
    graph = helper.make_graph([helper.make_node("Identity", ["z"], ["image"])], "g", [
        helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 8]),
        helper.make_tensor_value_info("condition", TensorProto.INT64, ["batch", 2])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {METADATA_KEY: json.dumps(config)})
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("change", [{"value": "=HYPERLINK(\"x\")"}, {"value": "@SUM(1)"}, {"attribute": "../../x"},
                                    {"attribute": "+cmd"}], ids=["=value", "@value", "../attribute", "+attribute"])
def test_sample_refuses_a_hostile_name_in_onnx_metadata(trained, tmp_path, capsys, change):
    config = with_schema(json.loads((trained["run"] / "config.json").read_text()), **change)
    path = onnx_with(tmp_path / "model.onnx", config)
    bad = next(iter(change.values()))
    refused(["sample", path, "--count", 2, "--out", tmp_path / "out"], capsys, tmp_path, str(path), shown(repr(bad)))


def test_every_domain_schema_passes_the_rule():
    """lung-ct (ground_glass, part_solid), driving (pedestrian_crossing) and the tests' blobs keep working."""
    for schema in [BLOBS, *(domain.schema for domain in available_domains().values())]:
        for name, values in schema.attributes:
            assert checked_name(name, "name") == name and all(checked_name(v, "value") == v for v in values)
    assert [checked_name(text, "name") for text in ("v1.2", "A-b_c", "3", 7)] == ["v1.2", "A-b_c", "3", "7"]


@pytest.mark.parametrize("attributes", [{"w": ["fog", "FOG"]}, {"Weather": ["fog"], "weather": ["rain"]}])
def test_names_that_differ_only_in_case_are_refused(attributes):
    """They would be one file on macOS and Windows: one grid overwriting the other."""
    with pytest.raises(SynthscapeError, match="ignoring case"):
        ConditionSchema(attributes)


def test_a_grid_path_stays_in_its_folder_even_past_the_schema(tmp_path):
    """Defence in depth: the grid writer checks its own paths, names and planted links alike."""
    folder = tmp_path / "samples" / "step-00000001"
    folder.mkdir(parents=True)
    assert grid_path(folder, "weather", "fog") == folder / "weather=fog.png"
    with pytest.raises(SynthscapeError, match="not a valid name"):
        grid_path(folder, "../../x", "fog")
    os.symlink(tmp_path / "elsewhere.png", folder / "weather=rain.png")
    with pytest.raises(SynthscapeError, match="would leave"):
        grid_path(folder, "weather", "rain")
