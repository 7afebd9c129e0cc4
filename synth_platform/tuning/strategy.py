"""How a study searches: Optuna samplers and pruners by name, and the feasibility of trials under privacy
constraints. Pure logic: no Dagster here."""

from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning

SAMPLERS = ("tpe", "random", "cmaes", "gp")
PRUNERS = ("median", "successive_halving", "none")
# utility only / utility plus how far a classifier tells the rows apart (detection AUC − 0.5; one value) / utility and
# membership-inference AUC (Pareto front)
OBJECTIVES = ("single", "fidelity", "multi")
CONSTRAINTS_ATTR = "constraints"  # user attribute: one value per privacy constraint, <= 0 when satisfied
ERROR_ATTR = "error"  # user attribute: why a trial failed (Optuna 5 keeps no fail reason of its own)
BUDGET_ATTR = "budget"  # user attribute: the trial's budget (study.TuningBudget.signature); trials compare only within one
# Two COMPLETE trials of the same budget before any pruning: with one, the "median" is a single trial's luck and
# every trial worse than it would be stopped; a tuning run adds only a few trials, so waiting for three would leave
# most runs unpruned. (Median pruning also used two start-up trials before this bound existed.)
MIN_COMPLETE_TRIALS_TO_PRUNE = 2


def constraint_values(trial: optuna.trial.FrozenTrial) -> list[float]:
    """The trial's constraint values: Optuna's own (`trial.set_constraint`) or else the user attribute."""
    if trial.constraints:
        return [float(v) for v in trial.constraints.values()]
    listed = trial.user_attrs.get(CONSTRAINTS_ATTR)
    if listed is None:
        return []
    values = list(listed.values()) if isinstance(listed, dict) else [listed] if isinstance(listed, (int, float)) else list(listed)
    return [float(v) for v in values]


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Every constraint value <= 0 (Optuna's convention). A trial with none recorded was never scored (failed,
    pruned or timed out before its privacy was measured), so it is not known to be feasible: False."""
    values = constraint_values(trial)
    return bool(values) and all(math.isfinite(v) and v <= 0 for v in values)


def constraint_violation(trial: optuna.trial.FrozenTrial) -> float:
    """Sum of the positive constraint values: 0 for a feasible trial, how far it misses otherwise."""
    values = constraint_values(trial)
    if not values:
        return math.inf
    return float(sum(max(0.0, v) for v in values))


def check_sampler(name: str, *, multi_objective: bool = False, constraints: bool = False) -> None:
    if name not in SAMPLERS:
        raise ValueError(f"Unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}.")
    if name == "cmaes":
        if importlib.util.find_spec("cmaes") is None:
            raise ImportError("The 'cmaes' sampler needs the cmaes package: pip install cmaes (or use sampler 'tpe' or 'gp').")
        if multi_objective or constraints:
            raise ValueError("Optuna's CMA-ES sampler handles neither several objectives nor constraints; use 'tpe' or 'gp'.")
    if name == "gp" and multi_objective:
        raise ValueError("The gp sampler is used single-objective here: use sampler 'tpe' for objective 'multi'.")


def make_sampler(name: str, seed: int, *, multi_objective: bool = False, constraints: bool = False) -> optuna.samplers.BaseSampler:
    """The named sampler. TPE runs with `constant_liar` (Optuna 5's default): trials still RUNNING on other
    workers count as bad, so parallel workers do not all crowd the same promising region. Constraints reach TPE
    and GP through the trials themselves (`trial.set_constraint`, Optuna 5; `constraints_func` is deprecated);
    random ignores them and CMA-ES cannot take them (refused)."""
    check_sampler(name, multi_objective=multi_objective, constraints=constraints)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        return optuna.samplers.CmaEsSampler(seed=seed)


class _SameBudgetStudy:
    """A view of a study whose trials are those of one budget (what a wrapped pruner compares with)."""

    def __init__(self, study: optuna.Study, budget: Any) -> None:
        self._study, self._budget = study, budget

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self._study.get_trials(deepcopy=deepcopy, states=states) if t.user_attrs.get(BUDGET_ATTR) == self._budget]

    @property
    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.get_trials()


class ComparablePruner(optuna.pruners.BasePruner):
    """Prunes a trial only against trials of its own budget (user attr "budget"): never while the study holds fewer
    than `min_complete` COMPLETE trials of that budget; otherwise `inner` decides, seeing only that budget's trials.
    The objective must set the budget attr before its first `trial.report`."""

    def __init__(self, inner: optuna.pruners.BasePruner, min_complete: int = MIN_COMPLETE_TRIALS_TO_PRUNE) -> None:
        self.inner, self.min_complete = inner, min_complete

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        view = _SameBudgetStudy(study, trial.user_attrs.get(BUDGET_ATTR))
        # `inner` is asked even when its answer is ignored: successive halving records each trial's rung values then
        prune = self.inner.prune(view, trial)  # type: ignore[arg-type]
        complete = view.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return prune and len(complete) >= self.min_complete


def make_pruner(name: str, objective: str = "single") -> optuna.pruners.BasePruner:
    """Median or successive halving on the intermediate values trials report (ddpm: training loss per epoch; the
    other plugins: utility distance at 25/50/75% of their training, study.checkpoint_epochs), each comparing a trial
    only with trials of its budget (`ComparablePruner`); multi-objective studies cannot prune."""
    if name == "none" or objective == "multi":
        return optuna.pruners.NopPruner()
    if name == "median":
        return ComparablePruner(optuna.pruners.MedianPruner(n_startup_trials=MIN_COMPLETE_TRIALS_TO_PRUNE, n_warmup_steps=2))
    if name == "successive_halving":
        return ComparablePruner(optuna.pruners.SuccessiveHalvingPruner(min_resource=2))
    raise ValueError(f"Unknown pruner {name!r}; choose one of {list(PRUNERS)}.")


def check_strategy(sampler: str, pruner: str, objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective {objective!r}; choose one of {list(OBJECTIVES)}.")
    # CMA-ES runs unconstrained: infeasible trials still lose at selection time (study.select_best)
    check_sampler(sampler, multi_objective=objective == "multi", constraints=sampler != "cmaes")
    make_pruner(pruner, objective)


def directions(objective: str) -> list[str]:
    return ["minimize", "minimize"] if objective == "multi" else ["minimize"]


def describe_trial(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": list(trial.values) if trial.values is not None else None,
        "feasible": is_feasible(trial),
        "params": dict(trial.params),
        "origin": trial.user_attrs.get("origin", "sampler"),
        **{k: trial.user_attrs[k] for k in ("membership_inference_auc", "exact_copy_rate", "utility_distance", "seconds", ERROR_ATTR) if k in trial.user_attrs},
    }
