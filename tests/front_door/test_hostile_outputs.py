"""Outputs under attack (issue 17, parts 5-7): ``--out`` aimed at an input, at the current folder
or through a symbolic link; two writers of one folder; orders too large to hold in memory.

Every refusal exits 2 with one line, before any work, and leaves the inputs as they were.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BlobsDomain, train_blobs_run
from hostile import refused

import synthscape
from synthscape.cli import main
from synthscape.core.files.lock import lock_path
from synthscape.core.sampling.orders import draw_order
from synthscape.domains.base import register, unregister


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny blobs GAN run with a checkpoint, and its data."""
    domain = register(BlobsDomain(), replace=True)
    data, run = train_blobs_run(tmp_path_factory.mktemp("outputs"))
    yield {"data": data, "run": run}
    unregister(domain.name)


def test_out_inside_an_input_is_refused(trained, capsys):
    run = trained["run"]
    refused(["sample", run, "--count", "2", "--out", run / "checkpoint", "--overwrite"], capsys, run,
            "lies inside the input")
    refused(["sample", run, "--count", "2", "--out", run / "new"], capsys, run, "lies inside the input")


def test_plan_inside_out_counts_as_an_input(trained, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    plan = out / "plan.csv"
    plan.write_text("position,count\na,2\n")
    refused(["sample", trained["run"], "--plan", plan, "--out", out, "--overwrite"], capsys, tmp_path,
            f"holds the input {plan}")


@pytest.mark.parametrize("name", [".", "..", "/"])
def test_out_holding_the_current_folder_is_refused(trained, tmp_path, monkeypatch, capsys, name):
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("keep")
    monkeypatch.chdir(work)
    refused(["sample", trained["run"], "--count", "2", "--out", name, "--overwrite"], capsys, tmp_path,
            "is the current folder or holds it")  # and nothing written beside it, not even a lock file


def test_symlinked_out_is_refused(trained, tmp_path, capsys):
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    (real / "mine.txt").write_text("keep")
    link.symlink_to(real)
    refused(["sample", trained["run"], "--count", "2", "--out", link, "--overwrite"], capsys, tmp_path,
            "is a symbolic link")


def hold_lock(target: Path) -> subprocess.Popen:
    """Another process holding ``target``'s writer lock, as a running ``synthscape`` would."""
    code = ("import sys, time; from synthscape.core.files.lock import writer_lock\n"
            "with writer_lock(sys.argv[1]):\n    print('ready', flush=True); time.sleep(120)")
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def test_second_writer_is_refused_and_a_killed_holder_leaves_no_stale_lock(trained, tmp_path, capsys):
    out = tmp_path / "samples"
    holder = hold_lock(out)
    try:
        err = refused(["sample", trained["run"], "--count", "2", "--out", out], capsys, None,
                      f"is being written by another synthscape process (pid {holder.pid}")
        assert str(out) in err and not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(out).exists()  # a SIGKILL leaves the file, but the kernel dropped the lock
    assert main(["-q", "sample", str(trained["run"]), "--count", "2", "--out", str(out)]) == 0
    assert not lock_path(out).exists()  # taken over and removed when done


def test_train_and_resume_of_a_folder_being_written_are_refused(trained, tmp_path, capsys):
    run = tmp_path / "run"
    holder = hold_lock(run)
    try:
        for extra in ([], ["--resume"]):
            refused(["train", "blobs", "--data", trained["data"], "--model", "gan", "--out", run, "--steps", "2",
                     "--batch-size", "4", *extra], capsys, None, f"(pid {holder.pid}")
        refused(["run", "--out", run], capsys, None, f"(pid {holder.pid}")
        broken = tmp_path / "broken"  # refused before the data is read: the lock's line, not the data's
        broken.mkdir()
        refused(["train", "blobs", "--data", broken, "--model", "gan", "--out", run], capsys, None,
                f"(pid {holder.pid}")
        assert not run.exists()
    finally:
        holder.kill()
        holder.wait()


def test_sampling_streams_batches_into_one_labels_file(trained, tmp_path):
    out = tmp_path / "s"
    assert main(["-q", "sample", str(trained["run"]), "--count", "37", "--batch-size", "8", "--seed", "3",
                 "--start", "5", "--out", str(out)]) == 0
    with (out / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["path"] for row in rows] == [f"{i:05d}.npy" for i in range(5, 42)]
    whole = draw_order(synthscape.load(trained["run"]), [({}, 37)], seed=3, start=5, batch_size=8)
    assert [{k: row[k] for k in ("position", "tint")} for row in rows] == whole.conditions
    for row, image in zip(rows, whole.images):
        np.testing.assert_array_equal(np.load(out / row["path"]), image)
    assert (out / "preview.png").is_file()


@pytest.mark.parametrize("argv, expected", [
    (["sample", "RUN", "--count", "100000000"], "the number of samples ordered 100,000,000 is above the limit"),
    (["sample", "RUN", "--count", "2", "--batch-size", "100000"], "--batch-size 100,000 is above the limit"),
    (["simulate", "blobs", "--count", "100000000"], "--count 100,000,000 is above the limit"),
    (["simulate", "lung-ct", "--count", "1", "--size", "100000"], "--size asks for a shape of 100000x100000x100000"),
    (["simulate", "lung-ct", "--count", "1", "--size", "1024"], "voxels, more than the cap"),
    (["simulate", "driving", "--count", "1", "--workers", "100000"], "--workers 100,000 is above the limit"),
])
def test_absurd_sizes_are_refused_before_any_work(trained, tmp_path, capsys, argv, expected):
    out = tmp_path / "o"
    refused([trained["run"] if a == "RUN" else a for a in argv] + ["--out", out], capsys, tmp_path, expected)
    assert not out.exists()
