"""Ordering samples by condition: plan files and --count-per-condition give exactly those counts."""

import csv
from collections import Counter

import numpy as np
import pytest
from blobs import SCHEMA
from conftest import BlobsDomain

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.core.sampling.orders import read_plan
from synthscape.domains.base import register, unregister


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A blobs GAN trained 2 steps, made once: the tests only sample from it."""
    root = tmp_path_factory.mktemp("orders")
    data, run = root / "data", root / "run"
    domain = register(BlobsDomain(), replace=True)
    try:
        assert main(["-q", "simulate", "blobs", "--out", str(data), "--count", "16"]) == 0
        assert main(["-q", "train", "blobs", "--data", str(data), "--model", "gan", "--out", str(run),
                     "--steps", "2", "--batch-size", "4"]) == 0
    finally:
        unregister(domain.name)
    return run


@pytest.fixture
def run(blobs_domain, trained):
    return trained


def write_plan(path, text):
    path.write_text(text)
    return path


def test_plan_reads_conditions_and_counts(tmp_path):
    plan = write_plan(tmp_path / "plan.csv", "position,tint,count\na,bright,3\nc,,2\n,dim,\n")
    assert read_plan(plan, SCHEMA, default_count=4) == [
        ({"position": "a", "tint": "bright"}, 3), ({"position": "c"}, 2), ({"tint": "dim"}, 4)]


@pytest.mark.parametrize("text, message", [
    ("position,colour,count\na,red,1\n", "unknown column(s) colour"),
    ("position,count\nz,1\n", "line 2: unknown value 'z' for condition attribute 'position'"),
    ("position,count\na,0\n", "line 2: count must be a positive integer, got '0'"),
    ("position,count\na,many\n", "line 2: count must be a positive integer, got 'many'"),
    ("position,count\na,\n", "line 2: no count"),
    ("position,count\n", "has no rows"),
])
def test_bad_plans_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(SynthscapeError) as error:
        read_plan(write_plan(tmp_path / "plan.csv", text), SCHEMA)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_cli_plan_makes_exactly_those_counts(run, tmp_path):
    plan = write_plan(tmp_path / "plan.csv", "position,tint,count\na,bright,3\nd,dim,\nb,,1\n")
    out = tmp_path / "ordered"
    assert main(["-q", "sample", str(run), "--plan", str(plan), "--count-per-condition", "2", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert Counter((r["position"], r["tint"]) for r in rows if r["position"] != "b") == {("a", "bright"): 3, ("d", "dim"): 2}
    assert sum(r["position"] == "b" for r in rows) == 1 and len(rows) == 6
    assert (out / "preview.png").is_file()


def test_plan_indices_run_on_so_samples_match_single_requests(run, tmp_path):
    plan = write_plan(tmp_path / "plan.csv", "position,tint,count\na,bright,2\nc,dim,2\n")
    assert main(["-q", "sample", str(run), "--plan", str(plan), "--out", str(tmp_path / "p"), "--seed", "5"]) == 0
    assert main(["-q", "sample", str(run), "--count-per-condition", "2", "--condition", "position=c",
                 "--condition", "tint=dim", "--start", "2", "--seed", "5", "--out", str(tmp_path / "s")]) == 0
    planned = [np.load(tmp_path / "p" / f"{i:05d}.npy") for i in (2, 3)]
    single = [np.load(tmp_path / "s" / f"{i:05d}.npy") for i in (2, 3)]  # files are named by sample index
    for a, b in zip(planned, single):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("extra, message", [
    (["--condition", "position=a"], "--plan rows carry their own conditions"),
    (["--count", "3"], "--plan rows carry their own conditions"),
])
def test_plan_refuses_conflicting_options(run, tmp_path, capsys, extra, message):
    plan = write_plan(tmp_path / "plan.csv", "position,count\na,1\n")
    assert main(["sample", str(run), "--plan", str(plan), "--out", str(tmp_path / "o"), *extra]) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_sample_needs_a_count(run, tmp_path, capsys):
    assert main(["sample", str(run), "--out", str(tmp_path / "o")]) != 0
    assert "say how many samples" in capsys.readouterr().err
