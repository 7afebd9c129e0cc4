"""First rule set of the auto-optimizer: from the checks that failed to one change of run config.

Pure logic: no Dagster here. Configs are plain dicts of the assets' config fields (`tuned_hyperparameters`,
`synthetic_table`); a missing field means the asset's default. Privacy failures are handled first: a generator that
leaks is not fixed by training it longer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synth_platform.generation.generators import DEFAULT_TRAINING_STEPS, DP_PLUGINS
from synth_platform.tuning.study import TuningBudget

MAX_ATTEMPTS = 3
MAX_TRAINING_STEPS = 40_000
MIN_TRAINING_STEPS = 500
PRIVACY_CHECKS = ("membership_inference_auc_within_threshold", "duplicate_rate_within_threshold")
UTILITY_CHECKS = ("ks_mean_within_threshold", "correlation_delta_within_threshold")
DP_FALLBACK_PLUGIN = "dpgan"


@dataclass(frozen=True)
class Adjustment:
    failure: str  # "privacy" or "utility"
    change: str  # one sentence for people and for the run's tags
    tuning: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)


def training_steps(tuning: dict[str, Any], generation: dict[str, Any]) -> int:
    plugin = tuning.get("plugin", "ddpm")
    return int(generation.get("training_steps") or DEFAULT_TRAINING_STEPS.get(plugin, 2000))


def propose_adjustment(failed_checks: list[str], tuning: dict[str, Any], generation: dict[str, Any]) -> Adjustment | None:
    """The next config for a run whose `failed_checks` failed, or None when no rule applies."""
    failed = set(failed_checks)
    plugin = tuning.get("plugin", "ddpm")
    steps = training_steps(tuning, generation)

    if "membership_inference_auc_within_threshold" in failed and plugin not in DP_PLUGINS:
        return Adjustment(
            failure="privacy",
            change=f"membership inference too easy: switch {plugin} to differentially private {DP_FALLBACK_PLUGIN}",
            tuning={**tuning, "plugin": DP_FALLBACK_PLUGIN},
            generation={**generation, "training_steps": 0},
        )
    if failed & set(PRIVACY_CHECKS):
        new_steps = max(MIN_TRAINING_STEPS, steps // 2)
        if new_steps == steps:
            return None
        return Adjustment(
            failure="privacy",
            change=f"generator memorises training rows: halve training steps {steps} -> {new_steps}",
            tuning=dict(tuning),
            generation={**generation, "training_steps": new_steps},
        )
    if failed & set(UTILITY_CHECKS):
        new_steps = min(MAX_TRAINING_STEPS, steps * 2)
        n_trials = int(tuning.get("n_trials", TuningBudget.n_trials))
        if new_steps == steps:
            return None
        return Adjustment(
            failure="utility",
            change=f"synthetic columns too far from the source: train longer {steps} -> {new_steps} steps, "
            f"tune {n_trials} -> {n_trials + 2} trials",
            tuning={**tuning, "n_trials": n_trials + 2},
            generation={**generation, "training_steps": new_steps},
        )
    return None
