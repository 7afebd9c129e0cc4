"""The optimizer learns which of its rules work: every adjusted attempt is remembered with what it did to the metric
it targeted, and the rules for a failure are ranked by how often they fixed it on similar datasets.

How a rule is scored. Each attempt's outcome counts as a success of 1 when the targeted metric passed its threshold
afterwards (fixed), 0.5 when it moved the right way without passing (improved: lower, or higher for the "at least"
metric `tstr_ratio`), and 0 when it stayed the same or got worse.
For each rule and failure kind the optimizer keeps a Beta estimate of the chance that the rule helps:

- Prior: the hand-written order of `policy.POLICY`. The first rule for a failure starts at a mean of 0.70 and the
  last at 0.40, evenly spaced in between (a lone rule: 0.70), worth `prior_strength` outcomes (2 by default):
  Beta(m·s, (1 − m)·s).
- Evidence: every remembered outcome of that rule for that failure adds w × success to α and w × (1 − success) to
  β, where w = exp(−distance / similarity_scale) and distance is `tuning.memory.feature_distance` between today's
  dataset and the one the outcome came from (0 for the same kind of dataset, so w = 1; a dataset 3 scale units
  away counts 0.05 of an outcome).
- Ranking: by the posterior mean α / (α + β), highest first; equal means keep the hand-written order. Without
  evidence the ranking is exactly the hand-written order.

Within one chain, `chain_lessons` names the rules not to repeat (their change made the targeted metric worse or
did not move it) and those that made it worse, whose opposite (`OPPOSITE_RULES`) may be tried first.

Pure logic: no Dagster here. The table's DDL lives in `sql/optimizer_memory.<dialect>.sql`; it is created on first
use in the memory database (SQLite or PostgreSQL). Only metric values, names and meta-features are stored: never a
value of the source.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from synth_platform import ddl
from synth_platform.evaluation.thresholds import AT_LEAST, Thresholds, direction_of, tstr_ratio
from synth_platform.generation.generators import DEFAULT_TRAINING_STEPS
from synth_platform.optimizer.diagnosis import (
    CORRELATION,
    DOWNSTREAM,
    DUPLICATES,
    FAILURE_OF_CHECK,
    FAILURE_PRIORITY,
    FIDELITY,
    PRIVACY,
    UTILITY,
    Diagnosis,
    Finding,
)
from synth_platform.tuning.memory import feature_distance

OUTCOME_TABLE = "synth_optimizer_memory"
TOLERANCE = 1e-9  # absolute: a target metric that moved less than this did not move
PRIOR_FIRST, PRIOR_LAST = 0.7, 0.4  # prior means of the first and last hand-written rule of a failure

# The metric each failure kind targets: lower is better for all but `tstr_ratio` (an "at least" metric: higher is
# better; `thresholds.direction_of`).
TARGET_METRIC: dict[str, str] = {
    PRIVACY: "membership_inference_auc",
    DUPLICATES: "exact_copy_rate",
    CORRELATION: "correlation_delta",
    UTILITY: "ks_mean",
    FIDELITY: "detection_auc",
    DOWNSTREAM: "tstr_ratio",
}
JUDGED_METRICS: tuple[str, ...] = tuple(TARGET_METRIC[failure] for failure in FAILURE_PRIORITY)

OPPOSITE_RULES: dict[str, str] = {
    "fewer_steps_for_privacy": "train_longer",
    "fewer_steps_for_copies": "train_longer",
    "train_longer": "fewer_steps_for_privacy",
    "train_longer_for_correlation": "fewer_steps_for_privacy",
    "larger_batch": "wider_model",
    "wider_model": "larger_batch",
}
"""For a rule whose attempt made its target worse, the rule to try instead. "Opposite" is the change in the other
direction on the same knob (fewer training steps ↔ more), or the other knob for the same aim (a larger batch ↔ a
wider model, both for the joint structure). Only a suggestion of order: the policy (not this module) decides whether
the opposite applies and applies it."""


def _number_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class AttemptOutcome:
    """What one adjusted attempt of a chain did: the rule applied to its parent's failure, and the judged metrics
    before (the parent's report) and after (this attempt's report). Lower is better for every metric but an "at
    least" one (`tstr_ratio`), for which higher is: `improved`, `worse` and `fixed` follow the target's direction."""

    chain: str  # the optimizer chain (its first run)
    attempt: int  # 1 for the first adjusted re-run
    run_id: str  # this attempt's Dagster run
    parent_run_id: str  # the run whose failed report the rule answered
    dataset_fingerprint: str
    meta_features: dict[str, float]  # tuning.memory.meta_features of the dataset
    diagnosis_kind: str  # the parent's diagnosis: one failure kind, "several (a+b)"
    failure: str  # the failure kind the rule answered
    rule: str  # policy rule name
    change: str  # the change in words
    target_metric: str  # TARGET_METRIC[failure]
    before: dict[str, float | None]  # the parent report's judged metrics (None: not applicable)
    after: dict[str, float | None]  # this attempt's
    target_threshold: float
    green_after: bool  # every check of this attempt passed
    plugin: str = ""  # the generator this attempt fitted ("": not known, an outcome recorded before plugins were)
    steps_after: int | None = None  # the training steps its final fit trained (None: not known)
    created_at: datetime | str | None = field(default=None, compare=False)  # set by the database
    id: int | None = field(default=None, compare=False)  # set by the database

    def __post_init__(self) -> None:
        if int(self.attempt) < 1:
            raise ValueError(f"attempt must be at least 1 (an adjusted re-run), got {self.attempt}.")
        if self.failure not in TARGET_METRIC:
            raise ValueError(f"Unknown failure kind {self.failure!r}; expected one of {list(TARGET_METRIC)}.")
        for side, values in (("before", self.before), ("after", self.after)):
            if _number_or_none(values.get(self.target_metric)) is None:
                raise ValueError(f"The target metric {self.target_metric!r} has no value {side} the change.")
        if _number_or_none(self.target_threshold) is None:
            raise ValueError(f"The threshold of {self.target_metric!r} must be a finite number, got {self.target_threshold!r}.")

    @property
    def target_before(self) -> float:
        return float(self.before[self.target_metric])

    @property
    def target_after(self) -> float:
        return float(self.after[self.target_metric])

    @property
    def higher_is_better(self) -> bool:
        return direction_of(self.target_metric) == AT_LEAST

    @property
    def _gain(self) -> float:
        """How far the target moved the right way (negative: the wrong way)."""
        change = self.target_after - self.target_before
        return change if self.higher_is_better else -change

    @property
    def improved(self) -> bool:
        """The target metric moved the right way (lower; higher for an "at least" metric) by more than `TOLERANCE`."""
        return self._gain > TOLERANCE

    @property
    def worse(self) -> bool:
        """The target metric moved the wrong way (higher; lower for an "at least" metric) by more than `TOLERANCE`."""
        return self._gain < -TOLERANCE

    @property
    def no_effect(self) -> bool:
        """The target metric did not move (within `TOLERANCE`): e.g. the change never reached the fit."""
        return not self.improved and not self.worse

    @property
    def fixed(self) -> bool:
        """The target metric passes its threshold after the change (at or below it; at or above for "at least")."""
        if self.higher_is_better:
            return self.target_after >= self.target_threshold
        return self.target_after <= self.target_threshold

    @property
    def success(self) -> float:
        """1.0 when the change fixed its target (it now passes its threshold), 0.5 when it improved the target without
        fixing it, 0.0 otherwise (no effect, or worse)."""
        if self.fixed:
            return 1.0
        return 0.5 if self.improved else 0.0


def _judged_metrics(report: Mapping[str, Any]) -> dict[str, float | None]:
    """The judged metrics of a report: from `metrics`, else from the verdict that judges them; None when neither has
    a value (not applicable to the table). A report from before `tstr_ratio` was a metric gets it from its scores."""
    verdict_values = {v.get("metric"): v.get("value") for v in report.get("verdicts", {}).values()}
    metrics = dict(report.get("metrics") or {})
    if metrics.get("tstr_ratio") is None and "tstr_ratio" not in verdict_values:
        metrics["tstr_ratio"] = tstr_ratio(_number_or_none(metrics.get("tstr_score")), _number_or_none(metrics.get("trtr_score")))
    return {name: _number_or_none(metrics[name] if metrics.get(name) is not None else verdict_values.get(name))
            for name in JUDGED_METRICS}


def _threshold(report: Mapping[str, Any], metric: str) -> float | None:
    for verdict in report.get("verdicts", {}).values():
        if verdict.get("metric") == metric and _number_or_none(verdict.get("threshold")) is not None:
            return float(verdict["threshold"])
    return None


def _diagnosis_kind(report: Mapping[str, Any]) -> str:
    """`Diagnosis.kind` of the report's failed checks (no root causes needed, so a minimal report does)."""
    findings = []
    for check, verdict in report.get("verdicts", {}).items():
        value = _number_or_none(verdict.get("value"))
        if value is None or verdict.get("passed") or check not in FAILURE_OF_CHECK:
            continue
        direction = verdict.get("direction") or direction_of(verdict["metric"])
        findings.append(Finding(FAILURE_OF_CHECK[check], check, verdict["metric"], value, float(verdict["threshold"]), "",
                                direction=direction))
    findings.sort(key=lambda f: FAILURE_PRIORITY.index(f.failure))
    return Diagnosis(tuple(findings)).kind


def outcome_of(
    parent_report: Mapping[str, Any],
    report: Mapping[str, Any],
    *,
    chain: str,
    attempt: int,
    run_id: str,
    parent_run_id: str,
    rule: str,
    failure: str,
    change: str,
    dataset_fingerprint: str,
    meta_features: Mapping[str, float],
) -> AttemptOutcome:
    """The outcome of the attempt whose report is `report`, made by applying `rule` (answering `failure`) to the
    run whose report is `parent_report`. The threshold is this attempt's (the parent's when it has none).

    Raises ValueError for an unknown failure kind, or when the targeted metric has no value in either report."""
    if failure not in TARGET_METRIC:
        raise ValueError(f"Unknown failure kind {failure!r}; expected one of {list(TARGET_METRIC)}.")
    target = TARGET_METRIC[failure]
    before, after = _judged_metrics(parent_report), _judged_metrics(report)
    for side, name, values in (("parent", parent_run_id, before), ("attempt", run_id, after)):
        if values[target] is None:
            raise ValueError(f"The {side} report (run {name}) has no value for the target metric {target!r} of the "
                             f"{failure} failure: the outcome of {rule!r} cannot be judged.")
    threshold = _threshold(report, target)
    threshold = _threshold(parent_report, target) if threshold is None else threshold
    if threshold is None:
        raise ValueError(f"Neither report has a threshold for the target metric {target!r}.")
    verdicts = report.get("verdicts", {})
    generator = report.get("generator") or {}
    steps = generator.get("training_steps")
    green = report.get("all_green")
    green = all(bool(v.get("passed")) for v in verdicts.values()) if green is None else bool(green)
    return AttemptOutcome(
        chain=chain, attempt=int(attempt), run_id=run_id, parent_run_id=parent_run_id,
        dataset_fingerprint=dataset_fingerprint, meta_features=_plain_features(meta_features),
        diagnosis_kind=_diagnosis_kind(parent_report), failure=failure, rule=rule, change=change,
        target_metric=target, before=before, after=after, target_threshold=threshold, green_after=green,
        plugin=str(generator.get("plugin") or ""), steps_after=int(steps) if steps else None,
    )


def _plain_features(features: Mapping[str, Any]) -> dict[str, float]:
    """Meta-features as plain finite floats by name; anything else (a string, a value of the source) is refused."""
    plain = {}
    for name, value in features.items():
        number = None
        if isinstance(name, str) and hasattr(value, "__float__") and not isinstance(value, (str, bytes, bool)):
            number = _number_or_none(value)
        if number is None:
            raise ValueError(f"Meta-feature {name!r} must be a finite number; the memory stores only numbers and names.")
        plain[name] = number
    return plain


# --- the memory --------------------------------------------------------------------------------------------------


def ddl_path(dialect: str) -> Path:
    return ddl.ddl_path("optimizer_memory", dialect, "optimizer-memory")


ADDED_COLUMNS = {"plugin": "TEXT", "steps_after": "BIGINT"}  # columns a table created before them lacks


def ensure_outcome_table(engine: sa.Engine) -> sa.Table:
    """Create the outcome table from its DDL file when missing (and add the columns a table from an earlier
    version lacks); return it reflected."""
    ddl.ensure_table(engine, OUTCOME_TABLE, ddl_path(engine.dialect.name))
    return ddl.add_missing_columns(engine, OUTCOME_TABLE, ADDED_COLUMNS)


def _metrics_json(values: Mapping[str, Any]) -> str:
    return json.dumps({str(name): _number_or_none(value) for name, value in values.items()}, sort_keys=True, allow_nan=False)


class OutcomeMemory(ddl.TableStore):
    """The optimizer's outcome memory at a SQLAlchemy `url` (SQLite or PostgreSQL); its table is created on first use."""

    ensure = staticmethod(ensure_outcome_table)

    def record(self, outcome: AttemptOutcome) -> int:
        """Store `outcome`; return its id. Only numbers, names and the change text are written."""
        row = {
            "chain": outcome.chain, "attempt": int(outcome.attempt), "run_id": outcome.run_id,
            "parent_run_id": outcome.parent_run_id, "dataset_fingerprint": outcome.dataset_fingerprint,
            "meta_features": json.dumps(_plain_features(outcome.meta_features), sort_keys=True, allow_nan=False),
            "diagnosis_kind": outcome.diagnosis_kind, "failure": outcome.failure, "rule": outcome.rule,
            "change": outcome.change, "target_metric": outcome.target_metric,
            "metrics_before": _metrics_json(outcome.before), "metrics_after": _metrics_json(outcome.after),
            "target_before": outcome.target_before, "target_after": outcome.target_after,
            "target_threshold": float(outcome.target_threshold), "success": outcome.success,
            "green_after": bool(outcome.green_after), "plugin": outcome.plugin,
            "steps_after": None if outcome.steps_after is None else int(outcome.steps_after),
        }
        with self._table() as (engine, table), engine.begin() as conn:
            return int(conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one())

    def _select(self, *conditions: Any) -> list[AttemptOutcome]:
        with self._table() as (engine, table):
            query = sa.select(table).where(*[condition(table) for condition in conditions]).order_by(table.c.id)
            with engine.connect() as conn:
                rows = [dict(row._mapping) for row in conn.execute(query)]
        return [
            AttemptOutcome(
                chain=row["chain"], attempt=int(row["attempt"]), run_id=row["run_id"], parent_run_id=row["parent_run_id"],
                dataset_fingerprint=row["dataset_fingerprint"], meta_features=json.loads(row["meta_features"]),
                diagnosis_kind=row["diagnosis_kind"], failure=row["failure"], rule=row["rule"], change=row["change"],
                target_metric=row["target_metric"], before=json.loads(row["metrics_before"]),
                after=json.loads(row["metrics_after"]), target_threshold=float(row["target_threshold"]),
                green_after=bool(row["green_after"]), plugin=row["plugin"] or "",
                steps_after=None if row["steps_after"] is None else int(row["steps_after"]),
                created_at=row["created_at"], id=int(row["id"]),
            )
            for row in rows
        ]

    def outcomes(self, failure: str | None = None, rule: str | None = None) -> list[AttemptOutcome]:
        """Every outcome (or those answering `failure`, of `rule`), oldest first."""
        conditions = []
        if failure is not None:
            conditions.append(lambda table: table.c.failure == failure)
        if rule is not None:
            conditions.append(lambda table: table.c.rule == rule)
        return self._select(*conditions)

    def chain_outcomes(self, chain: str) -> list[AttemptOutcome]:
        """The outcomes of one chain, oldest first."""
        return self._select(lambda table: table.c.chain == chain)


# --- ranking -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleEvidence:
    """The Beta estimate of one rule for one failure kind (see the module docstring)."""

    rule: str
    failure: str
    prior_mean: float
    alpha: float
    beta: float
    posterior_mean: float
    n_outcomes: int  # remembered outcomes of this rule for this failure, however similar
    weighted_n: float  # their similarity weights summed: how many outcomes of this very kind of dataset they are worth
    successes: float  # Σ weight × success: fixed-equivalents

    def describe(self) -> str:
        """E.g. "train_longer: 0.78 (prior 0.70, 3 outcomes, 2.4 similar: 2.0 fixed-equivalent)"."""
        if self.n_outcomes == 0:
            evidence = "no outcomes"
        else:
            noun = "outcome" if self.n_outcomes == 1 else "outcomes"
            evidence = (f"{self.n_outcomes} {noun}, {self.weighted_n:.1f} similar: "
                        f"{self.successes:.1f} fixed-equivalent")
        return f"{self.rule}: {self.posterior_mean:.2f} (prior {self.prior_mean:.2f}, {evidence})"


def prior_means(n: int) -> list[float]:
    """Prior means of `n` rules in their hand-written order: 0.7 for the first down to 0.4 for the last, evenly
    spaced (a lone rule: 0.7)."""
    if n < 1:
        return []
    if n == 1:
        return [PRIOR_FIRST]
    return [PRIOR_FIRST - (PRIOR_FIRST - PRIOR_LAST) * i / (n - 1) for i in range(n)]


def similarity_weight(features: Mapping[str, float], other: Mapping[str, float], similarity_scale: float = 1.0) -> float:
    """exp(−feature_distance / similarity_scale): 1 for the same kind of dataset, 0 when none of the features compare.
    No `features` at all (no dataset given, e.g. the CLI's overall ranking): every outcome counts fully, 1."""
    if not features:
        return 1.0
    distance = feature_distance(dict(features), dict(other))
    return 0.0 if not math.isfinite(distance) else math.exp(-distance / similarity_scale)


def rank_rules(
    rules: Sequence[str],
    failure: str,
    outcomes: Sequence[AttemptOutcome],
    features: dict[str, float],
    *,
    prior_strength: float = 2.0,
    similarity_scale: float = 1.0,
) -> list[RuleEvidence]:
    """The `rules` (in their hand-written order, all answering `failure`) ranked by the posterior mean of the
    similarity-weighted Beta estimate (module docstring), highest first; ties keep the hand-written order. Outcomes
    of other rules or other failure kinds are ignored."""
    if len(set(rules)) != len(rules):
        raise ValueError(f"Each rule may appear once, got {list(rules)}.")
    if not prior_strength > 0 or not math.isfinite(prior_strength):
        raise ValueError(f"prior_strength must be a positive number, got {prior_strength!r}.")
    if not similarity_scale > 0 or not math.isfinite(similarity_scale):
        raise ValueError(f"similarity_scale must be a positive number, got {similarity_scale!r}.")
    ranked = []
    for rule, mean in zip(rules, prior_means(len(rules))):
        alpha, beta = mean * prior_strength, (1.0 - mean) * prior_strength
        n, weighted, successes = 0, 0.0, 0.0
        for outcome in outcomes:
            if outcome.rule != rule or outcome.failure != failure:
                continue
            weight = similarity_weight(features, outcome.meta_features, similarity_scale)
            n += 1
            weighted += weight
            successes += weight * outcome.success
            alpha += weight * outcome.success
            beta += weight * (1.0 - outcome.success)
        ranked.append(RuleEvidence(rule, failure, mean, alpha, beta, alpha / (alpha + beta), n, weighted, successes))
    # sorted() is stable: equal posterior means (to 12 digits, so float noise does not decide) keep the
    # hand-written order.
    return sorted(ranked, key=lambda evidence: -round(evidence.posterior_mean, 12))


def ranking_markdown(rankings: dict[str, list[RuleEvidence]]) -> str:
    """One table per failure kind (in `FAILURE_PRIORITY` order, others after): rank, rule, posterior mean, prior,
    outcomes and the similarity-weighted evidence."""
    order = [f for f in FAILURE_PRIORITY if f in rankings] + [f for f in rankings if f not in FAILURE_PRIORITY]
    blocks = []
    for failure in order:
        lines = [f"**{failure}** (target: `{TARGET_METRIC.get(failure, '?')}`)", "",
                 "| rank | rule | posterior mean | prior | outcomes | similar-weighted evidence |",
                 "|---|---|---|---|---|---|"]
        for rank, evidence in enumerate(rankings[failure], 1):
            similar = ("—" if evidence.n_outcomes == 0
                       else f"{evidence.weighted_n:.1f} similar: {evidence.successes:.1f} fixed-equivalent")
            lines.append(f"| {rank} | `{evidence.rule}` | {evidence.posterior_mean:.2f} | {evidence.prior_mean:.2f} "
                         f"| {evidence.n_outcomes} | {similar} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# --- how long to train ------------------------------------------------------------------------------------------

SIMILAR_WEIGHT = 0.5  # an outcome counts as from a similar dataset at this similarity weight or more (distance ≤ 0.69)
STEP_FAILURES = (UTILITY, CORRELATION)  # the failures more training steps answer (marginals, joint structure)


@dataclass(frozen=True)
class LearntSteps:
    """Training steps the memory suggests for a plugin on a dataset: the fewest steps at which a similar dataset's
    attempt passed, else the most steps a similar dataset's attempt tried while still improving."""

    steps: int
    passed: bool  # True: an attempt at these steps passed (all green, or its utility/correlation target fixed)
    reason: str

    def describe(self) -> str:
        return f"{self.steps:,} steps: {self.reason}"


def _privacy_kept(outcome: AttemptOutcome) -> bool:
    """The attempt's membership AUC and exact-copy rate within the default limits (`Thresholds`; a value not
    measured counts as kept): steps at which the table leaked are no steps to learn."""
    limits = Thresholds()
    mia, copies = (_number_or_none(outcome.after.get(m)) for m in ("membership_inference_auc", "exact_copy_rate"))
    return (mia is None or mia <= limits.mia_auc_max) and (copies is None or copies <= limits.exact_copy_rate_max)


def _rows_factor(features: Mapping[str, float], other: Mapping[str, float]) -> float:
    """min(1, this table's rows / the other's), from the meta-features' log10_rows (1 when either lacks it): steps
    learnt on a larger table are scaled down to this one's size — the same steps over fewer rows are more passes
    over each row, which is how a generator memorises (penguins' 275 rows at the 3,840 steps Adult's 2,400 needed:
    membership AUC 0.727)."""
    now, then = _number_or_none(features.get("log10_rows")), _number_or_none(other.get("log10_rows"))
    return 1.0 if now is None or then is None else min(1.0, 10 ** (now - then))


def learnt_training_steps(
    outcomes: Sequence[AttemptOutcome], plugin: str, features: Mapping[str, float], *, similarity_scale: float = 1.0,
) -> LearntSteps | None:
    """How long to train `plugin` on a dataset with these meta-features, from the remembered attempts of similar
    datasets (similarity weight ≥ `SIMILAR_WEIGHT`) that fitted the same plugin without leaking (`_privacy_kept`),
    their steps scaled down to this table's rows when theirs had more (`_rows_factor`):

    - the fewest training steps of an attempt that passed: every check green, or the utility (KS) or correlation
      target its rule answered fixed;
    - else the most steps of an attempt whose utility or correlation target improved without passing (training
      longer helped there and was not yet enough: a new chain starts where that one stopped);
    - else None (nothing similar remembered).

    Outcomes without a plugin or steps (recorded before they were) are ignored. Only ever used to raise the steps
    of a "train longer" change: the policy never trains less because of it."""
    similar = []
    for outcome in outcomes:
        if outcome.plugin != plugin or not outcome.steps_after or not _privacy_kept(outcome):
            continue
        weight = similarity_weight(features, outcome.meta_features, similarity_scale)
        if weight >= SIMILAR_WEIGHT:
            factor = _rows_factor(features, outcome.meta_features)
            similar.append((weight, max(1, int(round(outcome.steps_after * factor))), factor, outcome))

    def scaled(steps: int, factor: float, o: AttemptOutcome) -> str:
        return "" if factor >= 1 else f" (its {o.steps_after:,} steps ×{factor:.2f}: this table has fewer rows)"

    passed = [(steps, -w, o.id or 0, w, factor, o) for w, steps, factor, o in similar
              if o.green_after or (o.failure in STEP_FAILURES and o.fixed)]
    if passed:
        steps, _, _, weight, factor, o = min(passed, key=lambda item: item[:3])
        what = "every check passed" if o.green_after else f"{o.target_metric} passed ({o.target_after:.3f})"
        return LearntSteps(int(steps), True, f"the fewest at which a similar dataset's attempt ({o.rule}, similarity "
                                             f"{weight:.2f}) passed: {what}{scaled(steps, factor, o)}")
    improved = [(steps, w, -(o.id or 0), w, factor, o) for w, steps, factor, o in similar
                if o.failure in STEP_FAILURES and o.improved]
    if improved:
        steps, _, _, weight, factor, o = max(improved, key=lambda item: item[:3])
        return LearntSteps(int(steps), False, f"the most a similar dataset's attempt ({o.rule}, similarity {weight:.2f}) "
                                              f"trained while {o.target_metric} still improved "
                                              f"({o.target_before:.3f} -> {o.target_after:.3f}), not yet passing"
                                              f"{scaled(steps, factor, o)}")
    return None


def early_training(outcome: AttemptOutcome) -> bool:
    """A "train longer" attempt that made its target worse while still short of its plugin's default training steps.

    Early training is not monotone, so below the default, worse is no verdict on training longer. Measured by
    benchmarks/optimizer_attempts_to_green.py (2,400-row samples, ddpm): 60 → 480 steps raised Adult's KS mean
    0.400 → 0.423 and its correlation delta 0.059 → 0.165, credit_data's correlation delta 0.120 → 0.279 (intervals
    ±0.01), while 960 to 1,920 steps passed both. Such an attempt is neither reverted nor barred: the next "train
    longer" starts from its steps."""
    default = DEFAULT_TRAINING_STEPS.get(outcome.plugin)
    return (outcome.worse and outcome.rule.startswith("train_longer") and default is not None
            and outcome.steps_after is not None and outcome.steps_after < default)


# --- within one chain --------------------------------------------------------------------------------------------


def chain_lessons(outcomes_of_chain: Sequence[AttemptOutcome]) -> tuple[frozenset[str], tuple[str, ...]]:
    """What one chain has learnt so far: the rules not to repeat in it (their attempt made the targeted metric
    worse or did not move it) and, in attempt order without repeats, the rules whose attempt made it worse (so the
    caller can try their `OPPOSITE_RULES` first). Raises ValueError for outcomes of more than one chain."""
    chains = {outcome.chain for outcome in outcomes_of_chain}
    if len(chains) > 1:
        raise ValueError(f"Outcomes of several chains were given ({sorted(chains)}); pass those of one chain.")
    avoid: set[str] = set()
    worsened: list[str] = []
    for outcome in sorted(outcomes_of_chain, key=lambda o: o.attempt):
        if outcome.worse or outcome.no_effect:
            avoid.add(outcome.rule)
        if outcome.worse and outcome.rule not in worsened:
            worsened.append(outcome.rule)
    return frozenset(avoid), tuple(worsened)
