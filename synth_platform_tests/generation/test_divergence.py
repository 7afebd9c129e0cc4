"""Diverging fits and samplers, reproduced for real: tiny synthcity fits with absurd learning rates on a table of
wide-range datetimes (seconds since 1970, ~1e9), caught where they happen and recovered, or turned into one
`GenerationError` whose `diagnosis` says what diverged and what to change."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from synthcity.plugins.core.dataloader import GenericDataLoader

from synth_platform.generation import generators
from synth_platform.generation.generators import FittedGenerator, GenerationError, fit_generator, sample
from synth_platform.profiling.profile import decode_from_generation, encode_for_generation, profile_dataframe

ROWS = 200
# 10 epochs of a few steps, 100 diffusion timesteps: a fit takes well under a second.
DDPM = {"n_iter": 10, "batch_size": 64, "num_timesteps": 100, "log_interval": 1}


@pytest.fixture(scope="module")
def dated():
    """Four datetime columns spread over 19 years (1e9 .. 1.6e9 s), a heavy-tailed amount, a category."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        **{f"d{i}": pd.to_datetime(1.0e9 + rng.uniform(0, 6e8, ROWS), unit="s").round("s") for i in range(4)},
        "amount": rng.lognormal(8, 2, ROWS),
        "kind": rng.choice(["a", "b", "c"], ROWS),
    })
    profile = profile_dataframe(frame)
    return profile, encode_for_generation(frame, profile)


def _finite(frame: pd.DataFrame) -> bool:
    return bool(np.isfinite(frame.select_dtypes("number").to_numpy()).all()) and not frame.isna().any().any()


def test_an_infinite_ddpm_loss_is_caught_at_its_step_and_training_recovers(dated, tmp_path):
    """lr = 100: the first update blows the weights up and the second step's loss is infinite. Unguarded (before
    this fix) every weight is NaN after a few steps and sampling fails with "found NaNs in sample"
    (test_a_diverged_model_cannot_be_sampled_and_says_why, the held-out failure). Guarded: the weights go back to
    the initial ones, the learning rate is halved, the fit goes on and finite rows come out."""
    profile, encoded = dated
    lines: list[str] = []
    losses: list[float | None] = []
    fitted = fit_generator(encoded, "ddpm", {**DDPM, "lr": 100.0}, seed=0, workspace=tmp_path, log=lines.append,
                           on_epoch_end=lambda progress: losses.append(progress.loss))
    first = fitted.recoveries[0]
    assert first["stage"] == "training" and first["action"] == "halved_lr"
    assert first["epoch"] == 1 and first["step"] == 2  # caught at the step it happened, not at the end of the fit
    assert first["restored"] == "the initial weights" and (first["lr_before"], first["lr_after"]) == (100.0, 50.0)
    assert first["loss"] in ("inf", "nan")
    assert any("halved the learning rate 100 → 50" in line for line in lines)
    assert len(losses) == DDPM["n_iter"] and all(np.isfinite(loss) for loss in losses)  # what a tuner reads
    assert all(torch.isfinite(p).all() for p in fitted.model.model.diffusion.parameters())
    rows = sample(fitted, 300, seed=0, sampling_steps=20)
    assert len(rows) == 300 and _finite(rows)
    decoded = decode_from_generation(rows, profile)
    assert decoded["d0"].notna().all() and decoded["amount"].between(profile.column("amount").minimum,
                                                                     profile.column("amount").maximum).all()


def test_ddpm_stops_early_with_the_last_good_weights_when_halving_is_used_up(dated, tmp_path, monkeypatch):
    """One step per epoch (a batch holds every row): epoch 1 ends with finite weights, epoch 2's loss is infinite.
    With no halving allowed the fit stops at the end of epoch 2 with the weights it had after epoch 1."""
    _, encoded = dated
    after_epoch: dict[int, list[torch.Tensor]] = {}
    guard_epoch_end = generators.DivergenceGuard.epoch_end

    def looking(self, tabddpm, epoch):  # the guard's own epoch end, and a copy of the weights it leaves
        stop = guard_epoch_end(self, tabddpm, epoch)
        after_epoch[epoch] = [p.detach().clone() for p in tabddpm.diffusion.parameters()]
        return stop

    monkeypatch.setattr(generators.DivergenceGuard, "epoch_end", looking)
    seen = []
    fitted = fit_generator(encoded, "ddpm", {**DDPM, "lr": 100.0, "batch_size": ROWS}, seed=0, workspace=tmp_path,
                           on_epoch_end=seen.append, divergence_retries=0)
    assert [progress.epoch for progress in seen] == [1, 2]  # 10 epochs asked for; stopped at the end of the second
    assert [(r["action"], r["epoch"], r["restored"]) for r in fitted.recoveries] == [
        ("stopped_early", 2, "the weights after epoch 1")]
    weights = [p.detach() for p in fitted.model.model.diffusion.parameters()]
    assert all(torch.equal(now, then) for now, then in zip(weights, after_epoch[1]))
    assert all(np.isfinite(p.loss) and p.loss > 0 for p in seen)  # a stand-in loss, never NaN or a fake 0
    assert _finite(sample(fitted, 100, seed=1, sampling_steps=20))


def test_ddpm_that_keeps_diverging_raises_one_clear_error_with_a_diagnosis(dated, tmp_path):
    _, encoded = dated
    lines: list[str] = []
    with pytest.raises(GenerationError) as caught:
        fit_generator(encoded, "ddpm", {**DDPM, "lr": 1e6}, seed=0, workspace=tmp_path, log=lines.append)
    message, diagnosis = str(caught.value), caught.value.diagnosis
    assert message.startswith("ddpm diverged while training: training loss became")
    assert "Lower the learning rate (lr) to 0.002 or below" in message and "another plugin (tvae or ctgan)" in message
    assert "Traceback" not in message and "RuntimeError" not in message
    assert diagnosis["stage"] == "training" and diagnosis["plugin"] == "ddpm" and diagnosis["reason"] == "nan_loss"
    assert [r["lr_after"] for r in diagnosis["recoveries"]] == [5e5, 2.5e5, 1.25e5, 62500.0]  # 4 halvings, each logged
    assert sum("halved the learning rate" in line for line in lines) == generators.DIVERGENCE_RETRIES
    assert diagnosis["suggested_params"] == {"lr": 2e-3}  # a tenth of the lowest rate tried, at most the default
    assert diagnosis["alternative_plugins"] == ["tvae", "ctgan"] and diagnosis["params"]["lr"] == 1e6
    assert diagnosis["epoch"] >= 1 and diagnosis["step"] >= 1
    json.dumps(diagnosis)  # JSON-ready: the optimizer stores it like a report
    again = pickle.loads(pickle.dumps(caught.value))  # survives a process pool or Dagster's error serialisation
    assert str(again) == message and again.diagnosis == diagnosis


def test_a_tvae_nan_loss_is_fitted_again_with_half_the_learning_rate(dated, tmp_path):
    """synthcity's VAE raises at the step its loss is NaN; before this fix that ended the fit as a RuntimeError."""
    _, encoded = dated
    lines: list[str] = []
    fitted = fit_generator(encoded, "tvae", {"n_iter": 3, "batch_size": 64, "lr": 0.1}, seed=0, workspace=tmp_path,
                           log=lines.append)
    halvings = [r for r in fitted.recoveries if r["action"] == "refit_with_halved_lr"]
    assert halvings and halvings[0]["lr_before"] == 0.1 and halvings[0]["epoch"] == 1
    assert [r["lr_after"] for r in halvings] == [0.1 / 2 ** k for k in range(1, len(halvings) + 1)]
    assert fitted.params["lr"] == halvings[-1]["lr_after"]  # the params of the fit that succeeded
    assert any("fitting tvae again from the start with half the learning rate" in line for line in lines)
    assert _finite(sample(fitted, 200, seed=0))


def test_a_diverging_dp_fit_is_never_repeated(dated, tmp_path):
    """Each dpgan fit spends privacy budget: a diverged one is reported, not silently fitted again."""
    _, encoded = dated
    with pytest.raises(GenerationError, match="a DP fit is never repeated") as caught:
        fit_generator(encoded, "dpgan", {"n_iter": 2, "batch_size": 64, "lr": 1e12}, seed=0, workspace=tmp_path)
    diagnosis = caught.value.diagnosis
    assert diagnosis["plugin"] == "dpgan" and diagnosis["recoveries"] == [] and diagnosis["alternative_plugins"] == []


def _unguarded_ddpm(encoded: pd.DataFrame, lr: float, workspace) -> FittedGenerator:
    """A ddpm fitted by synthcity itself: no divergence guard, no clamp (as a model fitted outside
    fit_generator, or any ddpm before this fix)."""
    params = {"n_iter": 10, "batch_size": 64, "num_timesteps": 100, "lr": lr}
    model = generators.synthcity_plugins().get("ddpm", random_state=0, workspace=workspace, strict=False, **params)
    model.fit(GenericDataLoader(encoded))
    return FittedGenerator("ddpm", params, model)


def test_nan_draws_of_an_unclamped_model_are_recovered_chunk_by_chunk(dated, tmp_path):
    """Finite weights, but lr = 0.5 and x̂₀ not clamped: every sampled row is NaN. Other seeds do not help, clamping
    the denoised x̂₀ to the training range does; it stays on for the next chunk."""
    _, encoded = dated
    fitted = _unguarded_ddpm(encoded, 0.5, tmp_path)
    assert all(torch.isfinite(p).all() for p in fitted.model.model.diffusion.parameters())
    lines: list[str] = []
    rows = sample(fitted, 300, seed=0, sampling_steps=20, chunk_rows=150, log=lines.append)
    assert len(rows) == 300 and _finite(rows)
    (recovery,) = fitted.recoveries  # the second chunk needed nothing more
    assert recovery["stage"] == "sampling" and recovery["action"] == "clamp_denoising"
    assert [f["action"] for f in recovery["failed_attempts"]] == ["draw"] + ["other_seed"] * generators.RESEED_ATTEMPTS
    assert all(f["non_finite_rows"] == 150 and "d0" in f["columns"] for f in recovery["failed_attempts"])
    assert sum("hold NaN or infinite values" in line for line in lines) == 1 + generators.RESEED_ATTEMPTS
    assert generators.is_clamped(fitted.model)


def test_a_diverged_model_cannot_be_sampled_and_says_why(dated, tmp_path):
    """The held-out failure: lr = 1e3 unguarded leaves NaN weights, and sampling used to fail with "ValueError:
    found NaNs in sample". Now one GenerationError with a sampling diagnosis; no futile re-draws (the weights
    themselves are NaN)."""
    _, encoded = dated
    fitted = _unguarded_ddpm(encoded, 1e3, tmp_path)
    assert not all(torch.isfinite(p).all() for p in fitted.model.model.diffusion.parameters())
    lines: list[str] = []
    with pytest.raises(GenerationError) as caught:
        sample(fitted, 100, seed=0, sampling_steps=20, log=lines.append)
    message, diagnosis = str(caught.value), caught.value.diagnosis
    assert "failed to sample 100 finite rows" in message and "weights are NaN or infinite" in message
    assert "Lower the learning rate (lr) to 0.002 or below" in message
    assert diagnosis["stage"] == "sampling" and diagnosis["reason"] == "nan_draws" and diagnosis["plugin"] == "ddpm"
    assert diagnosis["weights_finite"] is False and "d0" in diagnosis["columns"]
    assert diagnosis["suggested_params"] == {"lr": 2e-3} and diagnosis["alternative_plugins"] == ["tvae", "ctgan"]
    assert len(lines) == 1  # the first draw only
    json.dumps(diagnosis)
