"""Scale-out: torchrun training (rank 0 writes, resume is exact) and sharded sampling (the shards
together are the unsharded samples bit for bit)."""

import csv
import os
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.core.sampling.orders import count_network_calls, draw_order, network_calls
from synthscape.core.sampling.shards import Shard, torchrun_shard
from synthscape.core.training.data import ResumableSampler


def test_shard_parses_and_blocks_tile_the_items():
    assert Shard.parse(" 2 / 5 ") == Shard(2, 5)
    for text in ("2", "a/b", "-1/3", "1/2/3"):
        with pytest.raises(SynthscapeError, match="--shard must look like I/N"):
            Shard.parse(text)
    for text in ("3/3", "0/0"):
        with pytest.raises(SynthscapeError, match="0 <= I < N"):
            Shard.parse(text)
    for items in (0, 1, 7, 64):
        for count in (1, 2, 3, 8):
            blocks = [Shard(i, count).block(items) for i in range(count)]
            assert [i for b in blocks for i in b] == list(range(items))
    assert Shard(1, 4).name == "shard-001-of-004"


def test_torchrun_variables_are_read_and_checked(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert torchrun_shard() is None
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(SynthscapeError, match="LOCAL_RANK, WORLD_SIZE not"):
        torchrun_shard()
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert torchrun_shard() == Shard(1, 3)
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(SynthscapeError, match="RANK=1 is not within WORLD_SIZE=1"):
        torchrun_shard()


@pytest.mark.parametrize("argv", [["simulate", "driving", "--out", "{tmp}/d", "--count", "2"],
                                  ["run", "--out", "{tmp}/r"], ["export", "{tmp}/run", "--out", "{tmp}/g.onnx"]])
def test_commands_that_do_not_shard_refuse_torchrun(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert f"'synthscape {argv[0]}' does not run under torchrun (WORLD_SIZE=2)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_ranks_split_one_data_stream_like_distributed_sampler():
    whole = list(islice(iter(ResumableSampler(10, seed=3)), 40))
    ranks = [list(islice(iter(ResumableSampler(10, seed=3, rank=r, world=2)), 20)) for r in range(2)]
    assert ranks[0] == whole[0::2] and ranks[1] == whole[1::2]
    # a resume at step 3 of batch 2 on 2 ranks starts at position 3 * 2 * 2 of the whole stream
    resumed = [list(islice(iter(ResumableSampler(10, seed=3, start=12, rank=r, world=2)), 4)) for r in range(2)]
    assert resumed[0] == whole[12:20:2] and resumed[1] == whole[13:20:2]
    with pytest.raises(SynthscapeError, match="rank 2 of 2"):
        ResumableSampler(10, seed=3, rank=2, world=2)


def average_gradients_worker(rank: int, port: int) -> None:
    """One of two gloo processes: its half-batch gradient, averaged, is the whole batch's gradient."""
    import torch

    from synthscape.core.training.distributed import ProcessGroup

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    group, _ = ProcessGroup.start(torch.device("cpu"))
    try:
        torch.manual_seed(rank)  # different initial weights: broadcast_modules must make them rank 0's
        model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        group.broadcast_modules([model])
        reference = [p.detach().clone() for p in model.parameters()]
        x = torch.randn(8, 6, generator=torch.Generator().manual_seed(11))
        model(x[rank * 4:(rank + 1) * 4]).square().mean().backward()
        group.average_gradients(list(model.parameters()))
        whole = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        with torch.no_grad():
            for p, r in zip(whole.parameters(), reference):
                p.copy_(r)
        whole(x).square().mean().backward()
        for p, q in zip(model.parameters(), whole.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-7)
        gathered = group.gather([p.detach() for p in model.parameters()])
        assert all(torch.equal(a, b) for a, b in zip(gathered[0], gathered[1]))
        assert group.average_metrics({"loss": float(rank)}) == {"loss": 0.5}
    finally:
        group.close()


def test_gradients_are_averaged_across_processes():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(average_gradients_worker, args=(port,), nprocs=2, join=True)


def test_network_calls_cut_each_row_into_batches():
    order = [({"a": "x"}, 5), ({"a": "y"}, 3)]
    assert list(network_calls(order, start=10, batch_size=2)) == [
        ({"a": "x"}, 10, 2), ({"a": "x"}, 12, 2), ({"a": "x"}, 14, 1), ({"a": "y"}, 15, 2), ({"a": "y"}, 17, 1)]
    assert count_network_calls(order, batch_size=2) == 5


@pytest.fixture(scope="module")
def driving_run(tmp_path_factory):
    """A driving GAN trained for 2 steps at 32x32: the real networks, quickly."""
    root = tmp_path_factory.mktemp("driving")
    assert main(["-q", "simulate", "driving", "--out", str(root / "data"), "--count", "24", "--size", "32"]) == 0
    assert main(["-q", "train", "driving", "--data", str(root / "data"), "--model", "gan", "--out", str(root / "run"),
                 "--steps", "2", "--batch-size", "4", "--size", "32"]) == 0
    return root


def test_shards_together_are_the_unsharded_samples(driving_run):
    import synthscape

    generator = synthscape.load(driving_run / "run")
    order = [({"weather": "fog"}, 5), ({"weather": "snow", "time": "night"}, 7)]
    whole = draw_order(generator, order, seed=4, start=3, batch_size=4)
    parts = [draw_order(generator, order, seed=4, start=3, batch_size=4, shard=Shard(i, 3)) for i in range(3)]
    assert np.array_equal(np.concatenate([p.indices for p in parts]), whole.indices)
    assert np.array_equal(np.concatenate([p.images for p in parts]), whole.images)  # bit for bit
    assert [c for p in parts for c in p.conditions] == whole.conditions
    with pytest.raises(SynthscapeError, match="shard 0/9 gets no samples: the order makes only 4 network call"):
        draw_order(generator, order, seed=4, start=3, batch_size=4, shard=Shard(0, 9))


def read_rows(folder: Path) -> list[dict]:
    with (folder / "labels.csv").open() as handle:
        return list(csv.DictReader(handle))


def same_files(whole: Path, parts: list[Path]) -> None:
    """Every image of ``whole`` is in exactly one part, byte for byte; the labels agree."""
    rows = sorted((row for part in parts for row in read_rows(part)), key=lambda row: int(row["index"]))
    assert rows == read_rows(whole)
    for row in rows:
        part = next(p for p in parts if (p / row["path"]).is_file())
        assert (part / row["path"]).read_bytes() == (whole / row["path"]).read_bytes()


def test_sample_shard_option_on_separate_machines(driving_run, tmp_path):
    args = ["-q", "sample", str(driving_run / "run"), "--count-per-condition", "6", "--condition", "weather=rain",
            "--batch-size", "2", "--seed", "7"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    for i in range(3):
        assert main([*args, "--out", str(tmp_path / f"part{i}"), "--shard", f"{i}/3"]) == 0
    same_files(tmp_path / "whole", [tmp_path / f"part{i}" for i in range(3)])
    assert main([*args, "--out", str(tmp_path / "bad"), "--shard", "1of3"]) == 2
    assert not (tmp_path / "bad").exists()


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=2 -m synthscape ...`` on CPU, one thread per process."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "synthscape", "-q", *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_torchrun_trains_on_two_processes_and_resumes_exactly(driving_run, tmp_path):
    data = driving_run / "data"
    train = ["train", "driving", "--data", str(data), "--model", "gan", "--batch-size", "4", "--size", "32",
             "--checkpoint-every", "2", "--log-every", "1"]
    torchrun(*train, "--out", "straight", "--steps", "4", cwd=tmp_path)
    torchrun(*train, "--out", "resumed", "--steps", "2", cwd=tmp_path)
    torchrun(*train, "--out", "resumed", "--steps", "4", "--resume", cwd=tmp_path)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    # rank 0 alone wrote: one row per step, one checkpoint per interval
    with (straight / "metrics.csv").open() as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["1", "2", "3", "4"]
    assert sorted(p.name for p in (straight / "checkpoint").glob("step-*")) == ["step-00000002", "step-00000004"]
    # the interrupted-and-resumed run is the uninterrupted one: generator, critic and EMA weights
    for name in ("generator.safetensors", "checkpoint/step-00000004/weights.safetensors"):
        a, b = load_file(straight / name), load_file(resumed / name)
        assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a), name
    # and it differs from a single-process run with the same per-process batch (it saw twice the data)
    assert main(["-q", *train, "--out", str(tmp_path / "single"), "--steps", "4"]) == 0
    single = load_file(tmp_path / "single" / "generator.safetensors")
    weights = load_file(straight / "generator.safetensors")
    assert any(not np.array_equal(single[k].numpy(), weights[k].numpy()) for k in weights)


def test_torchrun_sampling_writes_one_shard_per_rank(driving_run, tmp_path):
    args = ["sample", str(driving_run / "run"), "--count-per-condition", "5", "--condition", "time=dusk",
            "--batch-size", "2"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the ranks (OMP_NUM_THREADS=1): the same floats, so the same PNG bytes
    try:  # (with two threads here a render differed from a rank's by one 8-bit step in one pixel, 2026-12-04)
        assert main(["-q", *args, "--out", str(tmp_path / "whole")]) == 0
    finally:
        torch.set_num_threads(threads)
    torchrun(*args, "--out", "sharded", cwd=tmp_path)
    parts = sorted((tmp_path / "sharded").iterdir())
    assert [p.name for p in parts] == ["shard-000-of-002", "shard-001-of-002"]
    same_files(tmp_path / "whole", parts)
