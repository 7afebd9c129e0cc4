"""The generation time budget (issue 21): the split rule and the fit's time limit on a fake clock (numbers worked out
by hand), a study callback that starts no trial it expects to overrun, and real fits that end at their deadline.

The one timing assertion is `test_a_ddpm_fit_ends_within_10_percent_of_its_time_budget` (the issue asks for it)."""

import datetime as dt
import time
from types import SimpleNamespace

import numpy as np
import optuna
import pytest

from synth_platform.generation import generators
from synth_platform.generation.time_budget import (
    SPLIT_RULE,
    FitTimeLimit,
    TimeBudget,
    default_reserve_s,
    format_duration,
    usage_line,
)
from synth_platform.profiling.profile import encode_for_generation, profile_dataframe
from synth_platform.tuning.study import StopWhenNoTimeForATrial, TuningBudget


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def encoded(adult_small):
    frame = adult_small.head(300)
    return encode_for_generation(frame, profile_dataframe(frame))


def test_durations_and_usage_lines_read_as_minutes_and_seconds():
    assert [format_duration(s) for s in (0, 45.4, 60, 372, 900, 3720, -63)] == [
        "0 s", "45 s", "1 min", "6 min 12 s", "15 min", "1 h 2 min", "1 min 3 s"]
    assert usage_line("final fit", 372.4, 900) == "final fit: 6 min 12 s of 15 min used, 8 min 48 s left"
    assert usage_line("report", 963, 900) == "report: 16 min 3 s of 15 min used, 1 min 3 s over"


def test_the_split_rule_on_a_fake_clock():
    clock = FakeClock(1000.0)
    budget = TimeBudget.from_minutes(15, num_rows=10_000, clock=clock)
    assert budget.start == 1000.0 and budget.total_s == 900.0
    # Reserve: max(10 % of 900 = 90, 45 + 0.003 × 10,000 = 75) = 90 s; working time 810 s; tuning 40 % of it.
    assert budget.reserve == pytest.approx(90.0) and budget.working_s == pytest.approx(810.0)
    assert budget.tuning_seconds == pytest.approx(324.0) and budget.tuning_deadline == pytest.approx(1324.0)
    clock.now = 1100.0  # 100 s in (source and profiling done): 224 s of tuning left
    assert budget.tuning_seconds_left() == pytest.approx(224.0)
    limited = budget.tuning_budget(TuningBudget(n_trials=50, trial_timeout_s=600.0))
    assert (limited.n_trials, limited.timeout_s, limited.trial_timeout_s) == (50, pytest.approx(224.0), pytest.approx(224.0))
    assert budget.tuning_budget(TuningBudget(trial_timeout_s=60.0)).trial_timeout_s == 60.0  # the smaller limit stays
    # Tuning ended at 300 s, 24 s early: the fit gets its 486 s plus those 24 s, until 810 s after the start.
    assert budget.fit_seconds(300.0) == pytest.approx(510.0)
    assert budget.fit_deadline(now=1300.0) == pytest.approx(1810.0)
    # Tuning overran to 800 s: the fit still gets 10 % of the working time (81 s), and the run overruns.
    assert budget.fit_seconds(800.0) == pytest.approx(81.0)
    assert budget.remaining(now=1372.0) == pytest.approx(528.0)
    assert budget.progress_line("final fit", now=1372.0) == "final fit: 6 min 12 s of 15 min used, 8 min 48 s left"
    assert budget.progress_line("report", now=1963.0) == "report: 16 min 3 s of 15 min used, 1 min 3 s over"
    clock.now = 1324.5  # tuning's share is used: no new trial, the study chooses from what it has
    late = budget.tuning_budget(TuningBudget(n_trials=5))
    assert late.n_trials == 0 and late.timeout_s > 0 and late.trial_timeout_s > 0
    late.validate()
    assert budget.plan() == {"budget_s": 900.0, "reserve_s": 90.0, "working_s": 810.0, "tuning_until_s": 324.0,
                             "final_fit_until_s": 810.0, "rule": SPLIT_RULE}


def test_the_reserve_grows_with_the_rows_asked_for_up_to_half_the_budget():
    assert default_reserve_s(900, 100_000) == pytest.approx(345.0)  # 45 + 0.003 × 100,000
    assert default_reserve_s(900, 1_000_000) == pytest.approx(450.0)  # capped at half of the budget
    assert default_reserve_s(120, 0) == pytest.approx(45.0)  # the report's 45 s beats 10 % of 2 min
    assert TimeBudget(600, start=0.0, reserve_s=30.0).working_s == 570.0  # a reserve given outright
    for text in ("10%", "45 s", "3 ms", "50%", "first 40%", "60%"):
        assert text in SPLIT_RULE
    with pytest.raises(ValueError, match="positive"):
        TimeBudget(0)
    with pytest.raises(ValueError, match="reserve_s"):
        TimeBudget(60, reserve_s=60)


def test_the_fit_time_limit_stops_at_the_epoch_end_nearest_its_deadline_and_says_how_much_is_left():
    clock, lines = FakeClock(0.0), []
    tabddpm = SimpleNamespace(n_iter=10**6)
    limit = FitTimeLimit(100.0, max_epochs=10**6, plugin="ddpm", log=lines.append, clock=clock)
    limit.begin()
    stops = []
    for epoch in range(1, 20):
        clock.now = 20.0 if epoch == 1 else clock.now + 7.0  # the first epoch carries the model's construction
        stops.append(limit.epoch_end(epoch, tabddpm))
        if epoch == 1:  # only the first epoch measured: 80 s left / 20 s → 4 more
            assert limit.planned_epochs == 5
        if epoch == 2:  # the first left out: 73 s left / 7 s = 10.4 → 10 more
            assert limit.planned_epochs == 12 and tabddpm.n_iter == 12
        if stops[-1]:
            break
    # Epoch 12 ends at 97 s: 3 s before the deadline, nearer than epoch 13 would end (104 s).
    assert stops == [False] * 11 + [True] and tabddpm.n_iter == 12  # the learning rate reached 0 at epoch 12
    assert limit.record() == {"time_limit_s": 100.0, "seconds": 97.0, "epochs": 12, "max_epochs": 10**6,
                              "stopped_early_at_epoch": 12, "epoch_seconds": 7.0, "stopped_by": "time limit"}
    # Logged each time another tenth is used (20, 34, 41, 55, 62, 76, 83, 90 s), then the stop.
    assert lines[0] == "final fit: 20 s of 1 min 40 s used, 1 min 20 s left (ddpm epoch 1 of about 5)"
    assert lines[1] == "final fit: 34 s of 1 min 40 s used, 1 min 6 s left (ddpm epoch 3 of about 12)"
    assert len(lines) == 9 and all(" used, " in line for line in lines)
    assert lines[-1] == ("final fit: 1 min 37 s of 1 min 40 s used, 3 s left (ddpm epoch 12); its time is up: "
                         "training stops after epoch 12, keeping the model as trained so far")


def test_a_step_bound_under_the_time_limit_ends_the_fit_first_and_the_whole_run_is_shown():
    clock, lines = FakeClock(0.0), []
    budget = TimeBudget(900.0, start=-300.0, clock=clock)
    tabddpm = SimpleNamespace(n_iter=3)
    limit = FitTimeLimit(60.0, max_epochs=3, log=lines.append, clock=clock, budget=budget)
    for epoch in (1, 2, 3):
        clock.now += 10.0
        assert not limit.epoch_end(epoch, tabddpm)
    assert tabddpm.n_iter == 3 and limit.record()["stopped_early_at_epoch"] is None
    assert limit.record()["stopped_by"] == "end of training"
    assert lines[-1].endswith("; whole run: 5 min 30 s of 15 min used, 9 min 30 s left")


def test_no_trial_starts_that_is_expected_to_end_past_the_study_timeout():
    stopped = []
    study = SimpleNamespace(stop=lambda: stopped.append(True))
    start = dt.datetime(2026, 1, 1, 12, 0, 0)

    def trial(state: str, seconds: float) -> SimpleNamespace:
        return SimpleNamespace(state=optuna.trial.TrialState[state], datetime_start=start,
                               datetime_complete=start + dt.timedelta(seconds=seconds))

    callback = StopWhenNoTimeForATrial(time.time() + 100.0)
    callback(study, trial("PRUNED", 500.0))  # a pruned trial says nothing about how long a full one takes
    callback(study, trial("COMPLETE", 40.0))  # 100 s left, 40 s expected: the next trial may start
    assert stopped == []
    callback(study, trial("COMPLETE", 200.0))  # mean 120 s > 100 s left: stop
    assert stopped == [True]


def test_a_ddpm_fit_ends_within_10_percent_of_its_time_budget(encoded, tmp_path):
    """The issue's test: on 300 Adult rows, with a step bound no fit reaches (10 million epochs), a 20 s fit ends
    within 10 % (2 s) of its budget, measured around `fit_generator`. An epoch here is one optimizer step (~20–40 ms,
    2 busy cores); the fit ends at the epoch end nearest its deadline, so it misses by at most half an epoch. On a
    machine so loaded that an epoch takes longer than 2 s, one epoch is allowed instead (the hook cannot cut an
    epoch), and the assertion says so."""
    generators.fit_generator(encoded, "ddpm", {"n_iter": 1}, seed=0, workspace=tmp_path / "warm")  # imports, torch
    lines: list[str] = []
    limit_s = 20.0
    started = time.monotonic()
    fitted = generators.fit_generator(encoded, "ddpm", {"n_iter": 10**7}, seed=0, workspace=tmp_path / "fit",
                                      time_limit_s=limit_s, log=lines.append)
    wall = time.monotonic() - started
    stop = fitted.budget_stop
    tolerance = max(0.10 * limit_s, stop["epoch_seconds"])
    assert abs(wall - limit_s) <= tolerance, (
        f"the fit took {wall:.2f} s for a {limit_s:g} s budget (allowed ±{tolerance:.2f} s: 10 %, or one epoch of "
        f"{stop['epoch_seconds']:.2f} s when epochs are longer)")
    assert stop["stopped_by"] == "time limit" and stop["stopped_early_at_epoch"] == stop["epochs"] > 10
    assert stop["max_epochs"] == 10**7 and stop["time_limit_s"] == pytest.approx(limit_s, abs=0.01)
    assert stop["seconds"] == pytest.approx(wall, abs=0.5)
    assert fitted.model.model.n_iter == stop["epochs"]  # the learning-rate decay was stretched to end at the deadline
    progress = [line for line in lines if line.startswith("final fit: ")]
    assert 5 <= len(progress) <= 12 and all(" of 20 s used, " in line and " left" in line for line in progress)
    assert "its time is up: training stops after epoch" in progress[-1]
    assert any("stopped by its 20 s time limit after epoch" in line for line in lines)
    rows = generators.sample(fitted, 200, seed=0)
    assert len(rows) == 200 and np.isfinite(rows.select_dtypes("number").to_numpy()).all()


def test_a_tvae_fit_whose_time_is_up_keeps_its_model(encoded, tmp_path):
    fitted = generators.fit_generator(encoded, "tvae", {"n_iter": 10**6, "batch_size": 100}, seed=0,
                                      workspace=tmp_path, deadline=time.monotonic() + 3.0)
    stop = fitted.budget_stop
    assert stop["stopped_by"] == "time limit" and 1 <= stop["stopped_early_at_epoch"] == stop["epochs"] < 10**6
    assert fitted.model.fitted and len(generators.sample(fitted, 50, seed=0)) == 50


def test_a_fit_without_a_time_limit_records_none_and_one_that_reaches_its_steps_first_says_so(encoded, tmp_path):
    assert generators.fit_generator(encoded, "ddpm", {"n_iter": 2}, seed=0, workspace=tmp_path).budget_stop is None
    fitted = generators.fit_generator(encoded, "ddpm", {"n_iter": 3}, seed=0, workspace=tmp_path, time_limit_s=600.0)
    assert fitted.budget_stop["stopped_early_at_epoch"] is None and fitted.budget_stop["epochs"] == 3
    assert fitted.model.model.n_iter == 3  # the learning-rate schedule of a step-bounded fit is left alone
