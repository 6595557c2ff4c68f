"""Crashes (issue 8): real ``synthscape`` processes SIGKILLed while training, sampling and running a
pipeline leave nothing half-written under a final name, and a rerun completes exactly as if never
killed; a diverging run stops with a one-line message and keeps its last good checkpoint.

A kill that must land in a given state freezes the process first (SIGSTOP, then ``waitpid`` until it
is stopped), looks at the files, and kills it only if the state still holds: the kill then lands
exactly there, on any machine speed. The others come a seeded random number of checkpoints and a
seeded random fraction of a second after the process resumed: mid-step or mid-save, as it falls.

Each ``synthscape`` process is forked from one warm interpreter (started once for the module, with the
same environment, torch and synthscape already imported) and runs the command line's ``main`` as
``python -m synthscape`` would: a real process of its own, stopped and SIGKILLed by its pid, that does
not pay torch's import each of the eleven times. (``python -m synthscape`` itself starts from nothing
in tests/core/test_progress.py.)
"""

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
import torch
from safetensors.torch import load_file

from synthscape.cli import main
from synthscape.core.files.atomic import leftovers
from synthscape.core.training.checkpoint import latest_checkpoint

SEED = 8
STEPS = 16
ENV = {**{k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")},
       "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}  # one thread: the same floats in every process
# The warm interpreter: imports what the commands use, then forks one child per request line (JSON:
# args, cwd, log, rc), answers with the child's pid, and writes each child's exit status (negative: the
# signal that killed it) to its rc file once it ends. The child runs main(args) with stdout on /dev/null
# and stderr on the log, and leaves by SystemExit, as python -m synthscape does.
SERVER = """
import importlib, json, os, select, sys
from synthscape.cli import main
for name in ("synthscape.services", "synthscape.pipeline", "synthscape.core.training.loop",
             "synthscape.core.networks.artifacts", "synthscape.domains.lung_ct.domain", "torch._dynamo"):
    try:
        importlib.import_module(name)  # only saves each child the import: what main imports, it imports anyway
    except ImportError:
        pass
print("ready", flush=True)
running, job = {}, None
while job is None:
    if select.select([sys.stdin], [], [], 0.002)[0]:
        line = sys.stdin.readline()
        if not line:
            raise SystemExit(0)
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            job = request
            break
        running[pid] = request["rc"]
        print(pid, flush=True)
    for pid, rc in list(running.items()):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            with open(rc + ".tmp", "w") as handle:
                handle.write(str(os.waitstatus_to_exitcode(status)))
            os.replace(rc + ".tmp", rc)
            del running[pid]
os.chdir(job["cwd"])
null, log = os.open(os.devnull, os.O_RDWR), os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for fd, target in ((0, null), (1, null), (2, log)):
    os.dup2(target, fd)
sys.argv = ["synthscape", *job["args"]]
raise SystemExit(main(job["args"]))
"""


class Child:
    """A ``synthscape`` process forked from the warm interpreter: the parts of ``subprocess.Popen`` used here."""

    def __init__(self, server: subprocess.Popen, args: list[str], cwd: Path):
        stamp = time.monotonic_ns()
        self.log, self.rc = cwd / f"stderr-{stamp}.txt", cwd / f"stderr-{stamp}.rc"
        self.returncode = None
        server.stdin.write(json.dumps({"args": args, "cwd": str(cwd), "log": str(self.log), "rc": str(self.rc)}) + "\n")
        server.stdin.flush()
        self.pid = int(server.stdout.readline())

    def poll(self) -> int | None:
        if self.returncode is None and self.rc.exists():
            self.returncode = int(self.rc.read_text())
        return self.returncode

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"synthscape (pid {self.pid})", timeout)
            time.sleep(0.002)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def wait_stopped(self) -> None:
        """Return once the process is stopped (SIGSTOP delivered: its files no longer change), or has ended."""
        stat = Path(f"/proc/{self.pid}/stat")
        while self.poll() is None:
            try:
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError):
                return
            if state in "TtZX":
                return
            time.sleep(0.0005)


SERVERS: list[subprocess.Popen] = []  # the warm interpreter, once started
LAUNCHED: list[Child] = []  # killed at the end of the module, should a failed test leave one running


def launch(*args: str, cwd: Path) -> Child:
    """``python -m synthscape -q ARGS`` in a process of its own; stderr goes to a file."""
    if not SERVERS:
        SERVERS.append(subprocess.Popen([sys.executable, "-c", SERVER], cwd=cwd, env=ENV, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        assert SERVERS[0].stdout.readline().strip() == "ready"
    proc = Child(SERVERS[0], ["-q", *args], cwd)
    LAUNCHED.append(proc)
    return proc


def finish(proc: Child, timeout: float = 120) -> None:
    assert proc.wait(timeout) == 0, proc.log.read_text()[-2000:]


def wait_for(proc: Child, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"exit {proc.returncode} before the moment to kill it came"
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.001)


def kill(proc: Child) -> None:
    proc.kill()
    assert proc.wait(10) == -signal.SIGKILL, "it had finished before the kill"


def kill_when(proc: Child, moment: Callable[[], bool]) -> None:
    """SIGKILL ``proc`` frozen in the first state where ``moment()`` holds."""
    while True:
        wait_for(proc, moment)
        os.kill(proc.pid, signal.SIGSTOP)
        proc.wait_stopped()  # its files no longer change
        if moment():
            return kill(proc)
        os.kill(proc.pid, signal.SIGCONT)


def latest_step(run: Path) -> int:
    pointer = run / "checkpoint" / "latest.json"
    return json.loads(pointer.read_text())["step"] if pointer.is_file() else 0


def partial_checkpoints(run: Path) -> list[Path]:
    return list((run / "checkpoint").glob(".step-*.partial"))


@pytest.fixture(scope="module")
def lung(tmp_path_factory):
    """A tiny lung-ct set, and an uninterrupted training run on it, started in the background."""
    root = tmp_path_factory.mktemp("crash")
    assert main(["-q", "simulate", "lung-ct", "--out", str(root / "data"), "--count", "8", "--size", "16"]) == 0
    straight = launch(*train_args(root, "straight"), cwd=root)
    yield root, straight
    for proc in LAUNCHED:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    for server in SERVERS:  # idle, holding nothing: no need to wait for its interpreter to shut down
        server.kill()
        server.wait(10)
        server.stdin.close()
        server.stdout.close()
    SERVERS.clear()


def train_args(root: Path, out: str, *extra: str) -> list[str]:
    return ["train", "lung-ct", "--data", str(root / "data"), "--model", "gan", "--out", str(root / out),
            "--steps", str(STEPS), "--batch-size", "2", "--checkpoint-every", "1", "--log-every", "1",
            "--eval-every", "1000", "--device", "cpu", *extra]


def assert_whole(run: Path) -> None:
    """Every checkpoint under its final name loads, safely; latest.json names one; config and generator parse."""
    root = run / "checkpoint"
    for entry in (root.iterdir() if root.is_dir() else ()):
        if entry.name == "latest.json":
            continue
        if entry in leftovers(root):  # a killed save's temporary: hidden, never taken for a checkpoint
            continue
        assert entry.name.startswith("step-") and entry.is_dir(), entry
        assert sorted(p.name for p in entry.iterdir()) == ["state.pt", "weights.safetensors"]
        assert len(load_file(entry / "weights.safetensors")) > 20
        state = torch.load(entry / "state.pt", map_location="cpu", weights_only=True)
        assert state["step"] == int(entry.name.removeprefix("step-"))
    folder = latest_checkpoint(run)
    if folder is not None:
        assert folder.parent == root and not folder.name.startswith(".")
    if (run / "generator.safetensors").exists():
        assert load_file(run / "generator.safetensors")
        assert json.loads((run / "config.json").read_text())["step"] >= latest_step(run)


def tensors(run: Path) -> dict[str, torch.Tensor]:
    """Generator file, last checkpoint's generator/critic/EMA weights and optimizer state, by name."""
    found = {f"export.{k}": v for k, v in load_file(run / "generator.safetensors").items()}
    folder = latest_checkpoint(run)
    found.update(load_file(folder / "weights.safetensors"))
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    for name, optimizer in state["optimizers"].items():
        for pid, values in optimizer["state"].items():
            found.update({f"optim.{name}.{pid}.{k}": torch.as_tensor(v) for k, v in values.items()})
    return found


def test_training_killed_five_times_ends_at_the_uninterrupted_weights(lung, capsys):
    root, straight = lung
    run, rng = root / "killed", random.Random(SEED)
    seen = []

    # 1: before the first checkpoint: the folder exists, holds metrics.csv, and no checkpoint
    proc = launch(*train_args(root, "killed"), cwd=root)
    kill_when(proc, lambda: (run / "metrics.csv").is_file() and not (run / "checkpoint" / "latest.json").exists())
    assert_whole(run)
    assert latest_step(run) == 0 and any(run.iterdir())
    seen.append("before the first checkpoint")
    # a plain rerun refuses the folder but says what to do; --resume (below) starts it over
    assert main(train_args(root, "killed")) == 2
    assert "stopped before its first checkpoint: --resume starts it over" in capsys.readouterr().err

    # 2: halfway through writing a checkpoint folder (after the second one exists)
    proc = launch(*train_args(root, "killed", "--resume"), cwd=root)
    kill_when(proc, lambda: latest_step(run) >= 2 and bool(partial_checkpoints(run)))
    assert_whole(run)
    assert partial_checkpoints(run), "the kill should have left a half-written temporary"
    seen.append(f"writing checkpoint {latest_step(run) + 1}")

    # 3: right after latest.json moved on; 4, 5: a seeded random time after 1 to 3 new checkpoints
    for steps, delay in ((1, None), (rng.randint(1, 3), rng.uniform(0, 0.05)), (rng.randint(1, 3), rng.uniform(0, 0.05))):
        before = latest_step(run)
        proc = launch(*train_args(root, "killed", "--resume"), cwd=root)
        if delay is None:
            kill_when(proc, lambda: latest_step(run) >= before + steps)
        else:
            wait_for(proc, lambda: latest_step(run) >= before + steps)
            time.sleep(delay)
            kill(proc)
        assert_whole(run)
        seen.append(f"{delay or 0:.3f} s after checkpoint {before + steps} (latest now {latest_step(run)})")
    assert latest_step(run) < STEPS

    finish(launch(*train_args(root, "killed", "--resume"), cwd=root))
    finish(straight)
    a, b = tensors(root / "straight"), tensors(run)
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a) and any(k.startswith("critic.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (run / "metrics.csv").read_bytes() == (root / "straight" / "metrics.csv").read_bytes()
    assert leftovers(run) == [] and leftovers(run / "checkpoint") == []  # the killed saves' temporaries are swept
    print("kills landed:", "; ".join(seen))


def files_in(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def headers(path: Path) -> tuple[dict, bytes]:
    """A DICOM file's elements but the identity made fresh for every file written (UIDs, times, IDs), and its pixels."""
    ds = pydicom.dcmread(path)
    return {el.tag: el.value for el in ds if not el.keyword.endswith(("UID", "Date", "Time"))
            and el.keyword not in ("PatientID", "StudyID") and el.VR != "SQ"}, ds.PixelData


SAMPLES = 24  # in 3 batches of 8: 24 * (16 slices + 1 volume) + 2 files


def test_sampling_killed_while_writing_leaves_no_half_folder_and_a_rerun_completes(lung):
    root, straight = lung
    finish(straight)
    args = ["sample", str(root / "straight"), "--count", str(SAMPLES), "--format", "dicom,nifti", "--batch-size", "8"]
    out = root / "samples"
    proc = launch(*args, "--out", str(out), cwd=root)
    written = random.Random(SEED).randint(1, 300)  # of the 410 files

    def writing() -> bool:
        partial = leftovers(root, ["samples"])
        return bool(partial) and not out.exists() and sum(len(f) for _, _, f in os.walk(partial[0])) >= written

    kill_when(proc, writing)
    assert not out.exists()  # nothing under the final name; the half-written folder is hidden
    assert [p.name.startswith(".samples.") and p.name.endswith(".partial") for p in leftovers(root, ["samples"])] == [True]
    finish(launch(*args, "--out", str(out), cwd=root))  # the same command again: it completes
    assert leftovers(root, ["samples"]) == []  # and swept the killed attempt's temporary away
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the processes: the same floats
    try:
        assert main(["-q", *args, "--out", str(root / "whole")]) == 0  # never killed
    finally:
        torch.set_num_threads(threads)
    names = files_in(root / "whole")
    assert names == files_in(out) and len(names) == SAMPLES * 17 + 2
    for name in names:
        a, b = root / "whole" / name, out / name
        if name.suffix == ".dcm":  # fresh UIDs and times in every DICOM written, by design
            assert headers(a) == headers(b), name
        else:
            assert a.read_bytes() == b.read_bytes(), name


PIPELINE = """\
domain: lung-ct
simulate: {count: 8, size: 16}
train: {steps: 4, batch_size: 2}
sample:
  formats: [nifti]
  plan: [{condition: {nodule: absent}, count: 2}, {condition: {nodule: present}, count: 2}]
evaluate: false
export: false
"""


def test_pipeline_killed_before_its_first_checkpoint_reruns_to_the_end(lung):
    root, _ = lung
    (root / "tiny.yaml").write_text(PIPELINE)
    out, run = root / "pipeline", root / "pipeline" / "run"
    proc = launch("run", "tiny.yaml", "--out", str(out), "--device", "cpu", cwd=root)
    kill_when(proc, lambda: (run / "metrics.csv").is_file() and latest_step(run) == 0)
    assert list(json.loads((out / "stages.json").read_text())) == ["simulate"]
    finish(launch("run", "tiny.yaml", "--out", str(out), "--device", "cpu", cwd=root))
    assert list(json.loads((out / "stages.json").read_text())) == ["simulate", "train", "sample"]
    assert latest_step(run) == 4 and len(files_in(out / "samples")) == 4 + 2
    assert_whole(run)


def test_divergence_stops_with_one_line_and_keeps_the_last_good_checkpoint(lung, capsys):
    root, _ = lung
    run = root / "diverging"
    explode = ["--lr-generator", "1e6", "--lr-critic", "1e6"]

    def train(out: Path, *args: str) -> int:  # in this process: no kill here, and no start-up to wait for
        return main(["-q", "train", "lung-ct", "--data", str(root / "data"), "--model", "gan", "--batch-size", "2",
                     "--eval-every", "1000", "--device", "cpu", "--out", str(out), *args])

    assert train(run, "--steps", "2", "--checkpoint-every", "2") == 0
    kept = {p: p.read_bytes() for p in [*run.rglob("*.safetensors"), *run.rglob("*.pt"), *run.rglob("*.json")]}
    capsys.readouterr()

    assert train(run, "--steps", "8", "--resume", *explode) == 2
    lines = [line for line in capsys.readouterr().err.split("\n") if line.strip()]
    error = lines[-1]
    assert sum("error" in line for line in lines) == 1 and error.startswith("synthscape: error: training diverged at step ")
    assert int(re.search(r"at step (\d+):", error)[1]) in (3, 4)
    assert f"kept the last good checkpoint (step 2) in {run / 'checkpoint' / 'step-00000002'}; resume from it" in error
    assert error.endswith("with lower learning rates (now 1e+06/1e+06), e.g. --resume --lr-generator 100000 --lr-critic 100000")
    # nothing was replaced: the checkpoint, latest.json, config.json and generator.safetensors are as they were
    assert {p: p.read_bytes() for p in kept} == kept
    assert {*run.rglob("*.safetensors"), *run.rglob("*.pt")} == {p for p in kept if p.suffix != ".json"}
    for path in run.rglob("*.safetensors"):
        assert all(torch.isfinite(t).all() for t in load_file(path).values()), path

    # the advice works: resumed with lower rates, it trains on with them
    assert train(run, "--steps", "4", "--resume", "--lr-generator", "1e-4", "--lr-critic", "5e-5") == 0
    state = torch.load(latest_checkpoint(run) / "state.pt", weights_only=True)
    assert [g["lr"] for o in state["optimizers"].values() for g in o["param_groups"]] == [1e-4, 5e-5]
    assert json.loads((run / "config.json").read_text())["train"]["lr_critic"] == 5e-5

    # diverging before the first checkpoint writes no weights at all; --resume then starts over
    fresh = root / "diverging-fresh"
    assert train(fresh, "--checkpoint-every", "4", "--steps", "4", *explode) == 2
    error = capsys.readouterr().err.strip().split("\n")[-1]
    assert "training diverged at step 2" in error and "no checkpoint was written yet; start over with lower" in error
    assert not list(fresh.rglob("*.safetensors")) and not list(fresh.rglob("*.pt"))
    assert train(fresh, "--checkpoint-every", "4", "--steps", "4", "--resume") == 0 and latest_step(fresh) == 4


def test_resume_starts_over_only_a_folder_that_training_left_behind(lung, capsys, caplog):
    root, _ = lung
    run = root / "left"
    run.mkdir()
    (run / "metrics.csv").write_text("step,loss_d\n1,0.5\n")
    (run / ".config.json.abcd_123.tmp").write_text("{")
    (run / "notes.txt").write_text("mine")
    args = ["-q", "train", "lung-ct", "--data", str(root / "data"), "--model", "gan", "--out", str(run),
            "--steps", "2", "--batch-size", "2", "--device", "cpu", "--resume"]
    assert main(args) == 2  # a file of the user's: not a folder training left behind, so nothing is removed
    assert "holds no checkpoint to resume from" in capsys.readouterr().err
    assert (run / "notes.txt").read_text() == "mine" and (run / ".config.json.abcd_123.tmp").exists()
    (run / "notes.txt").unlink()
    assert main(args) == 0
    assert "stopped before its first checkpoint; starting it over" in caplog.text
    assert [row.split(",")[0] for row in (run / "metrics.csv").read_text().split()] == ["step", "2"]  # the old row is gone
    assert latest_step(run) == 2 and leftovers(run) == []


def test_only_our_own_temporaries_of_that_very_name_are_swept(tmp_path):
    ours = [tmp_path / ".out.k2_9xq0a.partial", tmp_path / ".out.abcdefgh.tmp"]
    others = [tmp_path / ".out2.abcdefgh.partial", tmp_path / ".out.abc.partial", tmp_path / "out.abcdefgh.partial",
              tmp_path / ".out.abcdefgh.old", tmp_path / ".out.ABCDEFGH.partial"]
    for folder in [ours[0], *others]:
        (folder / "sub").mkdir(parents=True)
    ours[1].write_text("half")
    (tmp_path / ".out.12345678.partial").write_text("a file, not our folder")
    (tmp_path / ".out.87654321.partial").symlink_to(tmp_path / "out.abcdefgh.partial")
    from synthscape.core.files.atomic import atomic_dir

    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done").write_text("yes")
    assert (tmp_path / "out" / "done").read_text() == "yes"
    assert not any(p.exists() for p in ours)
    assert all((p / "sub").is_dir() for p in others)
    assert (tmp_path / ".out.12345678.partial").is_file() and (tmp_path / ".out.87654321.partial").is_symlink()


def test_checkpoint_saves_sweep_killed_saves_and_never_leave_half_a_folder(tmp_path):
    from synthscape.core.training.checkpoint import save_checkpoint

    net = torch.nn.Linear(2, 2)
    parts = ({"net": net}, {"net": torch.optim.Adam(net.parameters())}, {"torch": torch.get_rng_state()})
    save_checkpoint(tmp_path, 2, *parts)
    root = tmp_path / "checkpoint"
    (root / "step-00000009").mkdir()  # renamed into place by a killed run, never named by latest.json
    (root / ".step-00000003.abcdefgh.partial").mkdir()  # a save killed halfway
    (root / ".latest.json.abcdefgh.tmp").write_text("{")
    (root / "step-00000003").mkdir()  # a complete folder from before a resume: replaced, not merged
    (root / "step-00000003" / "stale").write_text("x")
    save_checkpoint(tmp_path, 3, *parts)
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step-00000002", "step-00000003"]
    assert sorted(p.name for p in (root / "step-00000003").iterdir()) == ["state.pt", "weights.safetensors"]
    save_checkpoint(tmp_path, 4, *parts)
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step-00000003", "step-00000004"]
    assert latest_checkpoint(tmp_path) == root / "step-00000004"


def test_a_generator_file_written_atomically_gets_the_umask_mode_not_0600(tmp_path):
    from safetensors.torch import save_file

    from synthscape.core.files.atomic import atomic_path

    umask = os.umask(0)
    os.umask(umask)
    with atomic_path(tmp_path / "generator.safetensors") as tmp:
        save_file({"w": torch.zeros(2)}, tmp)  # safetensors makes the file anew, 0600
    assert os.stat(tmp_path / "generator.safetensors").st_mode & 0o777 == 0o666 & ~umask
