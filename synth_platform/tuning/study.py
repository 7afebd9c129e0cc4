"""A persisted Optuna study per (dataset, generator, privacy policy): each trial fits the generator on part of the
training rows, scores its samples against the rest for utility (the objective) and privacy (constraints), and the
best feasible trial is chosen. Pure logic: no Dagster here; the holdout never reaches this module."""

from __future__ import annotations

import contextlib
import logging
import math
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd

from synth_platform.evaluation.thresholds import Thresholds
from synth_platform.generation import generators
from synth_platform.generation.encoder_cache import EncoderCache
from synth_platform.generation.training_hooks import EpochEnd
from synth_platform.sampling.credentials import mask_url
from synth_platform.sealed_storage import seal, unseal, write_private_bytes
from synth_platform.profiling.profile import DatasetProfile, align_for_comparison, decode_from_generation
from synth_platform.tuning import memory, strategy, tracking, workers
from synth_platform.tuning.search_space import default_params, search_space, suggest

optuna.logging.set_verbosity(logging.WARNING)
PRIVACY_ROWS = 1000  # members and non-members per trial for the membership attack
# Intermediate values for the pruner. ddpm reports its training loss every epoch: the same denoising objective
# whatever the searched learning rate and batch size. tvae's loss measures reconstruction, not how alike sampled rows
# are, and ctgan/dpgan's losses are adversarial (they compare with nothing), so those trials are scored at
# checkpoints instead: the tuning objective itself (utility distance) on rows sampled from the model as trained so
# far, reported at the same share of every trial's training (step = percent), where the pruner compares trials.
LOSS_REPORTING_PLUGINS = frozenset({"ddpm"})
CHECKPOINT_PERCENTS = (25, 50, 75)
CHECKPOINT_ROWS = 2000  # rows sampled at a checkpoint (at most the validation rows)


def checkpoint_epochs(n_epochs: int, percents: tuple[int, ...] = CHECKPOINT_PERCENTS) -> dict[int, int]:
    """{epoch: percent}: the first epoch at or past each share of `n_epochs`, before the last epoch (whose rows the
    trial scores anyway). An epoch that is the first past several shares is named by the largest of them (of 2
    epochs, the first is 50% of the training, not 25%), so trials are compared at no more than the share they have
    trained."""
    chosen: dict[int, int] = {}
    for percent in sorted(percents):
        epoch = math.ceil(n_epochs * percent / 100)
        if 1 <= epoch < n_epochs:
            chosen[epoch] = percent
    return chosen


class TrialTimedOut(RuntimeError):
    """A trial ran past its time limit; it is recorded as failed and the study goes on."""


class StopWhenNoTimeForATrial:
    """Optuna trial callback: after each trial, stops this worker's study loop when fewer seconds are left before
    `deadline` (a `time.time()` reading: workers may be other processes) than the mean time of the trials it
    completed, so no trial starts that is expected to end past the study's `timeout_s` (Optuna's own timeout only
    stops trials from starting after it). Without a completed trial yet there is no estimate and nothing stops."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.durations: list[float] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == optuna.trial.TrialState.COMPLETE and trial.datetime_start and trial.datetime_complete:
            self.durations.append((trial.datetime_complete - trial.datetime_start).total_seconds())
        if self.durations and time.time() + sum(self.durations) / len(self.durations) > self.deadline:
            study.stop()


@dataclass(frozen=True)
class TuningBudget:
    n_trials: int = 2  # 0: no new trials, choose from the study's existing comparable trials
    trial_steps: int = 1000  # optimizer steps per trial (converted to the plugin's epochs)
    tuning_rows: int = 5000  # training rows a trial uses (fit + validation)
    validation_fraction: float = 0.25
    timeout_s: float = 900.0  # no new trial starts after this many seconds
    trial_timeout_s: float = 600.0  # a trial still training or sampling after this long is stopped and failed
    training_rows: int | None = None  # rows of the training sample tuned on; run_study sets it (`for_sample`)

    def validate(self) -> None:
        if self.n_trials < 0:
            raise ValueError(f"n_trials must be at least 0 (0: choose from the study's existing trials), got {self.n_trials}.")
        if self.trial_steps < 1:
            raise ValueError(f"trial_steps must be at least 1, got {self.trial_steps}.")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {self.validation_fraction}.")
        if self.tuning_rows < 20:
            raise ValueError(f"tuning_rows must be at least 20, got {self.tuning_rows}.")
        if not self.timeout_s > 0 or not self.trial_timeout_s > 0:
            raise ValueError(f"timeout_s and trial_timeout_s must be positive, got {self.timeout_s} and {self.trial_timeout_s}.")

    def for_sample(self, training_rows: int) -> TuningBudget:
        """This budget on a training sample of `training_rows` rows."""
        return replace(self, training_rows=int(training_rows))

    @property
    def effective_tuning_rows(self) -> int:
        """The rows a trial really uses: `tuning_rows`, or fewer when the training sample is smaller."""
        return self.tuning_rows if self.training_rows is None else min(self.tuning_rows, self.training_rows)

    @property
    def signature(self) -> str:
        """Trials are comparable only under the same budget on the same training sample size; this names both."""
        sample = "" if self.training_rows is None else f",train={self.training_rows}"
        return f"steps={self.trial_steps},rows={self.effective_tuning_rows},val={self.validation_fraction}{sample}"


@dataclass(frozen=True)
class PrivacyConstraints:
    """The report's privacy thresholds, applied to every trial as Optuna constraints (value <= 0: satisfied)."""

    mia_auc_max: float = Thresholds.mia_auc_max
    exact_copy_rate_max: float = Thresholds.exact_copy_rate_max

    def values(self, scores: dict[str, float]) -> list[float]:
        return [scores["membership_inference_auc"] - self.mia_auc_max, scores["exact_copy_rate"] - self.exact_copy_rate_max]


@dataclass(frozen=True)
class SearchSettings:
    """How the study searches: sampler, pruner and single (utility) or multi (utility, MIA AUC) objective."""

    sampler: str = "tpe"
    pruner: str = "median"
    objective: str = "single"

    def validate(self) -> None:
        strategy.check_strategy(self.sampler, self.pruner, self.objective)


def policy_signature(plugin: str, privacy: generators.PrivacyPolicy, constraints: PrivacyConstraints) -> str:
    """The privacy policy a study is tuned under: the DP budget (as the tuning memory names it; "none" for non-DP
    plugins) and the privacy thresholds its trials are constrained by."""
    dp = memory.policy_signature(plugin, privacy)
    return f"{dp}-mia{constraints.mia_auc_max:g}-copy{constraints.exact_copy_rate_max:g}"


def study_name_for(fingerprint: str, plugin: str, policy: str, budget: TuningBudget, training_rows: int,
                   objective: str = "single") -> str:
    """One study per set of comparable trials: dataset, training sample size, plugin, privacy policy, trial budget
    and (unless "single") objective, e.g. "<fingerprint>-ddpm-none-mia0.6-copy0.05-rows39073-steps1000x5000v0.25"
    (a trial's value under another objective is another number)."""
    sized = budget.for_sample(training_rows)
    return (f"{fingerprint}-{plugin}-{policy}-rows{sized.training_rows}"
            f"-steps{sized.trial_steps}x{sized.effective_tuning_rows}v{sized.validation_fraction:g}"
            + ("" if objective == "single" else f"-{objective}"))


@dataclass
class TuningResult:
    plugin: str
    params: dict[str, Any]
    study_name: str
    storage: str  # the Optuna storage URL, masked: a TuningResult is persisted, a credential never is
    best_value: float
    best_trial_number: int
    trials_this_run: int
    trials_in_study: int
    failed_trials_this_run: int
    feasible: bool = True  # False: no trial met the privacy constraints (the least-violating one was chosen), or a fallback
    selection_rule: str = ""
    best_scores: dict[str, float] = field(default_factory=dict)
    pareto_front: list[dict] = field(default_factory=list)
    policy: str = ""
    budget: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    trials: list[dict] = field(default_factory=list)
    timed_out: bool = False  # the study's time budget ended it before n_trials
    warm_start: dict = field(default_factory=dict)  # warm-start trials, their sources and whether they beat the cold ones
    memory_record_id: int | None = None
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    optuna_study_id: int | None = None  # the study's id in its storage (optuna-dashboard's pages use it)
    tracking_problems: list[str] = field(default_factory=list)
    workers: list[dict] = field(default_factory=list)
    fallback: str = ""  # what was used instead of a trial, and why; empty when the params come from a trial
    avoided: int = 0  # comparable trials passed over because an earlier attempt already fitted their params

    def to_dict(self) -> dict:
        return asdict(self)


def utility_distance(real: pd.DataFrame, synthetic: pd.DataFrame, profile: DatasetProfile) -> float:
    from synth_platform.evaluation import metrics  # local: the Dagster definitions import this module

    """The tuning objective (lower is better): mean column-shape distance (KS / TVD) plus the correlation delta."""
    numeric = profile.by_kind("numeric", "datetime")
    categorical = profile.by_kind("categorical")
    shapes = [metrics.ks_statistic(real[c], synthetic[c]) for c in numeric]
    shapes += [metrics.total_variation_distance(real[c], synthetic[c]) for c in categorical]
    return float(np.mean(shapes) + metrics.correlation_delta(real, synthetic, numeric)["mean"])


TRIAL_SCORES = ("utility_distance", "membership_inference_auc", "exact_copy_rate")  # what `trial_scores` returns
DETECTION_ROWS = 2000  # rows per side of a trial's detection AUC (the "fidelity" objective)


def fidelity_objective(scores: dict[str, float]) -> float:
    """The "fidelity" objective (lower is better): utility distance + (detection AUC − 0.5), the second term 0 when a
    classifier cannot tell the rows apart and 0.5 when it always can (same scale as the utility distance)."""
    return scores["utility_distance"] + max(0.0, scores["detection_auc"] - 0.5)


def trial_scores(
    fit_rows: pd.DataFrame, validation: pd.DataFrame, synthetic: pd.DataFrame, profile: DatasetProfile,
    *, privacy_rows: int = PRIVACY_ROWS, seed: int = 0, detection: bool = False,
) -> dict[str, float]:
    """Utility against the validation rows and privacy against the rows the generator was fitted on; with
    `detection`, also the detection AUC of validation vs synthetic rows (`metrics.detection_auc`, at most
    `DETECTION_ROWS` per side).

    The membership attack is the report's: distance to the closest synthetic row, members (fit rows) vs
    non-members (validation rows the generator never saw). The exact-copy rate counts synthetic rows equal to a fit
    row on every compared column. Rows are compared as the report compares them (datetimes parsed)."""
    from synth_platform.evaluation import distances, metrics  # local: the Dagster definitions import this module
    from synth_platform.evaluation.report import sentinel_seconds

    fit_rows, validation, synthetic = (align_for_comparison(f, profile) for f in (fit_rows, validation, synthetic))
    numeric = profile.by_kind("numeric", "datetime")
    categorical = profile.by_kind("categorical")
    compared = numeric + categorical
    rng = np.random.default_rng(seed)
    # ±inf and the profile's sentinel dates are states of their own, as in the report (`distances`).
    space = distances.MixedSpace.fit(fit_rows[compared], numeric, categorical, sentinel_seconds(profile))
    n = min(privacy_rows, len(fit_rows), len(validation))
    members = space.transform(fit_rows[compared].iloc[rng.choice(len(fit_rows), size=n, replace=False)])
    non_members = space.transform(validation[compared].iloc[rng.choice(len(validation), size=n, replace=False)])
    encoded_synthetic = space.transform(synthetic[compared])
    member_dcr = distances.distance_to_closest_record(members, encoded_synthetic, space.n_columns)
    non_member_dcr = distances.distance_to_closest_record(non_members, encoded_synthetic, space.n_columns)
    scores = {
        "utility_distance": utility_distance(validation, synthetic, profile),
        "membership_inference_auc": metrics.membership_inference_auc(member_dcr, non_member_dcr),
        "exact_copy_rate": metrics.exact_copy_rate(synthetic[compared], fit_rows[compared]),
    }
    if detection:
        scores["detection_auc"] = metrics.detection_auc(validation[compared], synthetic[compared], categorical,
                                                        max_rows=DETECTION_ROWS, seed=seed)
    return scores


@dataclass
class TrialSetup:
    """Everything a trial needs, picklable, so trials can run in this process or in worker processes."""

    plugin: str
    fit_frame: pd.DataFrame  # encoded, what the generator trains on
    fit_rows: pd.DataFrame  # the same rows, source-shaped, for the privacy scores
    validation: pd.DataFrame  # source-shaped rows the generator never sees
    profile: DatasetProfile
    space: list
    budget: TuningBudget
    search: SearchSettings
    privacy: generators.PrivacyPolicy
    constraints: PrivacyConstraints
    seed: int
    workspace: Path
    device: str = "cpu"  # generators.resolve_device's answer
    encoder_cache_dir: Path | None = None  # fitted data encoders (ctgan/tvae/dpgan), shared by trials and runs

    def save(self, path: Path) -> Path:
        """Sealed (encrypted and authenticated with the storage key, see `sealed_storage`) and owner-only: it holds
        the training rows, and a worker must never unpickle a file someone else wrote on a shared volume. `run_study`
        removes it when the study ends."""
        return write_private_bytes(path, seal(pickle.dumps(self, pickle.HIGHEST_PROTOCOL)))

    @staticmethod
    def load(path: str | Path) -> TrialSetup:
        """The setup `save` wrote; a file not sealed with this storage key (tampered, or written by anyone else) is
        refused before anything in it is unpickled."""
        return pickle.loads(unseal(Path(path).read_bytes(), what=f"the trial setup {path}"))


LOGGER = logging.getLogger("synth_platform.tuning")


def objective_from_file(setup_path: str, torch_threads: int = 1) -> Callable[[optuna.Trial], Any]:
    """The objective factory workers import ("synth_platform.tuning.study:objective_from_file"): loads the pickled
    `TrialSetup` that `run_study` wrote. Trial progress goes to the `synth_platform.tuning` logger (on stderr in a
    spawned worker process)."""
    import multiprocessing

    setup = TrialSetup.load(setup_path)
    generators.configure_compute(torch_threads)
    if multiprocessing.parent_process() is not None and not LOGGER.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[tuning worker %(process)d] %(message)s"))
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
        LOGGER.propagate = False  # libraries configure the root logger in workers: one line per message
    return make_objective(setup, LOGGER.info)


def make_objective(setup: TrialSetup, log: Callable[[str], None] = lambda message: None) -> Callable[[optuna.Trial], Any]:
    """One trial: suggest parameters, fit within the step budget and time limit (intermediate values for the
    pruner: ddpm's training loss per epoch, the others' utility distance at checkpoints), sample as many rows as the validation part, score, store the scores and the privacy
    constraints as user attributes, return utility (single), utility + detection AUC − 0.5 (fidelity) or
    (utility, MIA AUC) (multi). Exceptions, a timeout
    and non-finite scores make the trial FAIL; the study goes on."""
    plugin, budget = setup.plugin, setup.budget
    single = setup.search.objective != "multi"
    fidelity = setup.search.objective == "fidelity"
    # One encoder for every trial of this process (they share the fit rows), fitted by the first or read from disk.
    encoders = EncoderCache(setup.encoder_cache_dir, log=log)
    # Checkpoints compare sampled rows with the validation rows as `trial_scores` does (datetimes parsed, numbers
    # stored as text read as numbers); the validation side is aligned once here.
    aligned_validation = align_for_comparison(setup.validation, setup.profile)

    def objective(trial: optuna.Trial) -> Any:
        params = suggest(trial, setup.space)
        params["n_iter"] = generators.epochs_for_steps(plugin, budget.trial_steps, len(setup.fit_frame), params.get("batch_size"))
        if plugin == "ddpm":  # one logged loss per epoch: the mean over the epoch's steps
            batch = params.get("batch_size") or generators.PLUGIN_DEFAULTS["ddpm"]["batch_size"]
            params["log_interval"] = max(1, math.ceil(len(setup.fit_frame) / min(batch, len(setup.fit_frame))))
        trial.set_user_attr(strategy.BUDGET_ATTR, budget.signature)  # before any report: the pruner reads it
        start = time.perf_counter()
        deadline = time.monotonic() + budget.trial_timeout_s

        checkpoints = checkpoint_epochs(params["n_iter"])

        def on_epoch_end(progress: EpochEnd) -> None:
            epoch, loss = progress.epoch, progress.loss
            if time.monotonic() > deadline:
                raise TrialTimedOut(f"trial {trial.number} passed its {budget.trial_timeout_s:g} s limit at epoch {epoch}")
            if loss is not None and not math.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss} at epoch {epoch}")
            if not single:
                return
            if plugin in LOSS_REPORTING_PLUGINS:
                if loss is None:
                    return
                trial.report(loss, epoch)
                why = f"training loss {loss:.4f} at epoch {epoch}"
            elif epoch in checkpoints:
                percent = checkpoints[epoch]
                rows = progress.sample(min(len(setup.validation), CHECKPOINT_ROWS), setup.seed + trial.number)
                sampled = align_for_comparison(decode_from_generation(rows, setup.profile), setup.profile)
                distance = utility_distance(aligned_validation, sampled, setup.profile)
                trial.report(distance, percent)
                log(f"trial {trial.number}: utility distance {distance:.4f} after {percent}% of its training")
                why = f"utility distance {distance:.4f} after {percent}% of the training"
            else:
                return
            if trial.should_prune():
                raise optuna.TrialPruned(f"{why} is worse than the median of earlier trials")

        try:
            fitted = generators.fit_generator(
                setup.fit_frame, plugin, params, seed=setup.seed + trial.number, workspace=setup.workspace / f"trial-{trial.number}",
                privacy=setup.privacy, on_epoch_end=on_epoch_end, passthrough=(optuna.TrialPruned, TrialTimedOut, FloatingPointError),
                device=setup.device, encoder_cache=encoders,
            )
            if time.monotonic() > deadline:
                raise TrialTimedOut(f"trial {trial.number} passed its {budget.trial_timeout_s:g} s limit while fitting")
            generated = generators.sample(fitted, len(setup.validation), seed=setup.seed + trial.number)
            synthetic = decode_from_generation(generated, setup.profile)
            scores = trial_scores(setup.fit_rows, setup.validation, synthetic, setup.profile, seed=setup.seed + trial.number,
                                  detection=fidelity)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr(strategy.ERROR_ATTR, f"{type(exc).__name__}: {exc}"[:2000])
            log(f"trial {trial.number} failed: {type(exc).__name__}: {str(exc)[:200]}")
            raise
        for key, value in scores.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr(strategy.CONSTRAINTS_ATTR, setup.constraints.values(scores))
        trial.set_user_attr("seconds", time.perf_counter() - start)
        if not all(math.isfinite(v) for v in scores.values()):
            raise FloatingPointError(f"non-finite scores {scores}")
        log(
            f"trial {trial.number}: utility distance {scores['utility_distance']:.4f}, MIA AUC {scores['membership_inference_auc']:.3f}, "
            f"exact copies {scores['exact_copy_rate']:.3f} in {time.perf_counter() - start:.0f} s with {params}"
        )
        if fidelity:
            return fidelity_objective(scores)
        if single:
            return scores["utility_distance"]
        return scores["utility_distance"], scores["membership_inference_auc"]

    return objective


SELECTION_RULE = (
    "among COMPLETE trials under this budget whose parameters no earlier attempt already fitted (avoided sets), "
    "those that meet every privacy constraint, the lowest utility distance; if none meets them, the one with the "
    "smallest total constraint violation (flagged not feasible); with no such trial, a fallback (flagged not "
    "feasible, named in `fallback`): the best feasible parameters the tuning memory holds for this dataset, "
    "plugin and privacy policy, else the plugin defaults"
)


def same_params(a: Mapping[str, Any], b: Mapping[str, Any], names: Sequence[str]) -> bool:
    """Equal on `names` (a name missing from both is equal); numbers within a relative tolerance of 1e-9."""
    for name in names:
        if (name in a) != (name in b):
            return False
        if name not in a:
            continue
        x, y = a[name], b[name]
        numbers = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in (x, y))
        if numbers:
            if not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=0.0):
                return False
        elif x != y:
            return False
    return True


def is_avoided(params: Mapping[str, Any], avoid: Sequence[Mapping[str, Any]], names: Sequence[str]) -> bool:
    return any(same_params(params, other, names) for other in avoid)


def select_best(
    trials: list[optuna.trial.FrozenTrial], avoid: Sequence[Mapping[str, Any]] = (), names: Sequence[str] | None = None,
) -> tuple[optuna.trial.FrozenTrial, bool]:
    """The chosen trial and whether it is feasible, by `SELECTION_RULE`, among `trials` whose params (compared on
    `names`; default: each trial's own) are not in `avoid`. Raises ValueError when no trial is left."""
    trials = [t for t in trials if not is_avoided(t.params, avoid, list(t.params) if names is None else names)]
    if not trials:
        raise ValueError("No trial to choose from: every one is avoided, or there are none.")
    feasible = [t for t in trials if strategy.is_feasible(t)]
    if feasible:
        return min(feasible, key=lambda t: (t.values[0], t.number)), True
    return min(trials, key=lambda t: (strategy.constraint_violation(t), t.values[0], t.number)), False


def pareto_front(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """Feasible trials no other feasible trial beats on both utility distance and MIA AUC."""
    candidates = [t for t in trials if strategy.is_feasible(t)]

    def scores(t: optuna.trial.FrozenTrial) -> tuple[float, float]:
        return t.user_attrs["utility_distance"], t.user_attrs["membership_inference_auc"]

    front = []
    for t in candidates:
        a = scores(t)
        if not any(scores(o)[0] <= a[0] and scores(o)[1] <= a[1] and scores(o) != a for o in candidates):
            front.append(t)
    return sorted(front, key=lambda t: scores(t))


def prepare_setup(
    encoded_training: pd.DataFrame, training: pd.DataFrame, profile: DatasetProfile, *, plugin: str,
    budget: TuningBudget, search: SearchSettings, privacy: generators.PrivacyPolicy,
    constraints: PrivacyConstraints, seed: int, workspace: Path, device: str = "cpu", encoder_cache_dir: Path | None = None,
) -> TrialSetup:
    """Split the tuning rows into a fit part and a validation part (both from the training part)."""
    rng = np.random.default_rng(seed)
    n = min(budget.tuning_rows, len(encoded_training))
    rows = rng.choice(len(encoded_training), size=n, replace=False)
    n_validation = max(1, int(round(n * budget.validation_fraction)))
    fit_index, validation_index = rows[n_validation:], rows[:n_validation]
    return TrialSetup(
        plugin=plugin,
        fit_frame=encoded_training.iloc[fit_index].reset_index(drop=True),
        fit_rows=training.iloc[fit_index].reset_index(drop=True),
        validation=training.iloc[validation_index].reset_index(drop=True),
        profile=profile,
        space=search_space(plugin),
        budget=budget,
        search=search,
        privacy=privacy,
        constraints=constraints,
        seed=seed,
        workspace=workspace,
        device=device,
        encoder_cache_dir=encoder_cache_dir,
    )


REOPENED_TRIALS = 3  # trials of a re-opened study that start its successor


def reopened_trials(storage: str, study_name: str, constraints: PrivacyConstraints, limit: int = REOPENED_TRIALS) -> list[dict[str, Any]]:
    """Parameters of `study_name`'s complete trials whose recorded privacy scores meet `constraints`, best utility
    first, each with an "origin": how a study re-opened under stricter constraints starts from what the earlier one
    learnt (their scores were measured under the same privacy metrics; only the limits moved). Empty when the study
    does not exist or no trial meets the limits."""
    try:
        earlier = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return []
    scored = [
        t for t in earlier.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if all(k in t.user_attrs for k in TRIAL_SCORES)
        and all(v <= 0 for v in constraints.values(t.user_attrs))
    ]
    scored.sort(key=lambda t: t.user_attrs["utility_distance"])
    return [{**t.params, "origin": f"re-opened from {study_name} trial {t.number}"} for t in scored[:limit]]


@dataclass
class OpenedStudy:
    """A tuning session of a persisted study between `open_study` and `close_study`: everything its later phases
    need, picklable, so its trials may run in other processes, Dagster steps or machines (`run_trials`). It holds no
    credential and no row: the storage, memory and tracking URLs are given to each phase again, and the training
    rows are in the sealed setup file at `setup_path` (removed by `close_study` or `abandon_study`)."""

    name: str
    plugin: str
    fingerprint: str
    policy: str
    budget: TuningBudget
    search: SearchSettings
    privacy: generators.PrivacyPolicy
    seed: int
    directions: list[str]
    before: list[int]  # trial numbers the study held when the session opened
    names: list[str]  # the search space's parameter names
    avoid: list[dict[str, Any]]
    features: dict[str, float]  # the dataset's meta-features (tuning memory)
    setup_path: str | None  # None: no trial to run (n_trials = 0)
    started: float  # time.time() when the session opened
    deadline: float  # time.time() after which no trial starts
    mlflow_parent_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    tracking_problems: list[str] = field(default_factory=list)

    def tracker(self, tracking_uri: str) -> tracking.StudyTracker:
        """The session's MLflow parent run (started by `open_study`, perhaps in another process), by its ids."""
        return tracking.StudyTracker.resume(tracking_uri, study_name=self.name, parent_run_id=self.mlflow_parent_run_id,
                                            experiment_id=self.mlflow_experiment_id)

    def trials_of_share(self, share: int, shares: int) -> int:
        """Trials the `share`-th of `shares` equal parts of the session runs (`workers.trials_per_worker`)."""
        return workers.trials_per_worker(self.budget.n_trials, shares)[share] if self.setup_path else 0


def open_study(
    encoded_training: pd.DataFrame,
    training: pd.DataFrame,
    profile: DatasetProfile,
    *,
    plugin: str,
    fingerprint: str,
    storage: str,
    budget: TuningBudget = TuningBudget(),
    search: SearchSettings = SearchSettings(),
    seed: int = 0,
    workspace: Path,
    privacy: generators.PrivacyPolicy = generators.PrivacyPolicy(),
    constraints: PrivacyConstraints = PrivacyConstraints(),
    memory_url: str | None = None,
    tracking_uri: str | None = None,
    run_id: str = "",
    warm_start: list[dict[str, Any]] = (),
    avoid_params: Sequence[Mapping[str, Any]] = (),
    device: str = "cpu",
    encoder_cache_dir: Path | None = None,
    session_settings: Mapping[str, Any] | None = None,
    tracker_owner_pid: int | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> OpenedStudy:
    """The first phase of `run_study`: validate, split the tuning rows, create or load the study, enqueue the plugin
    defaults, `warm_start` and the tuning memory's warm starts into a new study, write the sealed trial setup and
    (with `tracking_uri`) start the MLflow parent run (owned by `tracker_owner_pid`, default this process), logging
    `session_settings` on it."""
    budget.validate()
    search.validate()
    generators.check_plugin(plugin)
    budget = budget.for_sample(len(training))
    setup = prepare_setup(
        encoded_training, training, profile, plugin=plugin, budget=budget, search=search, privacy=privacy,
        constraints=constraints, seed=seed, workspace=workspace, device=device, encoder_cache_dir=encoder_cache_dir,
    )
    policy = policy_signature(plugin, privacy, constraints)
    name = study_name_for(fingerprint, plugin, policy, budget, len(training), search.objective)
    directions = strategy.directions(search.objective)
    study = workers.ensure_study(storage, name, directions)
    before = sorted(t.number for t in study.trials)
    features = memory.meta_features(training, profile)
    names = [d.name for d in setup.space]
    avoid = [dict(a) for a in avoid_params]

    def enqueue(params: Mapping[str, Any], user_attrs: dict[str, Any]) -> None:
        params = {k: v for k, v in params.items() if k != "origin"}
        if is_avoided(params, avoid, names):
            log(f"not enqueued ({user_attrs.get('origin')}): an earlier attempt already fitted {params}")
        elif not any(same_params(params, _params_of(t), names) for t in study.get_trials(deepcopy=False)):
            study.enqueue_trial(params, user_attrs=user_attrs)

    if not before and budget.n_trials > 0:
        enqueue(default_params(plugin, setup.space), {"origin": "plugin defaults"})
        for item in warm_start:
            enqueue(item, {"origin": item.get("origin", "warm start (given)")})
        if memory_url:
            for start in memory.warm_start_params(
                memory.TuningMemory(memory_url), plugin, memory.policy_signature(plugin, privacy), features, setup.space,
                exclude_fingerprint=fingerprint,
            ):
                enqueue(start.params, start.user_attrs)
                log(f"warm start: {start.origin} (meta-feature distance {start.distance:.2f})")
    log(
        f"study {name!r}: {len(before)} earlier trials; running {budget.n_trials} more on {len(setup.fit_frame)} + "
        f"{len(setup.validation)} rows ({search.sampler} sampler, {search.pruner} pruner, {search.objective} objective)"
    )
    started = time.time()
    opened = OpenedStudy(
        name=name, plugin=plugin, fingerprint=fingerprint, policy=policy, budget=budget, search=search, privacy=privacy,
        seed=seed, directions=list(directions), before=before, names=names, avoid=avoid, features=features,
        setup_path=str(setup.save(workspace / "trial_setup.pkl")) if budget.n_trials > 0 else None,
        started=started, deadline=started + budget.timeout_s,
    )
    if tracking_uri:
        tracker = tracking.StudyTracker(tracking_uri, study_name=name, dagster_run_id=run_id, owner_pid=tracker_owner_pid,
                                        tags={"plugin": plugin, "policy": policy}).start()
        tracker.log_params({"plugin": plugin, "policy": policy, "seed": seed, **dict(session_settings or {}),
                            **asdict(budget), **asdict(search)})
        opened.mlflow_parent_run_id, opened.mlflow_experiment_id = tracker.parent_run_id, tracker.experiment_id
        opened.tracking_problems = list(tracker.problems)
    return opened


def run_trials(
    opened: OpenedStudy,
    storage: str,
    *,
    share: int = 0,
    shares: int = 1,
    n_workers: int = 1,
    threads: int = 0,
    tracking_uri: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> list[workers.WorkerSummary]:
    """The `share`-th of `shares` equal parts of the session's trials (the second phase; shares run anywhere the
    storage is reachable: steps of one Dagster run, other machines), on `n_workers` processes with `threads` torch
    threads each (0: the cores shared among them). No trial starts after the session's deadline. Each share draws
    with sampler seeds of its own; every finished trial is logged to the session's MLflow run."""
    trials = opened.trials_of_share(share, shares)
    time_left = opened.deadline - time.time()
    if trials == 0:
        return []
    if time_left <= 0:
        log(f"share {share + 1} of {shares}: the study's {opened.budget.timeout_s:g} s ended before its {trials} trial(s) started")
        return []
    trial_logger = (opened.tracker(tracking_uri).trial_logger(),) if tracking_uri else ()
    identity = (len(opened.before),) if share == 0 else (len(opened.before), share)  # a continued study draws new points
    spec = workers.WorkerSpec(
        storage_url=storage, study_name=opened.name, objective="synth_platform.tuning.study:objective_from_file",
        objective_kwargs={"setup_path": opened.setup_path, "torch_threads": generators.threads_for(n_workers, threads)},
        timeout_s=time_left, sampler=opened.search.sampler, pruner=opened.search.pruner,
        base_seed=workers.derive_seed(opened.seed, *identity), directions=tuple(opened.directions),
        constraints=opened.search.sampler != "cmaes",
        trial_callbacks=trial_logger + (StopWhenNoTimeForATrial(opened.deadline),),
    )
    forward = _LogForwarder(log)
    LOGGER.addHandler(forward)
    LOGGER.setLevel(logging.INFO)
    propagate, LOGGER.propagate = LOGGER.propagate, False  # to `log` only, not also to whatever the root prints
    try:
        return workers.run_workers(spec, n_workers, total_trials=trials, log=log)
    finally:
        LOGGER.removeHandler(forward)
        LOGGER.propagate = propagate


def abandon_study(opened: OpenedStudy, tracking_uri: str | None, error: BaseException) -> None:
    """End a session that cannot be closed: its MLflow run FAILED with `error`, its setup file (training rows) removed."""
    try:
        if tracking_uri:
            opened.tracker(tracking_uri).finish(error)
    finally:
        if opened.setup_path:
            Path(opened.setup_path).unlink(missing_ok=True)


def close_study(
    opened: OpenedStudy,
    storage: str,
    summaries: Sequence[workers.WorkerSummary],
    *,
    memory_url: str | None = None,
    tracking_uri: str | None = None,
    run_id: str = "",
    log: Callable[[str], None] = lambda message: None,
) -> TuningResult:
    """The last phase: the study's best trial under the session's budget by `SELECTION_RULE` (a fallback when none
    is left), logged on the MLflow run, which ends; the setup file removed; the choice recorded in the tuning memory
    at `memory_url` when it met the privacy constraints. `summaries`: what every share's workers did."""
    budget, plugin = opened.budget, opened.plugin
    tracker = opened.tracker(tracking_uri) if tracking_uri else None
    try:
        study = optuna.load_study(study_name=opened.name, storage=storage)
        result = summarize(
            study, set(opened.before), plugin=plugin, storage=mask_url(storage), budget=budget, search=opened.search,
            policy=opened.policy,
            # fewer trials than asked with every worker ok: the time ended the study
            timed_out=time.time() - opened.started >= budget.timeout_s or all(s.ok for s in summaries),
            avoid=opened.avoid, names=opened.names, log=log,
            fallback=lambda: fallback_params(plugin, search_space(plugin), fingerprint=opened.fingerprint, privacy=opened.privacy,
                                             memory_url=memory_url, avoid=opened.avoid),
        )
        if tracker is not None:
            tracker.log_choice(opened.name, result.best_trial_number, result.params,
                               {"feasible": float(result.feasible), "fallback": float(bool(result.fallback)), **result.best_scores})
            tracker.finish()
            result.mlflow_run_id, result.mlflow_experiment_id = tracker.parent_run_id, tracker.experiment_id
            result.tracking_problems = [*opened.tracking_problems, *tracker.problems]
    except BaseException as error:
        abandon_study(opened, tracking_uri, error)
        raise
    if opened.setup_path:
        Path(opened.setup_path).unlink(missing_ok=True)  # training rows: never left behind
    result.workers = [w.to_dict() for w in summaries]
    result.optuna_study_id = study._study_id  # no public getter; optuna-dashboard's URLs name studies by it
    comparable = _comparable(study.get_trials(deepcopy=False), budget)
    result.warm_start = {
        **memory.warm_start_outcome(comparable),
        "sources": [t.user_attrs.get("origin") for t in study.trials if memory.is_warm_start(t)],
    }
    if memory_url and result.feasible:  # only parameters that met the privacy constraints are worth reusing
        result.memory_record_id = memory.TuningMemory(memory_url).record(memory.TuningMemoryEntry(
            plugin=plugin, privacy_policy=memory.policy_signature(plugin, opened.privacy), dataset_fingerprint=opened.fingerprint,
            meta_features=opened.features, best_params=result.params, best_value=result.best_value, study_name=opened.name,
            metrics={**result.best_scores, "feasible": result.feasible}, storage=storage,
            best_trial_number=result.best_trial_number, budget=budget.signature, run_id=run_id or None,
            trials_in_study=result.trials_in_study,
            **{k: v for k, v in result.warm_start.items() if k != "sources"},
        ))
    return result


def run_study(
    encoded_training: pd.DataFrame,
    training: pd.DataFrame,
    profile: DatasetProfile,
    *,
    plugin: str,
    fingerprint: str,
    storage: str,
    budget: TuningBudget = TuningBudget(),
    search: SearchSettings = SearchSettings(),
    seed: int = 0,
    workspace: Path,
    privacy: generators.PrivacyPolicy = generators.PrivacyPolicy(),
    constraints: PrivacyConstraints = PrivacyConstraints(),
    n_workers: int = 1,
    memory_url: str | None = None,
    tracking_uri: str | None = None,
    run_id: str = "",
    warm_start: list[dict[str, Any]] = (),
    avoid_params: Sequence[Mapping[str, Any]] = (),
    threads: int = 0,
    device: str = "cpu",
    encoder_cache_dir: Path | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> TuningResult:
    """Run `budget.n_trials` more trials (0: none) of the persisted study of comparable trials (`study_name_for`,
    on `n_workers` processes) and return its best trial under this budget by `SELECTION_RULE`: `open_study`, then
    all of `run_trials` here, then `close_study` (the tuning asset runs the same phases as separate Dagster steps).

    `encoded_training` is what the generator sees; `training` (same rows, source-shaped) is what samples are
    compared with. A new study starts with the plugin defaults, then `warm_start` parameter sets (each optionally
    with an "origin"), then the best parameters of the most similar past datasets in the tuning memory at
    `memory_url`; afterwards the study's best feasible result is recorded there. `avoid_params`: parameter sets an
    earlier attempt already fitted; they are never enqueued nor chosen. Each run's sampler seeds derive from `seed`
    and the study's trial count, so a continued study draws new points. With no trial to choose, the result is a
    fallback (`TuningResult.fallback`), not an error. With `tracking_uri` the study is an MLflow run with one nested
    run per trial. A trial whose generator fails is recorded as FAIL and does not stop the study.
    """
    opened = open_study(
        encoded_training, training, profile, plugin=plugin, fingerprint=fingerprint, storage=storage, budget=budget,
        search=search, seed=seed, workspace=workspace, privacy=privacy, constraints=constraints, memory_url=memory_url,
        tracking_uri=tracking_uri, run_id=run_id, warm_start=warm_start, avoid_params=avoid_params, device=device,
        encoder_cache_dir=encoder_cache_dir, session_settings={"workers": n_workers}, log=log,
    )
    try:
        summaries = run_trials(opened, storage, n_workers=n_workers, threads=threads, tracking_uri=tracking_uri, log=log)
    except BaseException as error:
        abandon_study(opened, tracking_uri, error)
        raise
    return close_study(opened, storage, summaries, memory_url=memory_url, tracking_uri=tracking_uri, run_id=run_id, log=log)


class _LogForwarder(logging.Handler):
    """Trial progress of in-process workers to the caller's `log` (e.g. Dagster's context.log.info)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.forward = log

    def emit(self, record: logging.LogRecord) -> None:
        self.forward(record.getMessage())


def _comparable(trials: list[optuna.trial.FrozenTrial], budget: TuningBudget) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get(strategy.BUDGET_ATTR) == budget.signature]


def _params_of(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial's parameters; those it was enqueued with while it still waits to run."""
    return dict(trial.params) or dict(trial.system_attrs.get("fixed_params", {}))


def fallback_params(
    plugin: str, space: list, *, fingerprint: str, privacy: generators.PrivacyPolicy, memory_url: str | None = None,
    avoid: Sequence[Mapping[str, Any]] = (),
) -> tuple[dict[str, Any], str]:
    """The best known parameters when no trial can be chosen, and what they are: the lowest-valued feasible entry
    of the tuning memory at `memory_url` for this dataset, plugin and DP policy (clipped to `space`, defaults for
    names it lacks) whose parameters are not in `avoid`; else the plugin defaults."""
    names = [d.name for d in space]
    defaults = default_params(plugin, space)
    if memory_url:
        candidates = []
        for entry in memory.TuningMemory(memory_url).entries(plugin, memory.policy_signature(plugin, privacy)):
            if entry.dataset_fingerprint != fingerprint or not entry.metrics.get("feasible", True) or not math.isfinite(entry.best_value):
                continue
            params = {**defaults, **memory.clip_to_space(entry.best_params, space)}
            if not is_avoided(params, avoid, names):
                candidates.append((entry.best_value, -(entry.id or 0), params, entry))
        if candidates:
            _, _, params, entry = min(candidates, key=lambda c: (c[0], c[1]))
            return params, (f"the best feasible parameters in the tuning memory for this dataset (study {entry.study_name} "
                            f"trial {entry.best_trial_number}, utility distance {entry.best_value:.4f}, budget {entry.budget})")
    if is_avoided(defaults, avoid, names):
        return defaults, "the plugin defaults (an earlier attempt already fitted them; nothing else is known)"
    return defaults, "the plugin defaults"


def summarize(
    study: optuna.Study, before: set[int], *, plugin: str, storage: str, budget: TuningBudget, search: SearchSettings,
    policy: str, timed_out: bool = False, avoid: Sequence[Mapping[str, Any]] = (), names: Sequence[str] | None = None,
    fallback: Callable[[], tuple[dict[str, Any], str]] | None = None, log: Callable[[str], None] = lambda message: None,
) -> TuningResult:
    """The study's result under `budget` by `SELECTION_RULE`. With no COMPLETE trial under the budget, or every
    one avoided, a fallback result (`fallback()`: params and what they are; default: the plugin defaults) with
    `fallback` saying what and why, `feasible=False`, best_value nan and best_trial_number -1; a warning goes to `log`."""
    trials = study.get_trials(deepcopy=False)
    this_run = [t for t in trials if t.number not in before]
    comparable = _comparable(trials, budget)
    candidates = [t for t in comparable if not is_avoided(t.params, avoid, list(t.params) if names is None else names)]
    common = dict(
        plugin=plugin, study_name=study.study_name, storage=storage, trials_this_run=len(this_run), trials_in_study=len(trials),
        failed_trials_this_run=sum(t.state == optuna.trial.TrialState.FAIL for t in this_run), selection_rule=SELECTION_RULE,
        policy=policy, budget=asdict(budget), search=asdict(search), trials=[strategy.describe_trial(t) for t in this_run],
        timed_out=timed_out and len(this_run) < budget.n_trials, avoided=len(comparable) - len(candidates),
    )
    if not candidates:
        if comparable:
            why = (f"each of the {len(comparable)} COMPLETE trials under budget {budget.signature} has parameters an "
                   "earlier attempt already fitted")
        elif ended := [t for t in this_run if t.state.is_finished()]:
            errors = "; ".join(str(t.user_attrs.get(strategy.ERROR_ATTR, t.state.name))[:300] for t in ended)
            why = f"no COMPLETE trial under budget {budget.signature}: every tuning trial of {plugin} this run failed or was pruned: {errors}"
        else:
            why = f"no COMPLETE trial under budget {budget.signature}, and no trial ran (n_trials={budget.n_trials})"
        params, source = fallback() if fallback is not None else (default_params(plugin, search_space(plugin)), "the plugin defaults")
        text = f"{why}; using {source}"
        log(f"warning: {text}")
        return TuningResult(params=dict(params), best_value=math.nan, best_trial_number=-1, feasible=False, fallback=text, **common)
    best, feasible = select_best(candidates)
    return TuningResult(
        params=dict(best.params),
        best_value=float(best.values[0]),
        best_trial_number=best.number,
        feasible=feasible,
        best_scores={k: best.user_attrs[k] for k in TRIAL_SCORES if k in best.user_attrs},
        pareto_front=[strategy.describe_trial(t) for t in pareto_front(candidates)],
        **common,
    )
