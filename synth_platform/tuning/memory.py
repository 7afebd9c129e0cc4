"""Memory of past tuning: what worked on which kind of dataset, so a new study can start from it.

After a study, `TuningMemory.record` stores the dataset's meta-features (`meta_features`) with the study's best
feasible parameters and scores, the Dagster run that produced them and whether the warm start beat the cold trials
(`warm_start_outcome`). Before a new study, `warm_start_params` finds the most similar past datasets tuned with the
same plugin under the same privacy policy (`TuningMemory.nearest`, by `feature_distance`) and returns their best
parameters clipped into today's search space (`clip_to_space`), ready for `study.enqueue_trial`.

Pure logic: no Dagster here. The table's DDL lives in `sql/tuning_memory.<dialect>.sql`; it is created on first use
in the memory database (the platform's own database, SQLite or PostgreSQL).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import pandas as pd
import sqlalchemy as sa

from synth_platform.sampling.credentials import mask_url

from synth_platform import ddl
from synth_platform.generation.generators import DP_PLUGINS, PrivacyPolicy
from synth_platform.profiling.profile import DatasetProfile
from synth_platform.tuning.strategy import is_feasible

if TYPE_CHECKING:  # synthcity (and torch) are imported on first use
    from synthcity.plugins.core.distribution import Distribution

MEMORY_TABLE = "synth_tuning_memory"
WARM_START_ORIGIN = "warm start"  # prefix of the "origin" user attribute of every warm-start trial

# The meta-features, each with the fixed scale that `feature_distance` divides its differences by: one scale unit
# is a difference that matters about as much as any other feature's one unit.
FEATURE_SCALES: dict[str, float] = {
    "log10_rows": 1.0,  # log10 of the row count: 1 unit = 10 times more rows
    "log10_columns": 0.5,  # log10 of the modelled (non-identifier) columns: 1 unit = about 3 times more columns
    "numeric_share": 0.25,  # share of modelled columns that are numeric
    "categorical_share": 0.25,  # share of modelled columns that are categorical
    "datetime_share": 0.25,  # share of modelled columns that are datetimes
    "mean_log10_cardinality": 0.5,  # mean log10 of the categorical columns' distinct values (0: no categoricals)
    "max_log10_cardinality": 1.0,  # the largest of those: the widest one-hot block a generator must learn
    "mean_missing_share": 0.1,  # mean share of missing cells per modelled column
    "missing_columns_share": 0.25,  # share of modelled columns with at least one missing value
    "mean_log1p_abs_skewness": 0.5,  # mean log(1 + |sample skewness|) of the numeric columns (0: none, or symmetric)
}


def meta_features(frame: pd.DataFrame, profile: DatasetProfile) -> dict[str, float]:
    """The dataset's meta-features (see `FEATURE_SCALES` for each one's meaning), all finite floats.

    Identifier columns are left out of everything but `log10_rows`: generators never see them. `frame` is the
    source-shaped table `profile` describes; only its numeric columns are read (for the skewness)."""
    modelled = [column for column in profile.columns if column.modelled]
    if not modelled:
        raise ValueError("The profile has no modelled columns (only identifiers): there is nothing to describe.")
    n_columns = len(modelled)
    categorical = [column for column in modelled if column.kind == "categorical"]
    numeric = [column.name for column in modelled if column.kind == "numeric"]
    missing = [column.name for column in numeric if column not in frame.columns]
    if missing:
        raise ValueError(f"Columns {missing} of the profile are not in the frame: pass the frame the profile was made from.")
    log_cardinalities = [math.log10(max(1, column.cardinality)) for column in categorical]
    skewness = []
    for name in numeric:
        value = pd.to_numeric(frame[name], errors="coerce").dropna().skew()
        skewness.append(math.log1p(abs(float(value))) if np.isfinite(value) else 0.0)
    return {
        "log10_rows": math.log10(max(1, profile.n_rows)),
        "log10_columns": math.log10(n_columns),
        "numeric_share": len(numeric) / n_columns,
        "categorical_share": len(categorical) / n_columns,
        "datetime_share": sum(column.kind == "datetime" for column in modelled) / n_columns,
        "mean_log10_cardinality": float(np.mean(log_cardinalities)) if log_cardinalities else 0.0,
        "max_log10_cardinality": max(log_cardinalities, default=0.0),
        "mean_missing_share": float(np.mean([column.missing_fraction for column in modelled])),
        "missing_columns_share": sum(column.has_missing for column in modelled) / n_columns,
        "mean_log1p_abs_skewness": float(np.mean(skewness)) if skewness else 0.0,
    }


def feature_distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Root mean square of the scaled differences: sqrt(mean over features of ((a - b) / scale)²).

    Over the features of `FEATURE_SCALES` that both sides have (entries recorded before a feature was added still
    compare); infinite when they share none. 0 means alike; 1 means a typical feature differs by one scale unit."""
    shared = [name for name in FEATURE_SCALES if name in a and name in b]
    if not shared:
        return math.inf
    return math.sqrt(sum(((a[name] - b[name]) / FEATURE_SCALES[name]) ** 2 for name in shared) / len(shared))


def policy_signature(plugin: str, privacy: PrivacyPolicy) -> str:
    """The privacy policy as the memory compares it: parameters tuned under one policy are reused only under the
    same one. Non-DP plugins ignore the policy, so theirs is "none"."""
    if plugin not in DP_PLUGINS:
        return "none"
    delta = "1/(10n)" if privacy.delta is None else f"{privacy.delta:g}"
    return f"epsilon={privacy.epsilon:g},delta={delta}"


@dataclass
class TuningMemoryEntry:
    plugin: str
    privacy_policy: str  # policy_signature(plugin, policy)
    dataset_fingerprint: str
    meta_features: dict[str, float]
    best_params: dict[str, Any]  # the best feasible trial's parameters (searched ones only)
    best_value: float  # its utility objective, lower is better
    study_name: str
    metrics: dict[str, float] = field(default_factory=dict)  # more scores of the best trial, e.g. {"mia_auc": 0.52}
    storage: str | None = None  # Optuna storage URL; the password is masked when recorded
    best_trial_number: int | None = None
    budget: str | None = None  # TuningBudget.signature: values compare only under the same budget
    run_id: str | None = None  # the Dagster run that ran the study
    trials_in_study: int | None = None
    warm_start_trials: int = 0  # fields of warm_start_outcome(...)
    warm_start_best_value: float | None = None
    cold_best_value: float | None = None
    warm_start_won: bool | None = None  # None: no feasible warm or no feasible cold trial to compare
    id: int | None = None  # set by the database
    created_at: datetime | str | None = None  # set by the database

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_JSON_FIELDS = ("meta_features", "best_params", "metrics")


def ddl_path(dialect: str) -> Path:
    return ddl.ddl_path("tuning_memory", dialect, "tuning-memory")


def ensure_memory_table(engine: sa.Engine) -> sa.Table:
    """Create the memory table from its DDL file when missing; return it reflected."""
    return ddl.ensure_table(engine, MEMORY_TABLE, ddl_path(engine.dialect.name))


def _masked(url: str | None) -> str | None:
    return None if url is None else mask_url(url)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be stored as JSON; pass plain numbers, strings or bools.")


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


class TuningMemory(ddl.TableStore):
    """The tuning memory at a SQLAlchemy `url` (SQLite or PostgreSQL); its table is created on first use."""

    ensure = staticmethod(ensure_memory_table)

    def record(self, entry: TuningMemoryEntry) -> int:
        """Store `entry` (its storage URL masked); return its id."""
        if not math.isfinite(float(entry.best_value)):
            raise ValueError(
                f"best_value must be a finite number, got {entry.best_value!r}: record only a study with a feasible best trial."
            )
        row = {key: value for key, value in entry.to_dict().items() if key not in ("id", "created_at")}
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], default=_json_default, sort_keys=True)
        row["storage"] = _masked(entry.storage)
        row["best_value"] = float(entry.best_value)
        row["warm_start_best_value"] = _finite_or_none(entry.warm_start_best_value)
        row["cold_best_value"] = _finite_or_none(entry.cold_best_value)
        with self._table() as (engine, table), engine.begin() as conn:
            return int(conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one())

    def entries(self, plugin: str | None = None, privacy_policy: str | None = None) -> list[TuningMemoryEntry]:
        """Every entry (or those of `plugin` and `privacy_policy`), oldest first."""
        with self._table() as (engine, table):
            query = sa.select(table).order_by(table.c.id)
            if plugin is not None:
                query = query.where(table.c.plugin == plugin)
            if privacy_policy is not None:
                query = query.where(table.c.privacy_policy == privacy_policy)
            with engine.connect() as conn:
                rows = [dict(row._mapping) for row in conn.execute(query)]
        names = {f.name for f in fields(TuningMemoryEntry)}
        entries = []
        for row in rows:
            for name in _JSON_FIELDS:
                row[name] = json.loads(row[name])
            if row["warm_start_won"] is not None:
                row["warm_start_won"] = bool(row["warm_start_won"])
            entries.append(TuningMemoryEntry(**{key: value for key, value in row.items() if key in names}))
        return entries

    def nearest(
        self,
        plugin: str,
        privacy_policy: str,
        features: dict[str, float],
        k: int = 3,
        exclude_fingerprint: str | None = None,
    ) -> list[tuple[float, TuningMemoryEntry]]:
        """The `k` past datasets nearest to `features` (by `feature_distance`) tuned with `plugin` under
        `privacy_policy`, nearest first, as (distance, entry).

        One entry per dataset fingerprint: its latest, since the study is persisted and its latest record has seen
        every earlier trial. `exclude_fingerprint` leaves a dataset out (the one being tuned: its own study already
        holds its trials)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        latest: dict[str, TuningMemoryEntry] = {}
        for entry in self.entries(plugin, privacy_policy):
            if entry.dataset_fingerprint != exclude_fingerprint:
                latest[entry.dataset_fingerprint] = entry  # entries come oldest first
        scored = [(feature_distance(features, entry.meta_features), entry) for entry in latest.values()]
        scored = [(distance, entry) for distance, entry in scored if math.isfinite(distance)]
        scored.sort(key=lambda pair: (pair[0], -(pair[1].id or 0)))
        return scored[:k]


def _nearest_choice(value: Any, choices: Sequence[Any]) -> Any:
    """The choice equal to `value`; else, for a number among numeric choices, the nearest one (on a log scale
    when all are positive: learning rates, batch sizes); else None."""
    for choice in choices:
        if type(choice) is type(value) and choice == value:
            return choice
    for choice in choices:
        if choice == value and not isinstance(choice, bool) and not isinstance(value, bool):
            return choice  # 500.0 stored for the choice 500
    numeric = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)]
    if not _is_number(value) or not numeric:
        return None
    if value > 0 and all(c > 0 for c in numeric):
        return min(numeric, key=lambda c: abs(math.log(c) - math.log(value)))
    return min(numeric, key=lambda c: abs(c - value))


def _is_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def clip_to_space(params: dict[str, Any], space: Sequence[Distribution]) -> dict[str, Any]:
    """`params` made acceptable to `search_space.suggest` on `space`, in the order of the space.

    Names the space does not search are dropped. Numbers are clipped into [low, high]; integers are rounded to the
    nearest point of the grid low + k·step that `trial.suggest_int` uses (log-scaled integers: to the nearest
    integer); log ranges stay positive because low > 0. A categorical value not among the choices becomes the
    nearest numeric choice when value and choices are numbers, else it is dropped, as is a non-number for a numeric
    range. Values are plain Python, so `study.enqueue_trial` can store them and the trial suggests exactly them.
    """
    from synthcity.plugins.core.distribution import (
        CategoricalDistribution,
        FloatDistribution,
        IntegerDistribution,
        IntLogDistribution,
    )

    clipped: dict[str, Any] = {}
    for d in space:
        if d.name not in params:
            continue
        value = params[d.name]
        if isinstance(d, CategoricalDistribution):
            choice = _nearest_choice(value.item() if isinstance(value, np.generic) else value, list(d.choices))
            if choice is not None:
                clipped[d.name] = choice
            continue
        if not _is_number(value):
            continue
        low, high = d.low, d.high
        if isinstance(d, IntLogDistribution):
            clipped[d.name] = int(min(max(round(float(value)), math.ceil(low)), math.floor(high)))
        elif isinstance(d, IntegerDistribution):
            low, high, step = int(low), int(high), int(d.step)
            last = (high - low) // step  # suggest_int lowers high to the last grid point
            clipped[d.name] = low + step * int(min(max(round((float(value) - low) / step), 0), last))
        elif isinstance(d, FloatDistribution):  # LogDistribution included
            clipped[d.name] = float(min(max(float(value), float(low)), float(high)))
        else:
            raise TypeError(f"No clipping rule for {type(d).__name__} ({d.name}); add one beside search_space.suggest's.")
    return clipped


@dataclass
class WarmStart:
    params: dict[str, Any]  # clipped into today's space
    origin: str  # "warm start from <study> trial <n>"
    distance: float  # feature_distance to the dataset it came from
    source_fingerprint: str

    @property
    def user_attrs(self) -> dict[str, Any]:
        """For `study.enqueue_trial(..., user_attrs=...)`: marks the trial as warm for `warm_start_outcome`."""
        return {"origin": self.origin, "warm_start_distance": self.distance, "warm_start_dataset": self.source_fingerprint}


def warm_start_params(
    memory: TuningMemory,
    plugin: str,
    privacy_policy: str,
    features: dict[str, float],
    space: Sequence[Distribution],
    k: int = 3,
    exclude_fingerprint: str | None = None,
) -> list[WarmStart]:
    """The best parameters of the `k` nearest past datasets (same plugin and policy), clipped into `space`,
    nearest first; a parameter set equal to a nearer one, or left empty by the clipping, is skipped."""
    starts: list[WarmStart] = []
    seen: set[str] = set()
    for distance, entry in memory.nearest(plugin, privacy_policy, features, k, exclude_fingerprint):
        params = clip_to_space(entry.best_params, space)
        key = json.dumps(params, sort_keys=True, default=str)
        if not params or key in seen:
            continue
        seen.add(key)
        trial = f" trial {entry.best_trial_number}" if entry.best_trial_number is not None else ""
        starts.append(WarmStart(params, f"{WARM_START_ORIGIN} from {entry.study_name}{trial}", distance, entry.dataset_fingerprint))
    return starts


def is_warm_start(trial: optuna.trial.FrozenTrial) -> bool:
    return str(trial.user_attrs.get("origin", "")).startswith(WARM_START_ORIGIN)


def warm_start_outcome(trials: Sequence[optuna.trial.FrozenTrial]) -> dict[str, Any]:
    """Did the warm start beat the cold trials? Over the COMPLETE feasible trials given (pass only comparable ones,
    e.g. those of one budget): the best warm value, the best cold value (every trial not marked warm: the plugin
    defaults and the sampler's own) and whether warm was strictly lower; `warm_start_won` is None when either side
    has no such trial. The keys are the `TuningMemoryEntry` fields of the same names. In multi-objective studies
    the value compared is the first objective (the utility distance)."""
    warm_trials = [t for t in trials if is_warm_start(t)]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.values and is_feasible(t)]
    warm = [float(t.values[0]) for t in done if is_warm_start(t)]
    cold = [float(t.values[0]) for t in done if not is_warm_start(t)]
    warm_best = min(warm) if warm else None
    cold_best = min(cold) if cold else None
    return {
        "warm_start_trials": len(warm_trials),
        "warm_start_best_value": warm_best,
        "cold_best_value": cold_best,
        "warm_start_won": None if warm_best is None or cold_best is None else warm_best < cold_best,
    }
