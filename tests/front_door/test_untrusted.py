"""Untrusted files are read as data: a pickle planted as a checkpoint or as weights is refused, not
executed; ONNX metadata is parsed as JSON, never evaluated; and no package code calls an unpickler
or ``eval``/``exec``.

Every payload here, run, creates a marker file (the test first shows that it does when unpickled
the unsafe way); every refusal is checked to leave no marker, exit 2 with one line naming the file.
"""

from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path

import onnx
import pytest
import torch
from conftest import REPO, BlobsDomain, train_blobs_run

import synthscape
from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.domains.base import register, unregister
from synthscape.exports.runtime import METADATA_KEY

PACKAGE_DIRS = ("core", "domains", "exports", "synthscape")


class Planted:
    """Unpickled, it opens (so creates) ``marker`` for writing: code run by loading a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def plant(path: Path, marker: Path, kind: str) -> None:
    """Replace ``path`` by a pickle: a bare one, or torch's zip format holding one."""
    if kind == "pickle":
        path.write_bytes(pickle.dumps(Planted(marker)))
    else:
        torch.save(Planted(marker), path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny blobs GAN run with checkpoints, and its ONNX export."""
    domain = register(BlobsDomain(), replace=True)
    root = tmp_path_factory.mktemp("untrusted")
    data, run = train_blobs_run(root, checkpoint_every=1)
    assert main(["-q", "export", str(run), "--out", str(root / "model.onnx")]) == 0
    yield {"data": data, "run": run, "onnx": root / "model.onnx"}
    unregister(domain.name)


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained["run"], tmp_path / "run"))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("synthscape: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_the_planted_payload_runs_code_when_unpickled(tmp_path, kind):
    """The control: loading the planted file the unsafe way does run its code."""
    planted, marker = tmp_path / "state.pt", tmp_path / "marker"
    plant(planted, marker, kind)
    if kind == "pickle":
        pickle.loads(planted.read_bytes())  # noqa: S301 - the point of the control
    else:
        torch.load(planted, weights_only=False)
    assert marker.exists()


CHECKPOINT_FILES = ["state.pt", "weights.safetensors"]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's safe unpickler notes the bare pickle
@pytest.mark.parametrize("kind", ["pickle", "torch"])
@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_a_planted_checkpoint_is_refused_by_resume(trained, run_copy, tmp_path, capsys, kind, name):
    marker = tmp_path / "marker"
    target = run_copy / "checkpoint" / "step-00000002" / name
    plant(target, marker, kind)
    config = (run_copy / "config.json").read_text()
    assert main(["-q", "train", "blobs", "--data", str(trained["data"]), "--model", "gan", "--out", str(run_copy),
                 "--steps", "4", "--batch-size", "4", "--resume"]) == 2
    err = one_line_error(capsys)
    assert str(target) in err and ("could not be loaded safely" in err or "not a readable safetensors file" in err)
    assert not marker.exists()
    assert (run_copy / "config.json").read_text() == config  # nothing trained on


@pytest.mark.parametrize("kind", ["pickle", "torch"])
@pytest.mark.parametrize("command", ["sample", "export", "evaluate", "load"])
def test_planted_generator_weights_are_refused(trained, run_copy, tmp_path, capsys, kind, command):
    marker, weights = tmp_path / "marker", run_copy / "generator.safetensors"
    plant(weights, marker, kind)
    out = tmp_path / "out"
    if command == "load":
        with pytest.raises(SynthscapeError) as error:
            synthscape.load(run_copy)
        err = str(error.value)
        assert "\n" not in err
    else:
        argv = {"sample": ["sample", str(run_copy), "--count", "2", "--out", str(out)],
                "export": ["export", str(run_copy), "--out", str(tmp_path / "g.onnx")],
                "evaluate": ["evaluate", str(run_copy), "--data", str(trained["data"]), "--out", str(out)]}[command]
        assert main(["-q", *argv]) == 2
        err = one_line_error(capsys)
        assert not out.exists() and not (tmp_path / "g.onnx").exists()
    assert f"{weights} is not a readable safetensors file" in err
    assert not marker.exists()


# ---------------------------------------------------------------- ONNX metadata

def with_metadata(source: Path, target: Path, text: str) -> Path:
    """A copy of the ONNX model ``source`` whose synthscape metadata is ``text``."""
    model = onnx.load(str(source))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = text
    onnx.save(model, str(target))
    return target


def expression(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


def config_of(trained) -> dict:
    return json.loads((trained["run"] / "config.json").read_text())


@pytest.mark.parametrize("payload, message", [
    ("expression", "metadata that is not JSON"),
    ("python dict", "metadata that is not JSON"),
    ("json list", "metadata that is a JSON list"),
    ("network is a string", "is missing or has a malformed field"),
    ("format_version is a string", "expected an integer"),
    ("domain_meta is a list", "domain_meta of type list, expected a JSON object"),
    ("schema values are code", "needs a list of values"),
])
def test_onnx_metadata_is_parsed_as_data(trained, tmp_path, capsys, payload, message):
    marker = tmp_path / "marker"
    config = config_of(trained)
    text = {
        "expression": expression(marker),
        "python dict": repr({"format": "synthscape-generator", "domain": expression(marker)}),
        "json list": json.dumps([expression(marker)]),
        "network is a string": json.dumps({**config, "network": expression(marker)}),
        "format_version is a string": json.dumps({**config, "format_version": expression(marker)}),
        "domain_meta is a list": json.dumps({**config, "domain_meta": [expression(marker)]}),
        "schema values are code": json.dumps({**config, "schema": {**config["schema"], "position": expression(marker)}}),
    }[payload]
    path = with_metadata(trained["onnx"], tmp_path / "bad.onnx", text)
    with pytest.raises(SynthscapeError) as error:
        synthscape.load(path)
    assert str(path) in str(error.value) and message in str(error.value) and "\n" not in str(error.value)
    assert main(["-q", "sample", str(path), "--count", "1", "--out", str(tmp_path / "out")]) == 2
    assert message in one_line_error(capsys)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_code_in_onnx_metadata_strings_stays_an_inert_string(trained, tmp_path, capsys):
    """Valid JSON whose strings are code: they are names and values, looked up, never run."""
    marker = tmp_path / "marker"
    config = config_of(trained)
    config["domain_meta"] = {"note": expression(marker)}
    path = with_metadata(trained["onnx"], tmp_path / "meta.onnx", json.dumps(config))
    sampler = synthscape.load(path)
    assert sampler.domain_meta == {"note": expression(marker)}
    assert sampler.sample(2, seed=0).images.shape == (2, 1, 16, 16)

    config["domain"] = expression(marker)
    path = with_metadata(trained["onnx"], tmp_path / "domain.onnx", json.dumps(config))
    assert synthscape.load(path).domain == expression(marker)
    assert main(["-q", "sample", str(path), "--count", "1", "--out", str(tmp_path / "out")]) == 2
    assert "unknown domain" in one_line_error(capsys)
    assert not marker.exists()


# ---------------------------------------------------------------- source scan

def unsafe_calls(source: str, name: str) -> list[str]:
    """Calls that unpickle or evaluate: pickle/marshal/shelve loads, eval/exec/compile,
    ``torch.load`` without ``weights_only=True``, ``yaml.load`` without a safe loader,
    ``numpy.load(allow_pickle=True)``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        callee = ast.unparse(node.func)
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        where = f"{name}:{node.lineno} {callee}"
        if callee in ("eval", "exec", "compile", "__import__") or callee.split(".")[0] in ("pickle", "marshal", "shelve", "dill"):
            found.append(where)
        elif callee.endswith("Unpickler") or callee.endswith("read_pickle"):
            found.append(where)
        elif callee == "torch.load" and keywords.get("weights_only") != "True":
            found.append(where)
        elif callee == "yaml.load" and "SafeLoader" not in keywords.get("Loader", ""):
            found.append(where)
        elif callee in ("np.load", "numpy.load") and keywords.get("allow_pickle") not in (None, "False"):
            found.append(where)
    return found


def test_the_source_scan_finds_unsafe_calls():
    bad = ("import pickle, torch, yaml, numpy as np\npickle.loads(b)\neval('1')\nexec('x = 1')\ntorch.load(p)\n"
           "torch.load(p, weights_only=False)\nyaml.load(t)\nnp.load(p, allow_pickle=True)\n")
    assert [hit.split(" ")[1] for hit in unsafe_calls(bad, "bad.py")] == [
        "pickle.loads", "eval", "exec", "torch.load", "torch.load", "yaml.load", "np.load"]
    good = ("torch.load(p, map_location='cpu', weights_only=True)\nyaml.safe_load(t)\n"
            "yaml.load(t, Loader=yaml.SafeLoader)\nnp.load(p)\nmodel.eval()\njson.loads(t)\n")
    assert unsafe_calls(good, "good.py") == []


def test_package_code_never_unpickles_or_evaluates():
    files = [p for d in PACKAGE_DIRS for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 40
    found = [hit for path in files for hit in unsafe_calls(path.read_text(), str(path.relative_to(REPO)))]
    assert found == []
    loads = [path for path in files if "torch.load(" in path.read_text()]
    assert REPO / "core" / "training" / "checkpoint.py" in loads  # the scan sees the one place that loads torch files
