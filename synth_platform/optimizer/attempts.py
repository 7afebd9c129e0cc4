"""The attempts of one optimizer chain (a first run and its adjusted re-runs): which one is best, and their history.

Pure logic: no Dagster here. An attempt is known by its report (the dict `build_report` writes); the shell finds
the chain's runs and their files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synth_platform.evaluation.thresholds import AT_LEAST
from synth_platform.optimizer.diagnosis import diagnose

UTILITY_METRICS = ("ks_mean", "correlation_delta")
PRIVACY_CHECKS = frozenset({"membership_inference_auc_within_threshold", "duplicate_rate_within_threshold"})
SCORE_RULE = (
    "All-green attempts first; among them the lowest utility distance (mean of value/threshold over KS mean and "
    "correlation delta), then the lowest MIA AUC. Without an all-green attempt: the fewest failed privacy checks (MIA, "
    "exact copies: a leaking table is never preferred to a private one), then the fewest failed blocking checks, then the "
    "smallest total relative excess (Σ |value − threshold|/threshold over failed blocking checks), then the utility "
    "distance. Warning-only checks (detection AUC, TSTR ratio unless made blocking) are shown but do not decide."
)


@dataclass(frozen=True)
class Attempt:
    run_id: str
    attempt: int  # 0 for the chain's first run
    report: dict[str, Any] | None  # None: the run ended before its report
    change: str = ""  # what this attempt changed from its parent
    rule: str = ""
    failure: str = ""  # the failure kind that this attempt answered
    synthetic_path: str = ""
    status: str = ""  # the run's status

    @property
    def all_green(self) -> bool:
        return bool(self.report and self.report.get("all_green"))

    def failed_checks(self) -> list[str]:
        if not self.report:
            return []
        return [check for check, verdict in self.report["verdicts"].items() if not verdict["passed"]]

    def blocking_failures(self) -> list[str]:
        """The failed checks that block (the "all green" contract); warnings left out."""
        if not self.report:
            return []
        return [check for check, v in self.report["verdicts"].items() if not v["passed"] and v.get("blocking", True)]

    def shortfalls(self) -> list[str]:
        """Each failed check with its value, threshold and how far off, e.g. "ks_mean 0.130 > 0.100 (off by 0.030)",
        "tstr_ratio 0.910 < 0.960 (off by 0.050, warning)"."""
        if not self.report:
            return []
        return [_shortfall(v) for v in self.report["verdicts"].values() if not v["passed"]]


def _shortfall(verdict: dict) -> str:
    if verdict.get("value") is None:
        return f"{verdict['metric']} failed"
    at_least = verdict.get("direction") == AT_LEAST
    sign = "<" if at_least else ">"
    warning = "" if verdict.get("blocking", True) else ", warning"
    return (f"{verdict['metric']} {verdict['value']:.3f} {sign} {verdict['threshold']:.3f} "
            f"(off by {_excess(verdict):.3f}{warning})")


def _excess(verdict: dict) -> float:
    """How far a failing value lies on the wrong side of its threshold (positive), in either direction."""
    value, threshold = float(verdict["value"]), float(verdict["threshold"])
    return threshold - value if verdict.get("direction") == AT_LEAST else value - threshold


def utility_distance(report: dict) -> float:
    """Mean of value / threshold over the utility metrics that apply (0 is a perfect copy of the marginals)."""
    ratios = []
    for verdict in report["verdicts"].values():
        if verdict["metric"] in UTILITY_METRICS and verdict.get("value") is not None and verdict["threshold"] > 0:
            ratios.append(verdict["value"] / verdict["threshold"])
    return sum(ratios) / len(ratios) if ratios else 0.0


def attempt_score(attempt: Attempt) -> tuple:
    """Sort key of `SCORE_RULE` (lower is better); attempts without a report come last."""
    report = attempt.report
    if not report:
        return (2, float("inf"), float("inf"), float("inf"), float("inf"), attempt.attempt)
    mia = report["metrics"].get("membership_inference_auc") or 0.0
    if report.get("all_green"):
        return (0, 0.0, utility_distance(report), mia, 0.0, attempt.attempt)
    excess = sum(
        _excess(v) / v["threshold"] if v["threshold"] > 0 else _excess(v)
        for v in report["verdicts"].values() if not v["passed"] and v.get("value") is not None and v.get("blocking", True)
    )
    leaks = sum(check in PRIVACY_CHECKS for check in attempt.blocking_failures())
    return (1, float(leaks), float(len(attempt.blocking_failures())), excess, utility_distance(report), attempt.attempt)


def better_overall(parent_report: dict, report: dict) -> bool:
    """Whether `report` scores better than `parent_report` by `SCORE_RULE` (fewer failed privacy checks, then fewer
    failed blocking checks, then nearer their limits): a re-run can move its own target the wrong way and still leave
    the attempt better as a whole."""
    return attempt_score(Attempt("", 0, report))[:-1] < attempt_score(Attempt("", 0, parent_report))[:-1]


def select_best_attempt(attempts: list[Attempt]) -> tuple[Attempt, bool]:
    """The best attempt by `SCORE_RULE` and whether it is all green. Raises when no attempt has a report."""
    candidates = [a for a in attempts if a.report]
    if not candidates:
        raise ValueError("No attempt of this chain produced a report; there is nothing to choose from.")
    best = min(candidates, key=attempt_score)
    return best, best.all_green


def _cell(value: Any) -> str:
    return "" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value).replace("|", "\\|"))


HISTORY_COLUMNS = ("attempt", "run", "change", "KS mean", "corr Δ", "MIA AUC", "copies", "verdict")


def history_rows(attempts: list[Attempt], chosen_run_id: str | None = None) -> list[dict[str, Any]]:
    """One row per attempt, in order, keyed by `HISTORY_COLUMNS` (short, so the UI shows the table whole): what
    changed and which failure it answered, the four judged metrics (None without a report), and the verdict in words:
    "green" or what still fails, "chosen" first for the attempt the chain keeps."""
    rows = []
    for a in sorted(attempts, key=lambda a: a.attempt):
        m = (a.report or {}).get("metrics", {})
        if not a.report:
            verdict = f"no report ({a.status})"
        else:
            verdict = "green" if a.all_green else "still failing: " + "; ".join(a.shortfalls())
        change = _cell(a.change) or "first run"
        rows.append({
            "attempt": a.attempt, "run": a.run_id[:8], "change": f"{change} (answers {a.failure})" if a.failure else change,
            "KS mean": m.get("ks_mean"), "corr Δ": m.get("correlation_delta"), "MIA AUC": m.get("membership_inference_auc"),
            "copies": m.get("exact_copy_rate"), "verdict": ("chosen, " if a.run_id == chosen_run_id else "") + verdict,
        })
    return rows


def rows_markdown(rows: list[dict[str, Any]]) -> str:
    """`history_rows` as a markdown table (the CLI prints it)."""
    lines = ["| " + " | ".join(HISTORY_COLUMNS) + " |", "|" + "---|" * len(HISTORY_COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in HISTORY_COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def history_markdown(attempts: list[Attempt], chosen_run_id: str | None = None) -> str:
    return rows_markdown(history_rows(attempts, chosen_run_id))


@dataclass(frozen=True)
class Choice:
    best: Attempt
    all_green: bool
    history_rows: list[dict]  # `history_rows`: the UI's table
    diagnosis: dict = field(default_factory=dict)  # of the chosen attempt, when it is not green

    @property
    def history(self) -> str:
        """The same history as markdown."""
        return rows_markdown(self.history_rows)


def choose(attempts: list[Attempt]) -> Choice:
    best, green = select_best_attempt(attempts)
    return Choice(best, green, history_rows(attempts, best.run_id), {} if green else diagnose(best.report).to_dict())
