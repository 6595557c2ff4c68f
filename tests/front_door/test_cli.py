"""The command line, as a user runs it: help, domains, train, sample, one-line errors."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from conftest import BlobsDomain

from synthscape.cli import build_parser, main
from synthscape.domains.base import register, unregister

COMMANDS = ["domains", "simulate", "train", "sample", "export", "evaluate", "run"]


def test_help_explains_every_option(capsys):
    # in this process: `python -m synthscape` itself is run by test_crash.py and test_progress.py
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    subparsers = build_parser()._subparsers._group_actions[0].choices
    assert sorted(subparsers) == sorted(COMMANDS)
    for name, parser in subparsers.items():
        for action in parser._actions:
            assert action.help, f"'synthscape {name}' option {action.option_strings or action.dest} has no help"


def test_domains_lists_schemas(blobs_domain, capsys):
    assert main(["domains"]) == 0
    out = capsys.readouterr().out
    assert "blobs (2D)" in out and "position = a | b | c | d" in out and "tint = dim | bright" in out


def test_simulate_train_sample_end_to_end(blobs_domain, tmp_path, capsys):
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "samples"
    assert main(["simulate", "blobs", "--out", str(data), "--count", "32", "--seed", "1"]) == 0
    assert len(list(data.glob("*.npy"))) == 32
    assert main(["-q", "train", "blobs", "--data", str(data), "--model", "vae", "--out", str(run),
                 "--steps", "6", "--batch-size", "4", "--checkpoint-every", "3", "--eval-every", "6"]) == 0
    assert (run / "generator.safetensors").is_file()
    assert main(["-q", "train", "blobs", "--data", str(data), "--model", "vae", "--out", str(run),
                 "--steps", "9", "--batch-size", "4", "--resume"]) == 0
    assert '"step": 9' in (run / "config.json").read_text()
    assert main(["-q", "sample", str(run), "--count", "5", "--out", str(out), "--condition", "position=c",
                 "--seed", "2"]) == 0
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert len(rows) == 5 and {r["position"] for r in rows} == {"c"}
    assert np.load(out / rows[0]["path"]).shape == (1, 16, 16)


@pytest.fixture(scope="module")
def blobs_run(tmp_path_factory):
    """A blobs data set and a GAN trained 2 steps on it, made once for the bad-input cases (which only read it)."""
    root = tmp_path_factory.mktemp("cli")
    domain = register(BlobsDomain(), replace=True)
    try:
        assert main(["-q", "simulate", "blobs", "--out", str(root / "data"), "--count", "8"]) == 0
        assert main(["-q", "train", "blobs", "--data", str(root / "data"), "--model", "gan", "--out", str(root / "run"),
                     "--steps", "2", "--batch-size", "4"]) == 0
    finally:
        unregister(domain.name)
    return root


def tree(root):
    return sorted(p.relative_to(root) for p in root.rglob("*"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "nosuch", "--data", ".", "--model", "gan", "--out", "r"], "unknown domain 'nosuch'; available domains: blobs"),
        (["sample", "{tmp}/missing", "--count", "1", "--out", "{tmp}/o"], "does not exist"),
        (["sample", "{run}", "--count", "1", "--out", "{tmp}/o", "--condition", "colour=red"],
         "unknown condition attribute 'colour'; valid attributes: position, tint"),
        (["sample", "{run}", "--count", "1", "--out", "{tmp}/o", "--condition", "position"], "is not of the form attribute=value"),
        (["sample", "{run}", "--count", "1", "--out", "{run}"], "already exists and is not empty"),
        (["train", "blobs", "--data", "{tmp}/none", "--model", "gan", "--out", "{tmp}/r"], "is not a folder"),
    ],
)
def test_bad_input_gives_one_line_and_writes_nothing(blobs_domain, blobs_run, tmp_path, capsys, argv, message):
    run = blobs_run / "run"
    capsys.readouterr()
    before = tree(tmp_path), tree(blobs_run)
    argv = [a.format(tmp=tmp_path, run=run) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synthscape: error: ") and message in err and "\n" not in err
    assert (tree(tmp_path), tree(blobs_run)) == before


def test_import_needs_no_torch(tmp_path):
    """The edge install: the package, schemas, sampling plans and the registry import without torch."""
    blocker = tmp_path / "torch.py"
    blocker.write_text("raise ImportError('torch is not installed here')\n")
    code = ("import synthscape, synthscape.core.sampling.sampler, synthscape.core.schema.config, synthscape.core.files.grids, "
            "synthscape.domains, synthscape.cli; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
