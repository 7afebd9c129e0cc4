"""Choosing the best attempt of a chain, and its history table."""

import pytest

from synth_platform.optimizer.attempts import HISTORY_COLUMNS, Attempt, attempt_score, better_overall, choose, history_markdown, select_best_attempt

RULES = {"ks_mean_within_threshold": ("ks_mean", 0.10), "correlation_delta_within_threshold": ("correlation_delta", 0.10),
         "membership_inference_auc_within_threshold": ("membership_inference_auc", 0.60),
         "duplicate_rate_within_threshold": ("exact_copy_rate", 0.05)}


def report(ks=0.05, corr=0.05, mia=0.52, copies=0.0) -> dict:
    values = {"ks_mean": ks, "correlation_delta": corr, "membership_inference_auc": mia, "exact_copy_rate": copies}
    verdicts = {check: {"metric": metric, "value": values[metric], "threshold": limit, "passed": values[metric] <= limit}
                for check, (metric, limit) in RULES.items()}
    return {"verdicts": verdicts, "metrics": values, "all_green": all(v["passed"] for v in verdicts.values()),
            "rows": {"training": 100, "holdout": 50, "synthetic": 100}, "per_column": [], "generator": {"plugin": "ddpm"}}


def attempt(n, **metrics):
    return Attempt(run_id=f"run-{n}-0000", attempt=n, report=report(**metrics), change=f"change {n}" if n else "")


def test_an_all_green_attempt_beats_any_failing_one():
    attempts = [attempt(0, ks=0.3), attempt(1, ks=0.09, corr=0.09), attempt(2, ks=0.02, mia=0.61)]
    best, green = select_best_attempt(attempts)
    assert (best.attempt, green) == (1, True)


def test_among_green_attempts_the_lowest_utility_distance_wins_then_mia():
    best, _ = select_best_attempt([attempt(0, ks=0.08, corr=0.02), attempt(1, ks=0.03, corr=0.03)])
    assert best.attempt == 1  # (0.3 + 0.3) / 2 < (0.8 + 0.2) / 2
    best, _ = select_best_attempt([attempt(0, mia=0.58), attempt(1, mia=0.51)])
    assert best.attempt == 1


def test_without_green_fewest_failed_checks_then_smallest_relative_excess():
    attempts = [attempt(0, ks=0.3, corr=0.2), attempt(1, ks=0.5), attempt(2, ks=0.12)]
    best, green = select_best_attempt(attempts)
    assert (best.attempt, green) == (2, False)
    assert attempt_score(attempts[1])[:3] == (1, 0.0, 1.0) and attempt_score(attempts[1])[3] == pytest.approx(4.0)


def test_without_green_a_private_attempt_beats_a_leaking_one_whatever_its_utility():
    # Seen: a memorising first run (MIA 0.769, every utility check passing) was chosen over its private dpgan
    # re-runs (KS 0.55, correlation failing) because it failed fewer checks.
    attempts = [attempt(0, mia=0.769), attempt(1, ks=0.55, corr=0.3), attempt(2, copies=0.2)]
    best, green = select_best_attempt(attempts)
    assert (best.attempt, green) == (1, False)


def test_an_attempt_without_report_is_never_chosen_and_none_at_all_is_an_error():
    broken = Attempt("run-9", 1, None, status="FAILURE")
    best, _ = select_best_attempt([broken, attempt(0, ks=0.9)])
    assert best.attempt == 0
    with pytest.raises(ValueError, match="nothing to choose"):
        select_best_attempt([broken])


def test_history_table_has_a_row_per_attempt_and_marks_the_choice():
    attempts = [attempt(1, ks=0.2), attempt(0, ks=0.3), Attempt("run-2-xxxx", 2, None, status="FAILURE")]
    choice = choose(attempts)
    lines = choice.history.splitlines()
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| 0 |") and "first run" in lines[2]
    assert "chosen, " in lines[3] and "change 1" in lines[3]
    assert "no report (FAILURE)" in lines[4]
    assert choice.all_green is False and choice.diagnosis["kind"] == "utility"
    assert history_markdown([attempt(0)], "run-0-0000").count("chosen, ") == 1
    rows = choice.history_rows  # the same history as the UI's table: one row per attempt, keyed by its columns
    assert [r["attempt"] for r in rows] == [0, 1, 2] and all(set(r) == set(HISTORY_COLUMNS) for r in rows)
    assert rows[1]["verdict"].startswith("chosen, ") and rows[2]["KS mean"] is None and rows[0]["KS mean"] == 0.3


def test_a_re_run_that_worsened_its_own_target_can_still_be_better_as_a_whole():
    # Training longer for the correlation cured KS (0.39 -> 0.08) and nudged the correlation up (0.12 -> 0.13):
    # its target got worse, the attempt got better (one failed check instead of two). The chain kept the rule.
    assert better_overall(report(ks=0.39, corr=0.12), report(ks=0.08, corr=0.13))
    assert not better_overall(report(ks=0.08, corr=0.12), report(ks=0.08, corr=0.13))  # same failures, further off
    assert not better_overall(report(ks=0.3), report(ks=0.05, mia=0.7))  # a leak is never better
