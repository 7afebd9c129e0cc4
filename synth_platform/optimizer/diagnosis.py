"""Diagnosis of a failed privacy/utility report: which kind of failure, and the root cause in numbers.

Pure logic: reads the report dict that `evaluation.report.build_report` writes; no Dagster here. Each failed
threshold becomes one `Finding` with a sentence for people that quotes the value, the threshold and what drives it
(the worst columns, the worst pairs, the distances behind a membership attack, the copies).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from synth_platform.evaluation.thresholds import AT_LEAST, AT_MOST, direction_of

# Failure kinds in the order the policy answers them when several fail at once: privacy first (a generator that
# leaks is not fixed by training it longer, and utility fixes tend to leak more), then copies, then the joint
# structure, then the marginals; then the two fidelity checks (they warn unless `fidelity_checks_blocking`), after
# everything "all green" needs: the rows' realism as a whole (detection AUC), then their use for prediction (TSTR).
# Two kinds, not one: each kind has one target metric by which the optimizer's learning judges its rules
# (`learning.TARGET_METRIC`), and the two move apart (columns shuffled independently keep KS but are detected at
# once; a generator can fool the detector on the features and still lose the target's dependence on them).
PRIVACY, DUPLICATES, CORRELATION, UTILITY = "privacy", "duplicates", "correlation", "utility"
FIDELITY, DOWNSTREAM = "fidelity", "downstream"
FAILURE_PRIORITY = (PRIVACY, DUPLICATES, CORRELATION, UTILITY, FIDELITY, DOWNSTREAM)
FAILURE_OF_CHECK = {
    "membership_inference_auc_within_threshold": PRIVACY,
    "duplicate_rate_within_threshold": DUPLICATES,
    "correlation_delta_within_threshold": CORRELATION,
    "ks_mean_within_threshold": UTILITY,
    "detection_auc_within_threshold": FIDELITY,
    "tstr_ratio_at_least": DOWNSTREAM,
}
DRIVERS_SHOWN = 3  # columns or pairs quoted in a root-cause sentence
SEPARATING_GAP = 0.05  # a column whose KS / TVD is above this, or a pair whose |Δ| is, is named as separating rows


@dataclass(frozen=True)
class Finding:
    failure: str  # one of FAILURE_PRIORITY
    check: str
    metric: str
    value: float
    threshold: float
    cause: str  # the root-cause sentence
    drivers: tuple[str, ...] = ()  # the columns or column pairs driving the value, worst first
    direction: str = AT_MOST  # AT_MOST: lower is better (value over threshold fails); AT_LEAST: higher is better

    @property
    def excess(self) -> float:
        """How far on the failing side of its threshold the value is (positive when failing, in either direction)."""
        return self.value - self.threshold if self.direction == AT_MOST else self.threshold - self.value

    @property
    def ratio(self) -> float:
        """How many times worse than its threshold the value is (> 1 when failing): value / threshold for "at
        most", threshold / value for "at least" (inf for a value at or below 0)."""
        if self.direction == AT_MOST:
            return self.value / self.threshold if self.threshold > 0 else float("inf")
        return self.threshold / self.value if self.value > 0 else float("inf")

    @property
    def relation(self) -> str:
        """"over" or "under" its threshold, as the failure lies."""
        return "over" if self.direction == AT_MOST else "under"


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]  # failed checks, in FAILURE_PRIORITY order
    margins: dict[str, float] = field(default_factory=dict)  # of every judged metric (passing too): positive when passing
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(f.failure for f in self.findings)

    @property
    def primary(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    @property
    def kind(self) -> str:
        """The failure type for tags and tables: one kind, "several" (a+b), or "none"."""
        if not self.findings:
            return "none"
        return self.findings[0].failure if len(self.findings) == 1 else "several (" + "+".join(self.failures) + ")"

    def finding(self, failure: str) -> Finding | None:
        return next((f for f in self.findings if f.failure == failure), None)

    def summary(self) -> str:
        if not self.findings:
            return "every check passed"
        return " ".join(f.cause for f in self.findings)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "findings": [asdict(f) for f in self.findings], "margins": self.margins, "rows": self.rows}


def diagnose(report: dict) -> Diagnosis:
    """The failed checks of `report` as findings with root causes, most urgent first."""
    findings, margins = [], {}
    for check, verdict in report["verdicts"].items():
        if verdict.get("value") is None:
            continue
        value, threshold = float(verdict["value"]), float(verdict["threshold"])
        direction = verdict.get("direction") or direction_of(verdict["metric"])
        margins[verdict["metric"]] = threshold - value if direction == AT_MOST else value - threshold
        if verdict["passed"] or check not in FAILURE_OF_CHECK:
            continue
        failure = FAILURE_OF_CHECK[check]
        cause, drivers = _CAUSES[failure](report, value, threshold)
        findings.append(Finding(failure, check, verdict["metric"], value, threshold, cause, tuple(drivers), direction))
    findings.sort(key=lambda f: FAILURE_PRIORITY.index(f.failure))
    return Diagnosis(tuple(findings), margins, dict(report.get("rows", {})))


def _marginal_cause(report: dict, value: float, threshold: float) -> tuple[str, list[str]]:
    numeric = sorted((r for r in report["per_column"] if r["statistic"] == "ks"), key=lambda r: r["value"], reverse=True)
    worst = numeric[:DRIVERS_SHOWN]
    named = ", ".join(f"`{r['column']}` (KS {r['value']:.3f})" for r in worst)
    cause = (f"KS mean {value:.3f} > {threshold:.2f}: the generator has not learned the marginal distributions; "
             f"worst columns {named}.")
    missing = [r for r in worst if abs(r["missing_real"] - r["missing_synthetic"]) > 0.02]
    if missing:
        cause += " Missing-value rates differ too: " + ", ".join(
            f"`{r['column']}` {r['missing_real']:.1%} real vs {r['missing_synthetic']:.1%} synthetic" for r in missing) + "."
    categorical = sorted((r for r in report["per_column"] if r["statistic"] == "tvd"), key=lambda r: r["value"], reverse=True)
    if categorical and categorical[0]["value"] > threshold:
        cause += f" Categorical columns drift as well (worst `{categorical[0]['column']}`, TVD {categorical[0]['value']:.3f})."
    return cause, [r["column"] for r in worst]


def worst_correlation_pairs(correlation: dict, n: int = DRIVERS_SHOWN) -> list[tuple[str, str, float, float]]:
    """The `n` numeric pairs with the largest |Δρ|: (column, column, ρ real, ρ synthetic), worst first."""
    columns = correlation.get("columns") or []
    if len(columns) < 2 or not correlation.get("real_matrix"):
        return []
    real, synthetic = np.asarray(correlation["real_matrix"]), np.asarray(correlation["synthetic_matrix"])
    upper = np.triu_indices(len(columns), k=1)
    deltas = np.abs(real[upper] - synthetic[upper])
    order = np.argsort(-deltas, kind="stable")[:n]
    return [(columns[upper[0][i]], columns[upper[1][i]], float(real[upper][i]), float(synthetic[upper][i])) for i in order]


def _correlation_cause(report: dict, value: float, threshold: float) -> tuple[str, list[str]]:
    pairs = worst_correlation_pairs(report.get("correlation", {}))
    named = ", ".join(f"`{a}`×`{b}` (ρ {r:+.2f} real vs {s:+.2f} synthetic)" for a, b, r, s in pairs)
    cause = (f"Correlation delta {value:.3f} > {threshold:.2f}: the joint structure between numeric columns is "
             f"off; worst pairs {named}.")
    return cause, [f"{a}×{b}" for a, b, _, _ in pairs]


def _privacy_cause(report: dict, value: float, threshold: float) -> tuple[str, list[str]]:
    m = report["metrics"]
    cause = f"Membership-inference AUC {value:.3f} > {threshold:.2f}: training rows lie closer to the synthetic rows than unseen holdout rows do"
    to_training, to_holdout = m.get("dcr_synthetic_to_training_median"), m.get("dcr_synthetic_to_holdout_median")
    if to_training is not None and to_holdout is not None:
        cause += f" (median distance to closest record: {to_training:.4f} to training vs {to_holdout:.4f} to holdout"
        if m.get("dcr_share") is not None:
            cause += f"; DCR share {m['dcr_share']:.2f}, 0.50 is no leak"
        cause += ")"
    cause += ", so the generator memorises its training rows."
    if m.get("exact_copy_rate"):
        cause += f" {m['exact_copy_rate']:.1%} of synthetic rows are verbatim training rows."
    return cause, []


def _duplicates_cause(report: dict, value: float, threshold: float) -> tuple[str, list[str]]:
    m, rows = report["metrics"], report.get("rows", {})
    synthetic = rows.get("synthetic")
    count = f" ({round(value * synthetic):,} of {synthetic:,} rows)" if synthetic else ""
    cause = f"Exact-copy rate {value:.3f} > {threshold:.2f}: synthetic rows reproduce training rows verbatim{count}"
    baseline = m.get("holdout_exact_copy_rate")
    if baseline is not None and baseline < value / 2:
        cause += f"; unseen holdout rows match a training row at only {baseline:.3f}, so most copies are memorised, not chance"
    elif baseline is not None:
        cause += (f"; unseen holdout rows match a training row at {baseline:.3f} too: the table has few distinct rows, "
                  "so many copies are chance, and removing them is the remedy")
    return cause + ".", []


def _separating_columns(report: dict) -> list[dict]:
    """Columns whose distribution differs most (KS or TVD above SEPARATING_GAP), worst first."""
    rows = sorted((r for r in report.get("per_column", []) if r["value"] > SEPARATING_GAP), key=lambda r: r["value"], reverse=True)
    return rows[:DRIVERS_SHOWN]


def _separating_pairs(report: dict) -> list[tuple[str, str, str]]:
    """Column pairs whose dependence differs most (|Δρ| of numeric pairs, |ΔCramér's V| of pairs with a category,
    above SEPARATING_GAP), worst first: (column, column, the numbers in words)."""
    pairs = [(abs(r - s), a, b, f"ρ {r:+.2f} real vs {s:+.2f} synthetic")
             for a, b, r, s in worst_correlation_pairs(report.get("correlation", {}), n=DRIVERS_SHOWN)]
    for pair in (report.get("association") or {}).get("by_pair") or []:
        a, b = pair["pair"]
        pairs.append((float(pair["delta"]), a, b,
                      f"Cramér's V {pair['cramers_v_real']:.2f} real vs {pair['cramers_v_synthetic']:.2f} synthetic"))
    pairs.sort(key=lambda p: p[0], reverse=True)
    return [(a, b, text) for delta, a, b, text in pairs[:DRIVERS_SHOWN] if delta > SEPARATING_GAP]


def _detection_cause(report: dict, value: float, threshold: float) -> tuple[str, list[str]]:
    cause = (f"Detection AUC {value:.3f} > {threshold:.2f}: a classifier tells synthetic rows from real ones "
             "(0.5 = indistinguishable), so the rows are not realistic as a whole")
    columns, pairs = _separating_columns(report), _separating_pairs(report)
    # The report holds no importances of the detector itself: what separates is read off the per-column
    # distances and the pairwise dependence deltas, the largest first.
    if columns:
        cause += "; columns whose values differ most: " + ", ".join(
            f"`{r['column']}` ({r['statistic'].upper()} {r['value']:.3f})" for r in columns)
    if pairs:
        cause += "; pairs whose dependence differs most: " + ", ".join(f"`{a}`×`{b}` ({text})" for a, b, text in pairs)
    if not columns and not pairs:
        cause += ("; no single column nor pair differs by more than "
                  f"{SEPARATING_GAP:g}, so the detector separates on combinations of several columns")
    return cause + ".", [r["column"] for r in columns] + [f"{a}×{b}" for a, b, _ in pairs]


def _downstream_cause(report: dict, value: float, threshold: float) -> tuple[str, list[str]]:
    m, utility = report["metrics"], report.get("train_synthetic_test_real") or {}
    target, score = utility.get("target"), utility.get("score_name", "score")
    cause = f"TSTR/TRTR ratio {value:.3f} < {threshold:.2f}: a model trained on synthetic rows"
    if m.get("tstr_score") is not None and m.get("trtr_score") is not None:
        cause += (f" scores {m['tstr_score']:.3f} ({score}) on the real holdout vs {m['trtr_score']:.3f} for one "
                  "trained on the real training rows")
    else:
        cause += " scores less on the real holdout than one trained on the real training rows"
    if target:
        cause += f", predicting `{target}`: the synthetic rows do not keep how `{target}` depends on the other columns"
    target_row = next((r for r in report.get("per_column", []) if r["column"] == target), None)
    if target_row is not None and target_row["value"] > SEPARATING_GAP:
        cause += f" (its own distribution is off too: {target_row['statistic'].upper()} {target_row['value']:.3f})"
    return cause + ".", [target] if target else []


_CAUSES = {UTILITY: _marginal_cause, CORRELATION: _correlation_cause, PRIVACY: _privacy_cause, DUPLICATES: _duplicates_cause,
           FIDELITY: _detection_cause, DOWNSTREAM: _downstream_cause}
