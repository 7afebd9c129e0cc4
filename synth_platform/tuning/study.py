"""A persisted Optuna study per (dataset, generator): each trial fits the generator on part of the training rows and
scores its samples against the rest. Pure logic: no Dagster here; the holdout never reaches this module."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
import pandas as pd

from synth_platform.evaluation import metrics
from synth_platform.generation import generators
from synth_platform.profiling.profile import DatasetProfile, decode_from_generation
from synth_platform.tuning.search_space import default_params, search_space, suggest

optuna.logging.set_verbosity(logging.WARNING)


@dataclass(frozen=True)
class TuningBudget:
    n_trials: int = 2
    trial_steps: int = 1000  # optimizer steps per trial (converted to the plugin's epochs)
    tuning_rows: int = 5000  # training rows a trial uses (fit + validation)
    validation_fraction: float = 0.25
    timeout_s: float = 900.0  # no new trial starts after this many seconds

    def validate(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be at least 1, got {self.n_trials}.")
        if self.trial_steps < 1:
            raise ValueError(f"trial_steps must be at least 1, got {self.trial_steps}.")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {self.validation_fraction}.")
        if self.tuning_rows < 20:
            raise ValueError(f"tuning_rows must be at least 20, got {self.tuning_rows}.")

    @property
    def signature(self) -> str:
        """Trials are comparable only under the same budget; this names it."""
        return f"steps={self.trial_steps},rows={self.tuning_rows},val={self.validation_fraction}"


@dataclass
class TuningResult:
    plugin: str
    params: dict[str, Any]
    study_name: str
    storage: str
    best_value: float
    best_trial_number: int
    trials_this_run: int
    trials_in_study: int
    failed_trials_this_run: int
    budget: dict = field(default_factory=dict)
    trials: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def utility_distance(real: pd.DataFrame, synthetic: pd.DataFrame, profile: DatasetProfile) -> float:
    """The tuning objective (lower is better): mean column-shape distance (KS / TVD) plus the correlation delta."""
    numeric = profile.by_kind("numeric", "datetime")
    categorical = profile.by_kind("categorical")
    shapes = [metrics.ks_statistic(real[c], synthetic[c]) for c in numeric]
    shapes += [metrics.total_variation_distance(real[c], synthetic[c]) for c in categorical]
    return float(np.mean(shapes) + metrics.correlation_delta(real, synthetic, numeric)["mean"])


def study_name_for(fingerprint: str, plugin: str) -> str:
    return f"{fingerprint}-{plugin}"


def run_study(
    encoded_training: pd.DataFrame,
    training: pd.DataFrame,
    profile: DatasetProfile,
    *,
    plugin: str,
    fingerprint: str,
    storage: str,
    budget: TuningBudget = TuningBudget(),
    seed: int = 0,
    workspace: Path,
    privacy: generators.PrivacyPolicy = generators.PrivacyPolicy(),
    log: Callable[[str], None] = lambda message: None,
) -> TuningResult:
    """Run `budget.n_trials` more trials of the persisted study and return its best trial under this budget.

    `encoded_training` is what the generator sees; `training` (same rows, source-shaped) is what samples are
    compared with. A trial whose generator fails is recorded as FAIL and does not stop the study.
    """
    budget.validate()
    generators.check_plugin(plugin)
    rng = np.random.default_rng(seed)
    n = min(budget.tuning_rows, len(encoded_training))
    rows = rng.choice(len(encoded_training), size=n, replace=False)
    n_validation = max(1, int(round(n * budget.validation_fraction)))
    fit_rows, validation_rows = rows[n_validation:], rows[:n_validation]
    fit_frame = encoded_training.iloc[fit_rows].reset_index(drop=True)
    validation_frame = training.iloc[validation_rows].reset_index(drop=True)
    space = search_space(plugin)
    name = study_name_for(fingerprint, plugin)

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)
        params["n_iter"] = generators.epochs_for_steps(plugin, budget.trial_steps, len(fit_frame), params.get("batch_size"))
        trial.set_user_attr("budget", budget.signature)
        start = time.perf_counter()
        fitted = generators.fit_generator(fit_frame, plugin, params, seed=seed + trial.number, workspace=workspace, privacy=privacy)
        generated = generators.sample(fitted, len(validation_frame), seed=seed + trial.number)
        value = utility_distance(validation_frame, decode_from_generation(generated, profile), profile)
        trial.set_user_attr("seconds", time.perf_counter() - start)
        log(f"trial {trial.number}: utility distance {value:.4f} in {time.perf_counter() - start:.0f} s with {params}")
        return value

    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        load_if_exists=True,
    )
    before = {t.number for t in study.trials}
    if not before:
        study.enqueue_trial(default_params(plugin, space), user_attrs={"origin": "plugin defaults"})
    log(f"study {name!r}: {len(before)} earlier trials; running {budget.n_trials} more on {len(fit_frame)} + {n_validation} rows")
    study.optimize(objective, n_trials=budget.n_trials, timeout=budget.timeout_s, catch=(Exception,))

    trials = study.get_trials(deepcopy=False)
    this_run = [t for t in trials if t.number not in before]
    comparable = [
        t for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("budget") == budget.signature
    ]
    if not comparable:
        errors = "; ".join(str(t.system_attrs.get("fail_reason", ""))[:300] for t in this_run)
        raise generators.GenerationError(f"Every tuning trial of {plugin} failed: {errors}")
    best = min(comparable, key=lambda t: t.value)
    return TuningResult(
        plugin=plugin,
        params=dict(best.params),
        study_name=name,
        storage=storage,
        best_value=float(best.value),
        best_trial_number=best.number,
        trials_this_run=len(this_run),
        trials_in_study=len(trials),
        failed_trials_this_run=sum(t.state == optuna.trial.TrialState.FAIL for t in this_run),
        budget=asdict(budget),
        trials=[
            {"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params)}
            for t in this_run
        ],
    )
