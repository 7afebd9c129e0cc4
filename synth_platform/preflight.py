"""Every setting of a run checked before anything expensive, every problem listed at once.

Pure logic: no Dagster here. `config_problems` checks the run config of each step (given as plain dicts, one per
asset, defaults filled in) on its own: ranges, names from fixed lists, budgets. `sample_problems` checks the same
config against the rows the source read returned (columns named in the config exist; enough rows for training,
the holdout and the report). The first asset of the chain runs both, so a bad setting anywhere in the run is
refused in seconds, before tuning or training; each later asset checks its own section again (a run may start
further down the chain).

Each problem names the setting (`ops.<asset>.config.<field>`) or the column and says what to change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The smallest source the whole chain can work on: a generator needs rows to learn from, the membership-inference
# attack and the TSTR score need holdout rows, and rare-value coding needs several rows per value.
MIN_TRAINING_ROWS = 80
MIN_HOLDOUT_ROWS = 20
MAX_SEED = 2**31 - 1
MIN_PRIVACY_ROWS = 20


@dataclass(frozen=True)
class Problem:
    setting: str  # ops.<asset>.config.<field>, or a column
    message: str  # what is wrong and what to do

    def __str__(self) -> str:
        return f"- {self.setting}: {self.message}"


class PreflightError(ValueError):
    """The run was refused before anything expensive; the message lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"The run was refused before tuning or training: {count} in its settings. Fix them and run again.\n"
            + "\n".join(str(p) for p in problems)
        )


def raise_if_any(problems: list[Problem]) -> None:
    if problems:
        raise PreflightError(problems)


class _Checker:
    def __init__(self, asset: str, config: Mapping[str, Any]):
        self.asset, self.config, self.problems = asset, config, []

    def setting(self, key: str) -> str:
        return f"ops.{self.asset}.config.{key}"

    def add(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.setting(key), message))

    def number(self, key: str, low: float | None = None, high: float | None = None, *, integer: bool = False,
               low_open: bool = False, high_open: bool = False, hint: str = "") -> None:
        if key not in self.config:
            return
        value = self.config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
            self.add(key, f"must be {'a whole number' if integer else 'a number'}, got {value!r}.{hint}")
            return
        if not math.isfinite(float(value)):
            self.add(key, f"must be finite, got {value!r}.{hint}")
            return
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            left = "" if low is None else ("(" if low_open else "[") + _shown(low)
            right = "" if high is None else _shown(high) + (")" if high_open else "]")
            span = f"in {left or '(-inf'}, {right or 'inf)'}"
            self.add(key, f"must lie {span}, got {value!r}.{hint}")

    def choice(self, key: str, allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        if key in self.config and self.config[key] not in allowed:
            self.add(key, f"must be one of {allowed}, got {self.config[key]!r}.")


def _shown(number: float) -> str:
    return f"{int(number):,}" if float(number).is_integer() and abs(number) >= 1000 else f"{number:g}"


def _seed(check: _Checker) -> None:
    check.number("seed", 0, MAX_SEED, integer=True, hint=" Use a seed between 0 and 2147483647.")


def _source_sample(check: _Checker) -> None:
    _seed(check)
    check.number("holdout_fraction", 0.0, 0.5, low_open=True,
                 hint=" The holdout is for evaluation only; more than half of the rows leaves too few to learn from.")
    check.number("max_rows", 0, integer=True, hint=" 0 reads every matching row (up to row_cap).")
    check.number("sample_fraction", 0.0, 1.0, hint=" 0 turns it off.")
    check.number("statement_timeout_s", 0.0, 86_400.0, low_open=True)
    check.number("row_cap", MIN_TRAINING_ROWS + MIN_HOLDOUT_ROWS, integer=True)
    check.number("noise_epsilon", 0.0, hint=" 0 turns the noise off.")
    check.number("privacy_budget_epsilon", 0.0, hint=" The table's total epsilon over all runs; 0 means no limit.")
    max_rows, row_cap = check.config.get("max_rows"), check.config.get("row_cap")
    if isinstance(max_rows, int) and isinstance(row_cap, int) and max_rows > row_cap:
        check.add("max_rows", f"is {max_rows}, above row_cap ({row_cap}): lower max_rows or raise row_cap.")


def _profiled_dataset(check: _Checker) -> None:
    from synth_platform.profiling.profile import RARE_CATEGORY_HANDLINGS, SEMANTIC_TYPES, TREATMENTS

    for key, allowed in (("column_types", SEMANTIC_TYPES), ("column_treatments", TREATMENTS)):
        for column, value in dict(check.config.get(key) or {}).items():
            if value not in allowed:
                check.add(f"{key}.{column}", f"must be one of {list(allowed)}, got {value!r}.")
    check.number("missing_rate_tolerance", 0.0, 1.0)
    check.number("rare_value_k", 1, 1_000_000, integer=True, hint=" 1 turns rare-value coding off.")
    check.choice("rare_category_handling", RARE_CATEGORY_HANDLINGS)


def _tuned_hyperparameters(check: _Checker) -> None:
    from synth_platform.generation.generators import DEVICES, SUPPORTED_PLUGINS
    from synth_platform.tuning.strategy import OBJECTIVES, PRUNERS, SAMPLERS

    _seed(check)
    check.choice("plugin", SUPPORTED_PLUGINS)
    check.choice("sampler", SAMPLERS)
    check.choice("pruner", PRUNERS)
    check.choice("objective", OBJECTIVES)
    check.choice("device", DEVICES)
    check.number("n_trials", 0, 10_000, integer=True, hint=" 0 adds no trials: the study's existing comparable trials are chosen from.")
    check.number("trial_steps", 1, 10_000_000, integer=True)
    check.number("tuning_rows", 20, integer=True)
    check.number("validation_fraction", 0.0, 1.0, low_open=True, high_open=True)
    check.number("timeout_s", 0.0, low_open=True)
    check.number("trial_timeout_s", 0.0, low_open=True)
    check.number("mia_auc_max", 0.5, 1.0, hint=" An AUC of 0.5 is a coin toss: no limit can be stricter.")
    check.number("exact_copy_rate_max", 0.0, 1.0)
    check.number("epsilon", 0.0, low_open=True)
    check.number("workers", 1, 64, integer=True)
    check.number("threads", 0, 1024, integer=True, hint=" 0 uses the available cores.")


def _synthetic_table(check: _Checker) -> None:
    from synth_platform.generation.generators import DEVICES

    _seed(check)
    check.choice("device", DEVICES)
    check.number("time_budget_minutes", 0.0, 7 * 24 * 60.0, hint=" 0 turns the time budget off.")
    check.number("training_steps", 0, 100_000_000, integer=True, hint=" 0 lets the time budget or the plugin's default decide.")
    check.number("num_rows", 0, 100_000_000, integer=True, hint=" 0 generates as many rows as the training rows.")
    check.number("batch_size", 0, 1_000_000, integer=True, hint=" 0 uses the tuned value.")
    check.number("model_width", 0, 100_000, integer=True, hint=" 0 uses the tuned value.")
    check.number("max_regeneration_rounds", 1, 1_000, integer=True)
    check.number("sampling_steps", 1, 100_000, integer=True)
    check.number("chunk_rows", 1, 10_000_000, integer=True)
    check.number("threads", 0, 1024, integer=True, hint=" 0 uses the available cores.")


def _privacy_utility_report(check: _Checker) -> None:
    _seed(check)
    for key in ("ks_mean_max", "correlation_delta_max", "exact_copy_rate_max"):
        check.number(key, 0.0, 1.0)
    check.number("mia_auc_max", 0.5, 1.0, hint=" An AUC of 0.5 is a coin toss: no limit can be stricter.")
    check.number("detection_auc_max", 0.5, 1.0,
                 hint=" An AUC of 0.5 means synthetic rows cannot be told from real ones: no limit can be stricter.")
    check.number("tstr_ratio_min", 0.0, 1.0,
                 hint=" A ratio of 1 asks models trained on synthetic rows to score as well as those trained on real rows.")
    if "fidelity_checks_blocking" in check.config and not isinstance(check.config["fidelity_checks_blocking"], bool):
        check.add("fidelity_checks_blocking", f"must be true or false, got {check.config['fidelity_checks_blocking']!r}.")
    check.number("privacy_rows", MIN_PRIVACY_ROWS, 10_000_000, integer=True)
    check.number("bootstrap_resamples", 0, 100_000, integer=True, hint=" 0 (or 1) turns the intervals off.")
    check.number("risk_attacks", 1, 1_000_000, integer=True)


SECTIONS = {
    "source_sample": _source_sample,
    "profiled_dataset": _profiled_dataset,
    "tuned_hyperparameters": _tuned_hyperparameters,
    "synthetic_table": _synthetic_table,
    "privacy_utility_report": _privacy_utility_report,
}


def config_problems(configs: Mapping[str, Mapping[str, Any]]) -> list[Problem]:
    """The problems of each asset's config on its own (`configs`: asset name -> its config as a dict)."""
    problems: list[Problem] = []
    for asset, config in configs.items():
        section = SECTIONS.get(asset)
        if section is not None:
            check = _Checker(asset, config)
            section(check)
            problems.extend(check.problems)
    return problems


def sample_problems(configs: Mapping[str, Mapping[str, Any]], columns: list[str], training_rows: int, holdout_rows: int) -> list[Problem]:
    """The problems of the run config against the rows read: the columns it names, and the row counts."""
    problems: list[Problem] = []
    known = set(columns)

    def column(asset: str, key: str, name: Any, what: str) -> None:
        if name and name not in known:
            near = [c for c in columns if c.lower() == str(name).lower()]
            hint = f" Did you mean {near[0]!r}?" if near else f" The sample has {sorted(columns)}."
            problems.append(Problem(f"ops.{asset}.config.{key}", f"{what} {name!r} is not a column of the sample.{hint}"))

    report = configs.get("privacy_utility_report", {})
    column("privacy_utility_report", "target_column", report.get("target_column"), "The target column")
    column("privacy_utility_report", "risk_secret", report.get("risk_secret"), "The secret column")
    profile = configs.get("profiled_dataset", {})
    for key in ("column_types", "column_treatments"):
        for name in dict(profile.get(key) or {}):
            column("profiled_dataset", f"{key}.{name}", name, "The column")
    for name in profile.get("acknowledge_identifiers") or []:
        column("profiled_dataset", "acknowledge_identifiers", name, "The column")

    if training_rows < MIN_TRAINING_ROWS or holdout_rows < MIN_HOLDOUT_ROWS:
        problems.append(Problem(
            "ops.source_sample.config.max_rows",
            f"the sample holds {training_rows} training and {holdout_rows} holdout rows; the chain needs at least "
            f"{MIN_TRAINING_ROWS} and {MIN_HOLDOUT_ROWS} (a generator learns from the first, the privacy and utility "
            "checks are measured on the second). Read more rows (max_rows, filters, sample_fraction) or a larger table.",
        ))
    return problems


def profile_problems(configs: Mapping[str, Mapping[str, Any]], profile: Any) -> list[Problem]:
    """The problems of the run config against the profile (after profiling, before tuning): the report's target
    and secret columns must be columns the report compares (not identifiers, dropped or left-out columns)."""
    compared = profile.by_kind("numeric", "datetime", "categorical")
    known = {column.name: column for column in profile.columns}
    report = configs.get("privacy_utility_report", {})
    problems = []
    for key, what in (("target_column", "The target column"), ("risk_secret", "The secret column")):
        name = report.get(key)
        if not name or name in compared:
            continue
        if name in known:
            why = f"it is profiled as {known[name].kind} and {known[name].treatment!r}" + (
                f" ({known[name].identifier_reason})" if known[name].identifier_reason else "")
        elif name in getattr(profile, "left_out_columns", {}):
            why = f"it was left out: {profile.left_out_columns[name]}"
        else:
            continue  # not a column at all: sample_problems says so
        problems.append(Problem(f"ops.privacy_utility_report.config.{key}",
                                f"{what} {name!r} is not compared by the report: {why}. Choose one of {compared}, or leave it empty."))
    if not compared:
        problems.append(Problem("ops.source_sample.config.columns",
                                "no column of the sample can be modelled and compared (every one is an identifier, "
                                "free text, dropped or left out): read other columns or set column_types."))
    return problems
