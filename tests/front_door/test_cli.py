"""The command line, as a user runs it: help, domains, train, sample, one-line errors."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from synthscape.cli import build_parser, main

COMMANDS = ["domains", "simulate", "train", "sample", "export", "evaluate", "run"]


def test_help_explains_every_option(tmp_path):
    result = subprocess.run([sys.executable, "-m", "synthscape", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
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
def test_bad_input_gives_one_line_and_writes_nothing(blobs_domain, tmp_path, capsys, argv, message):
    run = tmp_path / "run"
    data = tmp_path / "data"
    main(["-q", "simulate", "blobs", "--out", str(data), "--count", "8"])
    main(["-q", "train", "blobs", "--data", str(data), "--model", "gan", "--out", str(run), "--steps", "2",
          "--batch-size", "4"])
    capsys.readouterr()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = [a.format(tmp=tmp_path, run=run) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synthscape: error: ") and message in err and "\n" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_import_needs_no_torch(tmp_path):
    """The edge install: the package, schemas, sampling plans and the registry import without torch."""
    blocker = tmp_path / "torch.py"
    blocker.write_text("raise ImportError('torch is not installed here')\n")
    code = ("import synthscape, synthscape.core.sampling.sampler, synthscape.core.schema.config, synthscape.core.files.grids, "
            "synthscape.domains, synthscape.cli; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
