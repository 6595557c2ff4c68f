"""The training loop: artifacts, checkpoints, exact resume after a kill, the NaN guard."""

import csv
import json
import logging
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from blobs import SCHEMA, Blobs
from conftest import TESTS, tiny_network, tiny_train
from safetensors.torch import load_file

from synthscape.core.errors import SynthscapeError, TrainingDiverged
from synthscape.core.networks.artifacts import load_run
from synthscape.core.training.checkpoint import latest_checkpoint
from synthscape.core.training.loop import train


def run_training(run, model="gan", spatial_dims=2, steps=20, **kwargs):
    return train(Blobs(spatial_dims, 16, 64), run, model=model, schema=SCHEMA, network=tiny_network(spatial_dims),
                 config=tiny_train(steps=steps), progress=False, **kwargs)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """``straight(model)``: an uninterrupted ``run_training`` run of that model, trained once for the module
    on first use; tests only read it (or copy it)."""
    root, made = tmp_path_factory.mktemp("straight"), {}

    def get(model: str) -> Path:
        if model not in made:
            run_training(root / model, model=model)
            made[model] = root / model
        return made[model]

    return get


def checkpoint_tensors(run) -> dict[str, torch.Tensor]:
    folder = latest_checkpoint(Path(run))
    tensors = load_file(folder / "weights.safetensors")
    state = torch.load(folder / "state.pt", weights_only=True)
    for name, opt in state["optimizers"].items():
        for pid, values in opt["state"].items():
            for key, value in values.items():
                tensors[f"optim.{name}.{pid}.{key}"] = torch.as_tensor(value)
    return tensors


def test_run_directory_is_as_designed(straight):
    run = straight("gan")
    assert {p.name for p in run.iterdir()} >= {"config.json", "generator.safetensors", "checkpoint", "metrics.csv", "samples"}
    config = json.loads((run / "config.json").read_text())
    assert config["schema"] == SCHEMA.to_dict() and config["model"] == "gan" and config["step"] == 20
    assert sum(count for _, count in config["condition_counts"]) == 64
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert all(np.isfinite(float(r["loss_d"])) for r in rows)
    assert [r["r1"] != "" for r in rows] == [False, False, False, True]  # lazy R1: steps 4, 8, .., logged at 20
    grids = sorted(p.relative_to(run / "samples").as_posix() for p in (run / "samples").rglob("*.png"))
    assert grids == sorted(f"step-000000{s}/{a}={v}.png" for s in (10, 20) for a, vs in SCHEMA.attributes for v in vs)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == ["latest.json", "step-00000010", "step-00000020"]


def test_3d_grids_show_three_planes(tmp_path):
    import cv2

    run = tmp_path / "run3d"
    run_training(run, spatial_dims=3, steps=2)  # the grid's layout, not its content: a grid is drawn at the last step
    picture = cv2.imread(str(run / "samples" / "step-00000002" / "position=a.png"), cv2.IMREAD_UNCHANGED)
    # 4 samples, 2 per row, each 3 planes of 16 voxels enlarged 4x to 64 pixels, 2-pixel gaps
    assert picture.shape == (2 * 64 + 2, 2 * 3 * 64 + 2)


def test_three_planes_follow_the_radiological_convention():
    from synthscape.core.files.grids import three_planes

    volume = np.full((1, 9, 9, 9), -1.0, dtype=np.float32)  # odd: one middle plane per axis
    volume[0, 8, 8, 4] = 1.0  # the patient's right, anterior corner of the middle axial plane
    volume[0, 8, 4, 8] = 1.0  # right, superior corner of the middle coronal plane
    volume[0, 4, 8, 8] = 1.0  # anterior, superior corner of the middle sagittal plane
    axial, coronal, sagittal = np.split(three_planes(volume)[0], 3, axis=1)
    assert axial[0, 0] == 1.0  # anterior up, patient's right on the screen's left
    assert coronal[0, 0] == 1.0  # superior up, right on the left
    assert sagittal[0, 8] == 1.0  # superior up, anterior on the right
    assert (axial == 1).sum() == (coronal == 1).sum() == (sagittal == 1).sum() == 1


def test_artifact_round_trips_through_safetensors(straight):
    run = straight("vae")
    ema = {k[len("decoder."):]: v for k, v in load_file(latest_checkpoint(run) / "weights.safetensors").items()
           if k.startswith("decoder.")}
    generator = load_run(run)
    for key, value in generator.network.state_dict().items():
        assert torch.equal(value, ema[key]), key


# A fresh interpreter forks one process per model (argv: this folder's paths, then {model: run folder} as
# JSON), each training until it SIGKILLs itself at step 10, and prints {model: exit status} as JSON.
KILLER = textwrap.dedent("""
    import json, os, signal, sys, traceback
    sys.path[:0] = sys.argv[1:3]  # blobs and conftest; this file
    from test_training import run_training
    def die(step, folder):
        if step == 10:
            os.kill(os.getpid(), signal.SIGKILL)
    statuses = {}
    for model, run in json.loads(sys.argv[3]).items():
        pid = os.fork()  # nothing has trained in this process: a fresh start for each, one at a time
        if pid == 0:
            try:
                run_training(run, model=model, on_checkpoint=die)
            except BaseException:
                traceback.print_exc()
            os._exit(1)  # not killed: the test fails
        statuses[model] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    print(json.dumps(statuses))
""")


@pytest.fixture(scope="module")
def killed_at_step_10(tmp_path_factory):
    """{model: (run folder, exit status)}: ``run_training`` runs in processes of their own, killed at step 10
    (SIGKILL: no cleanup), both forked from one fresh interpreter that pays the import once."""
    root = tmp_path_factory.mktemp("killed")
    runs = {model: str(root / model) for model in ("gan", "vae")}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(TESTS), str(Path(__file__).parent), json.dumps(runs)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    statuses = json.loads(proc.stdout.splitlines()[-1])
    return {model: (Path(run), statuses[model]) for model, run in runs.items()}


@pytest.mark.parametrize("model", ["gan", "vae"])
def test_resume_after_kill_gives_the_same_weights(straight, killed_at_step_10, model):
    straight, (resumed, status) = straight(model), killed_at_step_10[model]
    assert status == -signal.SIGKILL
    assert json.loads((resumed / "checkpoint" / "latest.json").read_text())["step"] == 10
    run_training(resumed, model=model, resume=True)
    a, b = checkpoint_tensors(straight), checkpoint_tensors(resumed)
    assert a.keys() == b.keys() and len(a) > 50
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = list(csv.DictReader((resumed / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]


def test_resume_refuses_a_run_without_checkpoint_and_new_run_refuses_existing(tmp_path):
    with pytest.raises(SynthscapeError, match="holds no checkpoint"):
        run_training(tmp_path / "nothing", resume=True)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(SynthscapeError, match="already exists and is not empty; pass --resume"):
        run_training(existing)
    assert (existing / "notes.txt").read_text() == "mine"


class PoisonedBlobs(Blobs):
    """Blobs whose every item turns NaN once ``poisoned`` is set: as if the data went bad mid-run."""

    poisoned = False

    def __getitem__(self, index):
        image, condition = super().__getitem__(index)
        return (image * float("nan") if self.poisoned else image), condition


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    data = PoisonedBlobs(2, 16, 64)

    def poison(step, folder):
        data.poisoned = True

    with pytest.raises(TrainingDiverged) as info:
        train(data, run, model="gan", schema=SCHEMA, network=tiny_network(2), config=tiny_train(steps=20),
              progress=False, on_checkpoint=poison)
    message = str(info.value)
    assert "\n" not in message and "step 11" in message and "last good checkpoint (step 10)" in message
    assert json.loads((run / "checkpoint" / "latest.json").read_text())["step"] == 10
    assert all(torch.isfinite(t).all() for t in checkpoint_tensors(run).values())
    assert json.loads((run / "config.json").read_text())["step"] == 10
    assert np.isfinite(load_run(run).sample(2).images).all()


def test_images_outside_minus_one_one_are_refused(tmp_path):
    data = Blobs(2, 16, 16)
    data.images = data.images * 1000
    with pytest.raises(SynthscapeError, match=r"must lie in \[-1, 1\]"):
        train(data, tmp_path / "run", model="vae", schema=SCHEMA, network=tiny_network(2), config=tiny_train(), progress=False)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_no_pickle_is_ever_executed(straight, tmp_path, monkeypatch):
    """A checkpoint state.pt that carries code is refused by weights_only loading."""
    monkeypatch.chdir(tmp_path)
    run = Path(shutil.copytree(straight("gan"), tmp_path / "run"))  # trained to step 20
    state = latest_checkpoint(run) / "state.pt"
    with state.open("wb") as handle:
        pickle.dump({"step": Exploit()}, handle, protocol=2)
    with pytest.raises(SynthscapeError, match="could not be loaded safely"):
        run_training(run, steps=30, resume=True)
    assert not (tmp_path / "pwned").exists()


def test_cuda_request_without_cuda_is_refused():
    from synthscape.core.training.devices import select_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SynthscapeError, match="--device cuda was asked for, but torch sees no CUDA device"):
        select_device("cuda")
    assert select_device("auto").type == "cpu"


def test_mode_seeking_loss_falls_as_samples_of_a_condition_move_apart():
    from synthscape.core.training.gan import mode_seeking_loss

    z = torch.randn(8, 4)
    same = torch.zeros(8, 1, 4, 4)
    apart = torch.cat([torch.zeros(4, 1, 4, 4), torch.ones(4, 1, 4, 4)])
    assert mode_seeking_loss(same, z, 4) > 1e4  # collapsed: at its ceiling, 1 / eps
    assert mode_seeking_loss(apart, z, 4) < mode_seeking_loss(0.1 * apart, z, 4) < 1e4


def test_the_generator_loss_adds_the_mode_seeking_term_on_pairs_of_one_condition(tmp_path):
    """MSGAN: with batch 5, samples 0-1 and 2-3 are pairs that share a condition (4 keeps its own),
    and loss_g is the hinge term plus ``mode_seeking`` times 1 / (mean image gap / latent gap),
    computed here by hand from the same latents."""
    import contextlib
    import copy

    from synthscape.core.training.gan import GAN

    torch.manual_seed(0)
    gan = GAN(tiny_network(2), tiny_train(mode_seeking=0.5, batch_size=5), SCHEMA.cardinalities, torch.device("cpu"))
    condition = torch.from_numpy(Blobs(2, 16, 5, seed=3).conditions).long()
    generator, critic = copy.deepcopy(gan.generator), copy.deepcopy(gan.critic)
    noise = torch.Generator().manual_seed(1)
    state = noise.get_state()
    metrics = gan.generator_step(condition, 1, noise, contextlib.nullcontext)
    noise.set_state(state)
    z = gan.latents(5, noise)
    paired = condition[[0, 1, 0, 1, 4]]
    with torch.no_grad():
        fake = generator(z, paired)
        hinge = -critic(fake, paired).mean()
    image_gap = (fake[:2] - fake[2:4]).abs().mean(dim=(1, 2, 3))
    latent_gap = (z[:2] - z[2:4]).abs().mean(dim=1)
    term = 1.0 / float((image_gap / latent_gap).mean() + 1e-5)
    assert float(metrics["loss_g"]) == pytest.approx(float(hinge) + 0.5 * term, rel=1e-5)
    assert 0.5 * term > 1e-3 * abs(float(hinge))  # large enough that leaving it out would fail the line above

    run = tmp_path / "run"
    train(Blobs(2, 16, 32), run, model="gan", schema=SCHEMA, network=tiny_network(2),
          config=tiny_train(steps=3, batch_size=5, mode_seeking=0.5, log_every=1), progress=False)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 3 and all(math.isfinite(float(r["loss_g"])) for r in rows)


def test_compiled_training_keeps_the_artifact_and_the_r1_step(tmp_path):
    """TrainConfig.compile: the R1 step (a double backward, which compiled graphs lack) runs, the
    saved weights keep their names, and the compiled networks compute what the eager ones do
    (the first step's losses; later weights drift apart as Adam amplifies rounding)."""
    config = tiny_train(steps=4, r1_every=2, log_every=1, eval_every=4, checkpoint_every=4)
    data = Blobs(2, 16, 32)
    runs = {}
    for compiled in (False, True):
        config.compile = compiled
        runs[compiled] = tmp_path / f"compiled-{compiled}"
        train(data, runs[compiled], model="gan", schema=SCHEMA, network=tiny_network(2), config=config, progress=False)
    eager, compiled = (load_file(runs[c] / "generator.safetensors") for c in (False, True))
    assert eager.keys() == compiled.keys()
    rows = {c: list(csv.DictReader((runs[c] / "metrics.csv").open())) for c in (False, True)}
    assert [r["r1"] != "" for r in rows[True]] == [False, True, False, True]
    for name in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert float(rows[True][0][name]) == pytest.approx(float(rows[False][0][name]), rel=1e-4, abs=1e-5)
    assert float(rows[True][1]["r1"]) == pytest.approx(float(rows[False][1]["r1"]), rel=0.05)
    assert load_run(runs[True]).sample(2, seed=0).images.shape == (2, 1, 16, 16)


def test_classifier_loss_gives_the_critic_heads_and_the_generator_their_cross_entropy(tmp_path):
    """AC-GAN: the critic's heads read each attribute; the generator's loss is the hinge term plus
    ``classifier_loss`` times the heads' cross-entropy on its own samples."""
    import contextlib
    import copy

    from torch.nn import functional as F

    from synthscape.core.training.gan import GAN

    cpu = torch.device("cpu")
    assert GAN(tiny_network(2), tiny_train(), SCHEMA.cardinalities, cpu).critic.heads is None
    torch.manual_seed(0)
    gan = GAN(tiny_network(2), tiny_train(classifier_loss=0.5), SCHEMA.cardinalities, cpu)
    data = Blobs(2, 16, 8)
    images, condition = torch.from_numpy(data.images), torch.from_numpy(data.conditions).long()
    gan.critic.eval()  # spectral norm's power iteration moves on every training-mode call
    score, logits = gan.critic(images, condition, logits=True)
    assert [tuple(l.shape) for l in logits] == [(8, n) for n in SCHEMA.cardinalities]
    assert torch.equal(score, gan.critic(images, condition))
    expected = sum(F.cross_entropy(l, condition[:, a], reduction="none") for a, l in enumerate(logits))
    assert torch.allclose(gan.scored(images, condition)[1], expected)
    gan.critic.train()

    generator, critic = copy.deepcopy(gan.generator), copy.deepcopy(gan.critic)
    noise = torch.Generator().manual_seed(1)
    state = noise.get_state()
    metrics = gan.generator_step(condition, 1, noise, contextlib.nullcontext)
    noise.set_state(state)
    with torch.no_grad():
        score, logits = critic(generator(gan.latents(8, noise), condition), condition, logits=True)
    ce = sum(F.cross_entropy(l, condition[:, a]) for a, l in enumerate(logits))
    assert float(metrics["cls_fake"]) == pytest.approx(float(ce), rel=1e-5)
    assert float(metrics["loss_g"]) == pytest.approx(float(-score.mean() + 0.5 * ce), rel=1e-5)

    run = tmp_path / "run"
    train(data, run, model="gan", schema=SCHEMA, network=tiny_network(2), config=tiny_train(steps=4, classifier_loss=0.5),
          progress=False)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert rows and all(math.isfinite(float(r["cls_real"])) and math.isfinite(float(r["cls_fake"])) for r in rows)


@pytest.mark.parametrize("name", ["mode_seeking", "classifier_loss", "reconstruction"])
def test_loss_weights_below_zero_are_refused(name):
    from synthscape.core.schema.config import TrainConfig

    with pytest.raises(SynthscapeError, match=f"{name} must be a weight of 0 or more, got -0.5"):
        TrainConfig(**{name: -0.5})
    assert getattr(TrainConfig(**{name: 0.5}), name) == 0.5


def test_training_off_a_terminal_logs_a_line_a_quarter_with_the_losses(tmp_path, caplog):
    caplog.set_level(logging.INFO, "synthscape")
    train(Blobs(2, 16, 32), tmp_path / "run", model="gan", schema=SCHEMA, network=tiny_network(2),
          config=tiny_train(steps=8, log_every=2, eval_every=8, checkpoint_every=8))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train gan:")]
    assert [line.split(" step")[0] for line in lines] == [f"train gan: {n}/8" for n in (2, 4, 6, 8)]
    assert all(", loss_d " in line and ", loss_g " in line for line in lines)
