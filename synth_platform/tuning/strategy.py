"""How a study searches: Optuna samplers and pruners by name, and the feasibility of trials under privacy
constraints. Pure logic: no Dagster here."""

from __future__ import annotations

import math
from typing import Any

import optuna

SAMPLERS = ("tpe", "random", "cmaes", "gp")
PRUNERS = ("median", "successive_halving", "none")
OBJECTIVES = ("single", "multi")  # utility only / utility and membership-inference AUC (Pareto front)
CONSTRAINTS_ATTR = "constraints"  # user attribute: one value per privacy constraint, <= 0 when satisfied


def trial_constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    """Optuna's `constraints_func`: the trial's stored constraint values. A trial that stopped before it was scored
    (pruned, timed out) counts as infeasible, so the sampler never learns from it as if it were private."""
    values = trial.user_attrs.get(CONSTRAINTS_ATTR)
    if not values:
        return [1.0]
    return [float(v) for v in values]


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    values = trial.user_attrs.get(CONSTRAINTS_ATTR)
    return bool(values) and all(math.isfinite(v) and v <= 0 for v in values)


def constraint_violation(trial: optuna.trial.FrozenTrial) -> float:
    """Sum of the positive constraint values: 0 for a feasible trial, how far it misses otherwise."""
    values = trial.user_attrs.get(CONSTRAINTS_ATTR)
    if not values:
        return math.inf
    return float(sum(max(0.0, v) for v in values))


def make_sampler(name: str, seed: int, objective: str = "single") -> optuna.samplers.BaseSampler:
    """The named sampler with the privacy constraints wired in where the sampler supports them.

    tpe (default) and gp handle constraints and (tpe) several objectives; random ignores both; cmaes is single
    objective and unconstrained (infeasible trials still lose at selection time)."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=trial_constraints, multivariate=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        if objective != "single":
            raise ValueError("The gp sampler is single-objective here: use sampler 'tpe' for objective 'multi'.")
        return optuna.samplers.GPSampler(seed=seed, constraints_func=trial_constraints)
    if name == "cmaes":
        if objective != "single":
            raise ValueError("CMA-ES is single-objective: use sampler 'tpe' for objective 'multi'.")
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise ValueError("The cmaes sampler needs the `cmaes` package: pip install cmaes.") from None
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise ValueError(f"Unknown sampler {name!r}; choose one of {list(SAMPLERS)}.")


def make_pruner(name: str, objective: str = "single") -> optuna.pruners.BasePruner:
    """Median or successive halving on the intermediate values trials report (ddpm: training loss per epoch);
    multi-objective studies cannot prune."""
    if name == "none" or objective == "multi":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=2)
    raise ValueError(f"Unknown pruner {name!r}; choose one of {list(PRUNERS)}.")


def check_strategy(sampler: str, pruner: str, objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective {objective!r}; choose one of {list(OBJECTIVES)}.")
    make_sampler(sampler, 0, objective)
    make_pruner(pruner, objective)


def directions(objective: str) -> list[str]:
    return ["minimize"] if objective == "single" else ["minimize", "minimize"]


def describe_trial(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": list(trial.values) if trial.values is not None else None,
        "feasible": is_feasible(trial),
        "params": dict(trial.params),
        "origin": trial.user_attrs.get("origin", "sampler"),
        **{k: trial.user_attrs[k] for k in ("membership_inference_auc", "exact_copy_rate", "utility_distance", "seconds", "fail_reason") if k in trial.user_attrs},
    }
