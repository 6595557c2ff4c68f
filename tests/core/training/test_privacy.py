"""Differentially private training (core/training/privacy.py): DP-SGD on the GAN critic or the whole VAE,
per-sample clipping, the accountant's epsilon, Poisson batches, refusals, exact resume, the report."""

import contextlib
import csv
import json
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from blobs import SCHEMA, Blobs
from conftest import tiny_network, tiny_train
from safetensors.torch import load_file
from torch import nn

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.core.networks.nets import ConditionalEncoder, ConditionalGenerator, ProjectionDiscriminator
from synthscape.core.schema.conditions import ConditionPrior
from synthscape.core.training.checkpoint import latest_checkpoint
from synthscape.core.training.gan import GAN
from synthscape.core.training.loop import train
from synthscape.core.training.privacy import (
    ALPHAS,
    EPSILON_TOLERANCE,
    PoissonBatches,
    PrivacyPlan,
    check_private,
    default_delta,
    private_settings,
)
from synthscape.core.training.vae import VAE

CPU = torch.device("cpu")
EPSILON = 4.0


def dp_train(run, model="gan", steps=6, **kwargs):
    config = tiny_train(steps=steps, checkpoint_every=3, eval_every=steps, log_every=3, dp_epsilon=EPSILON)
    return train(Blobs(2, 16, 64), run, model=model, schema=SCHEMA, network=tiny_network(2), config=config,
                 progress=False, **kwargs)


class Messages(logging.Handler):
    """Keeps each log message."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def dp_run(tmp_path_factory):
    """``dp_run(model)``: (run folder, config.json at each checkpoint, log messages) of ``dp_train(run, model)``,
    trained once for the module on first use; tests only read the folder."""
    root, made = tmp_path_factory.mktemp("dp"), {}

    def get(model: str):
        if model not in made:
            run, seen, handler = root / model, [], Messages()
            logger = logging.getLogger("synthscape")
            level = logger.level
            logger.setLevel(logging.INFO)
            logger.addHandler(handler)
            try:
                dp_train(run, model, on_checkpoint=lambda step, folder: seen.append(json.loads((run / "config.json").read_text())))
            finally:
                logger.removeHandler(handler)
                logger.setLevel(level)
            made[model] = run, seen, handler.messages
        return made[model]

    return get


@pytest.mark.parametrize("model, private", [("gan", ["critic"]), ("vae", ["encoder", "decoder"])])
def test_dp_training_spends_at_most_the_target_epsilon_and_says_so(dp_run, model, private):
    run, seen, messages = dp_run(model)
    spent = [c["privacy"]["epsilon_spent"] for c in seen]
    assert [c["privacy"]["steps_taken"] for c in seen] == [3, 6]
    assert 0 < spent[0] < spent[1] <= EPSILON  # grows with the steps, never past the target
    assert spent[1] >= EPSILON - EPSILON_TOLERANCE  # the noise was sized to spend it at the planned step
    privacy = seen[-1]["privacy"]
    assert privacy["private_modules"] == private and privacy["sampling"] == "poisson"
    assert privacy["delta"] == default_delta(64) == 1e-5 and privacy["sample_rate"] == 8 / 64
    assert privacy["noise_multiplier"] > 0.5 and privacy["max_grad_norm"] == 1.0 and privacy["steps_planned"] == 6
    from opacus.accountants import RDPAccountant  # the number is Opacus' own for the recorded plan

    accountant = RDPAccountant()
    accountant.history = [(privacy["noise_multiplier"], privacy["sample_rate"], 6)]
    assert accountant.get_epsilon(delta=privacy["delta"], alphas=ALPHAS) == pytest.approx(spent[1], rel=1e-9)
    assert any(f"dp: epsilon spent {spent[1]:.4g} of 4 (delta 1e-05) after 6 of 6 steps" in m for m in messages)
    weights = load_file(run / "generator.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    if model == "gan":  # spectral norm and R1 are off, and config.json says so
        assert seen[-1]["network"]["spectral_norm"] is False and seen[-1]["train"]["r1_gamma"] == 0
        assert not any(k.startswith("critic.") and "parametrizations" in k
                       for k in load_file(latest_checkpoint(run) / "weights.safetensors"))
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        assert rows and all(r["r1"] == "" for r in rows)


def clipped_mean(losses, params, clip, expected_batch):
    """DP-SGD by hand: each sample's gradient over all ``params`` clipped to ``clip``, summed, / expected batch."""
    total, norms = 0, []
    for loss in losses:
        flat = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, retain_graph=True)])
        norms.append(flat.norm().item())
        total = total + flat * min(1.0, clip / (flat.norm().item() + 1e-6))
    return total / expected_batch, norms


def zero_noise_plan(clip, expected_batch=8):
    return PrivacyPlan(epsilon=1.0, delta=1e-5, max_grad_norm=clip, noise_multiplier=0.0, sample_rate=0.5,
                       expected_batch_size=expected_batch, steps=1)


def test_critic_update_is_the_mean_of_clipped_real_fake_pair_gradients():
    torch.manual_seed(0)
    data = Blobs(2, 16, 6)
    network, config = private_settings("gan", tiny_network(2), tiny_train(dp_epsilon=1.0))
    gan = GAN(network, config, SCHEMA.cardinalities, CPU)
    by_hand = ProjectionDiscriminator(network, SCHEMA.cardinalities)
    by_hand.load_state_dict(gan.critic.state_dict())
    clip = 1e-3
    gan.make_private(zero_noise_plan(clip), ConditionPrior.from_indices(SCHEMA, data.conditions))
    images, condition = torch.from_numpy(data.images), torch.from_numpy(data.conditions).long()
    noise = torch.Generator().manual_seed(3)
    before = noise.get_state()
    gan.critic_step(images, condition, 1, noise, contextlib.nullcontext)
    noise.set_state(before)
    with torch.no_grad():
        fake = gan.generator(gan.latents(6, noise), condition)  # the generator has not moved yet
    losses = [F.relu(1 - by_hand(images[i:i + 1], condition[i:i + 1])).sum()
              + F.relu(1 + by_hand(fake[i:i + 1], condition[i:i + 1])).sum() for i in range(6)]
    expected, norms = clipped_mean(losses, list(by_hand.parameters()), clip, expected_batch=8)
    update = torch.cat([p.grad.flatten() for p in gan.critic.parameters()])
    assert min(norms) > 10 * clip  # the clip was active for every pair
    assert torch.allclose(update, expected, rtol=1e-4, atol=1e-9)
    assert update.norm() <= 6 * clip / 8 + 1e-9  # the bound DP-SGD's noise is sized for


def test_vae_clips_each_sample_over_encoder_and_decoder_together():
    torch.manual_seed(0)
    data = Blobs(2, 16, 5)
    network, config = tiny_network(2), tiny_train(dp_epsilon=1.0)
    vae = VAE(network, config, SCHEMA.cardinalities, CPU)
    encoder, decoder = ConditionalEncoder(network, SCHEMA.cardinalities), ConditionalGenerator(network, SCHEMA.cardinalities)
    encoder.load_state_dict(vae.encoder.state_dict())
    decoder.load_state_dict(vae.decoder.state_dict())
    clip = 1e-2
    vae.make_private(zero_noise_plan(clip), ConditionPrior.from_indices(SCHEMA, data.conditions))
    images, condition = torch.from_numpy(data.images), torch.from_numpy(data.conditions).long()
    noise = torch.Generator().manual_seed(5)
    before = noise.get_state()
    vae.step(images, condition, 7, noise)
    noise.set_state(before)
    mu, logvar = encoder(images, condition)
    z = mu + torch.randn(mu.shape, generator=noise) * (0.5 * logvar).exp()
    rec = (decoder(z, condition) - images).square().flatten(1).sum(1)
    kl = (-0.5 * (1 + logvar - mu.square() - logvar.exp())).sum(1)
    losses = rec + vae.kl_weight(7) * kl  # sample i's loss reaches sample i's rows only (GroupNorm, no BatchNorm)
    params = [*encoder.parameters(), *decoder.parameters()]
    expected, norms = clipped_mean(list(losses), params, clip, expected_batch=8)
    update = torch.cat([p.grad.flatten() for p in [*vae.encoder.parameters(), *vae.decoder.parameters()]])
    assert min(norms) > 10 * clip
    assert torch.allclose(update, expected, rtol=1e-4, atol=1e-9)


def empty_batch_step(noise_seed: int) -> tuple[GAN, list[torch.Tensor], dict]:
    torch.manual_seed(0)
    network, config = private_settings("gan", tiny_network(2), tiny_train(dp_epsilon=1.0))
    gan = GAN(network, config, SCHEMA.cardinalities, CPU)
    plan = PrivacyPlan(1.0, 1e-5, 1.0, noise_multiplier=2.0, sample_rate=0.5, expected_batch_size=8, steps=10)
    gan.make_private(plan, ConditionPrior.from_indices(SCHEMA, Blobs(2, 16, 8).conditions))
    before = [p.detach().clone() for p in gan.critic.parameters()]
    torch.manual_seed(99)  # the DP noise must not come from the global RNG
    metrics = gan.step(torch.zeros(0, 1, 16, 16), torch.zeros(0, 2, dtype=torch.int64), 1,
                       torch.Generator().manual_seed(noise_seed))
    return gan, before, metrics


def test_an_empty_poisson_batch_is_still_a_noised_counted_step_with_seeded_noise():
    gan, before, metrics = empty_batch_step(noise_seed=0)
    assert "d_real" not in metrics and torch.isfinite(metrics["loss_g"])
    assert all(not torch.equal(a, p) for a, p in zip(before, gan.critic.parameters()))  # noise moved the critic
    assert gan.dp.steps == 1 and gan.dp.epsilon() > 0
    same, other = empty_batch_step(noise_seed=0)[0], empty_batch_step(noise_seed=1)[0]
    assert all(torch.equal(a, b) for a, b in zip(gan.critic.parameters(), same.critic.parameters()))
    assert not torch.equal(next(gan.critic.parameters()), next(other.critic.parameters()))


def test_poisson_batches_are_seeded_resumable_and_of_the_expected_size():
    whole, resumed = PoissonBatches(64, 0.125, seed=3), PoissonBatches(64, 0.125, seed=3, start=5)
    first = [b for _, b in zip(range(400), iter(whole))]
    assert [b for _, b in zip(range(3), iter(resumed))] == first[5:8]
    assert first[:3] != [b for _, b in zip(range(3), iter(PoissonBatches(64, 0.125, seed=4)))]
    sizes = np.array([len(b) for b in first])
    assert abs(sizes.mean() - 8) < 0.6 and sizes.std() > 1.5  # Binomial(64, 1/8): mean 8, spread 2.6


def test_validator_refuses_batchnorm_and_spectral_norm_in_one_line():
    with pytest.raises(SynthscapeError, match="Opacus refuses the critic: .*BatchNorm") as caught:
        check_private(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)), "critic")
    assert "\n" not in str(caught.value)
    with pytest.raises(SynthscapeError, match="spectral norm"):
        check_private(ProjectionDiscriminator(tiny_network(2, spectral_norm=True), SCHEMA.cardinalities), "critic")
    check_private(ConditionalEncoder(tiny_network(2), SCHEMA.cardinalities), "encoder")  # GroupNorm passes
    gan = GAN(tiny_network(2, spectral_norm=False), tiny_train(), SCHEMA.cardinalities, CPU)  # r1_gamma 0.1
    with pytest.raises(SynthscapeError, match="needs r1_gamma 0"):
        gan.make_private(zero_noise_plan(1.0), ConditionPrior.uniform(SCHEMA))


@pytest.mark.parametrize("extra, message", [
    (["--dp-epsilon", "0"], "dp_epsilon (--dp-epsilon) must be a positive number, got 0.0"),
    (["--dp-epsilon", "-2"], "must be a positive number, got -2.0"),
    (["--dp-epsilon", "1", "--dp-delta", "1"], "dp_delta (--dp-delta) must lie strictly between 0 and 1, got 1.0"),
    (["--dp-epsilon", "1", "--dp-delta", "0"], "must lie strictly between 0 and 1, got 0.0"),
    (["--dp-delta", "1e-5"], "without dp_epsilon"),
    (["--dp-epsilon", "1", "--dp-max-grad-norm", "0"], "dp_max_grad_norm (--dp-max-grad-norm) must be a positive"),
    (["--dp-epsilon", "1", "--compile"], "does not run compiled"),
    (["--dp-epsilon", "1", "--batch-size", "9"], "--batch-size 9 is more than the 8 training items"),
    (["--dp-epsilon", "1e-3"], "--dp-epsilon 0.001 cannot be met: at delta 1e-05 the rdp accountant gives at least"),
    (["--dp-epsilon", "1", "torchrun"], "not under torchrun (WORLD_SIZE=2)"),
])
def test_bad_dp_options_give_one_line_and_write_nothing(blobs_domain, tmp_path, capsys, monkeypatch, extra, message):
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["-q", "simulate", "blobs", "--out", str(data), "--count", "8"]) == 0
    if "torchrun" in extra:
        extra = extra[:-1]
        monkeypatch.setenv("RANK", "0"), monkeypatch.setenv("LOCAL_RANK", "0"), monkeypatch.setenv("WORLD_SIZE", "2")
    capsys.readouterr()
    argv = ["train", "blobs", "--data", str(data), "--model", "gan", "--out", str(run), "--steps", "4",
            "--batch-size", "4", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synthscape: error: ") and message in err and "\n" not in err
    assert not run.exists()


def checkpoint_state(run):
    folder = latest_checkpoint(run)
    state = torch.load(folder / "state.pt", weights_only=True)  # the accountant's state loads without pickle
    return load_file(folder / "weights.safetensors"), state


class Stop(Exception):
    pass


def test_resume_under_dp_is_bitwise_the_uninterrupted_run(dp_run, tmp_path):
    straight, resumed = dp_run("gan")[0], tmp_path / "resumed"  # dp_train(straight), shared with the test above

    def crash(step, folder):
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        dp_train(resumed, on_checkpoint=crash)
    torch.manual_seed(1234)  # the process's RNG is not what resume relies on
    dp_train(resumed, resume=True)
    (a, state_a), (b, state_b) = checkpoint_state(straight), checkpoint_state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert state_a["rng"]["privacy"] == state_b["rng"]["privacy"]
    assert state_b["rng"]["privacy"]["history"][0][2] == 6  # one accountant entry: 6 steps at one (sigma, q)
    for name, opt in state_a["optimizers"].items():
        for pid, values in opt["state"].items():
            for key, value in values.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b["optimizers"][name]["state"][pid][key]))
    config_a, config_b = (json.loads((r / "config.json").read_text()) for r in (straight, resumed))
    assert config_a["privacy"] == config_b["privacy"]
    with pytest.raises(SynthscapeError, match="planned for 6 steps at epsilon 4; 9 steps would spend more"):
        dp_train(resumed, steps=9, resume=True)


def test_evaluation_report_shows_the_epsilon_spent(blobs_domain, tmp_path, caplog):
    data, run, report = tmp_path / "data", tmp_path / "run", tmp_path / "report"
    caplog.set_level("INFO", logger="synthscape")
    assert main(["-q", "simulate", "blobs", "--out", str(data), "--count", "48"]) == 0
    assert main(["train", "blobs", "--data", str(data), "--model", "gan", "--out", str(run), "--steps", "3",
                 "--batch-size", "8", "--checkpoint-every", "3", "--eval-every", "3", "--dp-epsilon", "8",
                 "--dp-delta", "1e-4", "--dp-max-grad-norm", "0.5"]) == 0
    assert any(r.message.startswith("dp: epsilon spent") for r in caplog.records)
    privacy = json.loads((run / "config.json").read_text())["privacy"]
    assert privacy["delta"] == 1e-4 and privacy["max_grad_norm"] == 0.5 and privacy["steps_taken"] == 3
    assert main(["-q", "evaluate", str(run), "--data", str(data), "--out", str(report), "--classifier-steps", "2",
                 "--utility-steps", "2"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["privacy"]["epsilon_spent"] == privacy["epsilon_spent"] <= 8
    row = next(r for r in metrics["rows"] if r["group"] == "privacy")
    assert row["value"] == privacy["epsilon_spent"] and row["reference"] == 8
    html = (report / "report.html").read_text()
    assert "epsilon spent (DP-SGD, delta 0.0001)" in html and f"{privacy['epsilon_spent']:.4g}" in html
