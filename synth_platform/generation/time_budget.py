"""The generation budget is a time budget: one setting (default 15 minutes, on the machine the run runs on) split
between the tuning study and the final fit by `SPLIT_RULE`, with progress lines that show the time left against it.
Pure logic: no Dagster, no torch; every clock is injectable, so the rule is tested on a fake clock.

Two clocks:
- `TimeBudget` reads the wall clock (`time.time`) by default: the budget starts with the run and spans assets that
  may run in separate processes, which share the wall clock (a Dagster run's start time is a wall-clock timestamp).
- `FitTimeLimit`, the per-epoch hook that ends one fit at its deadline, reads `time.monotonic`: inside one process a
  deadline must not move when the system clock is set.

The split rule, in words (`SPLIT_RULE`, also written into the assets' metadata):

1. A reserve for what comes after the final fit is set aside first: sampling the synthetic rows, the contract check
   and the report. It is the larger of `RESERVE_SHARE` (10 %) of the budget and `REPORT_RESERVE_S` (45 s) plus
   `SAMPLING_SECONDS_PER_ROW` (3 ms) per synthetic row asked for, at most `MAX_RESERVE_SHARE` (half) of the budget.
2. What is left is the working time. Everything before the final fit (reading the source, profiling and the tuning
   study) gets the first `TUNING_SHARE` (40 %) of it: the study starts no trial past that point, nor a trial that
   it expects (the mean time of its completed trials) to end past it, and no trial may run longer than the tuning
   time left when the study starts.
3. The final fit gets the working time left when it starts: its own 60 % plus whatever tuning did not use, and at
   least `FIT_FLOOR_SHARE` (10 %) of the working time when the steps before it overran. It ends at the end of the
   training epoch that ends nearest its deadline, keeping the model as trained so far; a step count given as well
   stays an upper bound.

On the default 15 min with 10,000 rows: reserve 90 s, working time 13 min 30 s, tuning until 5 min 24 s after the
start, the final fit until 13 min 30 s (8 min 6 s or more), sampling and the report in the last 1 min 30 s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

DEFAULT_BUDGET_MINUTES = 15.0
# Tuning's share of the working time. Measured on Adult on the 2-core development machine (docs/benchmarks.md, 2026-11-24: 2 constrained
# tuning trials of 1,000 steps on 5,000 rows in 63 s, ~31 s a trial), 40 % of the default working time (5 min 24 s)
# holds about 10 such trials: as many as Optuna's TPE sampler draws at random (its n_startup_trials) before it
# models the search space, so a default study gets as far as informed suggestions. The other 60 % is the final fit
# on all training rows, the model that is released (docs/benchmarks.md, 2026-11-24: the default 5,000-step TabDDPM fit alone took 168 s).
TUNING_SHARE = 0.40
# The reserve after the final fit. Measured: sampling 10,000 Adult rows through 100 diffusion steps 6 s, contract
# check 2 s, report 12.7 s on the idle machine (2026-11-24); here, with a benchmark on both cores, ddpm sampled 2,000
# rows of a 300-row model in 2.8 s (1.4 ms a row, decoding included) and a busy machine saw the report take 167 s with
# a test process beside it. So: 3 ms a row (twice the busy-core rate: re-draws of rejected rows, the contract
# check) plus 45 s for the report (3.5× its idle time), and never under a tenth of the budget.
RESERVE_SHARE = 0.10
REPORT_RESERVE_S = 45.0
SAMPLING_SECONDS_PER_ROW = 0.003
MAX_RESERVE_SHARE = 0.5  # a reserve for very many rows may not starve tuning and the fit: the run then overruns
FIT_FLOOR_SHARE = 0.10  # the final fit's least time when the steps before it overran (the run then overruns)
MIN_TUNING_S = 1.0  # less tuning time left than this when the study starts: no new trial (n_trials=0)
PROGRESS_TENTHS = 10  # a fit's progress is logged each time another tenth of its time share is used

SPLIT_RULE = (
    "The time budget runs from the start of the run. First a reserve is set aside for sampling, the contract check "
    f"and the report: the larger of {RESERVE_SHARE:.0%} of the budget and {REPORT_RESERVE_S:g} s plus "
    f"{SAMPLING_SECONDS_PER_ROW * 1000:g} ms per synthetic row, at most {MAX_RESERVE_SHARE:.0%} of the budget. "
    f"Of the rest (the working time), everything before the final fit (source, profiling, the tuning study) gets the "
    f"first {TUNING_SHARE:.0%}: no trial starts after it, nor one expected (the mean of the completed trials) to end "
    "after it, and no trial runs longer than the tuning time left when the study starts. The final fit gets the "
    f"working time left when it starts (its {1 - TUNING_SHARE:.0%} plus what tuning did not use, at least "
    f"{FIT_FLOOR_SHARE:.0%} of the working time) and ends at the end of the epoch that ends nearest its deadline, "
    "with the model as trained so far."
)


def format_duration(seconds: float) -> str:
    """"45 s", "6 min 12 s", "15 min", "1 h 2 min" (whole seconds; negative durations as their size)."""
    total = int(round(abs(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    return f"{secs} s"


def usage_line(stage: str, used: float, total: float) -> str:
    """"final fit: 6 min 12 s of 15 min used, 8 min 48 s left" (or "…, 1 min 3 s over")."""
    used_r, total_r = int(round(used)), int(round(total))
    left = total_r - used_r
    tail = f"{format_duration(left)} left" if left >= 0 else f"{format_duration(-left)} over"
    return f"{stage}: {format_duration(used_r)} of {format_duration(total_r)} used, {tail}"


def default_reserve_s(total_s: float, num_rows: int) -> float:
    """Step 1 of `SPLIT_RULE`: seconds set aside for sampling `num_rows` rows, the contract check and the report."""
    estimate = REPORT_RESERVE_S + SAMPLING_SECONDS_PER_ROW * max(0, int(num_rows))
    return min(max(RESERVE_SHARE * total_s, estimate), MAX_RESERVE_SHARE * total_s)


@dataclass(frozen=True)
class TimeBudget:
    """`total_s` seconds for a whole run from `start` (a reading of `clock`; None: the clock when the budget is
    made), split by `SPLIT_RULE`. `num_rows`: synthetic rows asked for (sizes the reserve); `reserve_s`: the reserve
    itself instead (None: `default_reserve_s`). Methods that take `now` read `clock` when it is None."""

    total_s: float = DEFAULT_BUDGET_MINUTES * 60
    start: float | None = None
    num_rows: int = 10_000
    reserve_s: float | None = None
    tuning_share: float = TUNING_SHARE
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.total_s, (int, float)) and math.isfinite(self.total_s) and self.total_s > 0):
            raise ValueError(f"the time budget must be a positive number of seconds, got {self.total_s!r}.")
        if not 0.0 <= self.tuning_share < 1.0:
            raise ValueError(f"tuning_share must lie in [0, 1), got {self.tuning_share!r}.")
        if self.reserve_s is not None and not 0.0 <= self.reserve_s < self.total_s:
            raise ValueError(f"reserve_s must lie in [0, total_s), got {self.reserve_s!r} of {self.total_s!r}.")
        if self.start is None:
            object.__setattr__(self, "start", self.clock())

    @classmethod
    def from_minutes(cls, minutes: float, **kwargs: Any) -> TimeBudget:
        return cls(total_s=float(minutes) * 60.0, **kwargs)

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    @property
    def reserve(self) -> float:
        """Seconds kept for sampling, the contract check and the report (step 1)."""
        return self.reserve_s if self.reserve_s is not None else default_reserve_s(self.total_s, self.num_rows)

    @property
    def working_s(self) -> float:
        """The budget less the reserve: what tuning and the final fit share."""
        return self.total_s - self.reserve

    @property
    def tuning_seconds(self) -> float:
        """Seconds from the start by which everything before the final fit, tuning included, is done (step 2)."""
        return self.tuning_share * self.working_s

    @property
    def tuning_deadline(self) -> float:
        """The clock reading after which no tuning trial starts."""
        return self.start + self.tuning_seconds

    @property
    def fit_deadline_offset(self) -> float:
        """Seconds from the start by which the final fit ends (step 3): the working time."""
        return self.working_s

    def elapsed(self, now: float | None = None) -> float:
        return self._now(now) - self.start

    def remaining(self, now: float | None = None) -> float:
        """Seconds of the whole budget left at `now` (negative when it is overrun)."""
        return self.start + self.total_s - self._now(now)

    def tuning_seconds_left(self, now: float | None = None) -> float:
        """Seconds the tuning study may still start trials at `now` (0 when its share is used)."""
        return max(0.0, self.tuning_deadline - self._now(now))

    def tuning_budget(self, base: Any, now: float | None = None) -> Any:
        """`base` (a `tuning.study.TuningBudget`, or any dataclass with n_trials, timeout_s and trial_timeout_s)
        limited to the tuning time left at `now`: timeout_s = that time, trial_timeout_s = the smaller of its own
        and that time; with less than `MIN_TUNING_S` left, n_trials = 0 (the study's earlier comparable trials or
        the fallback are chosen from, no trial runs)."""
        left = self.tuning_seconds_left(now)
        if left < MIN_TUNING_S:
            return replace(base, n_trials=0, timeout_s=MIN_TUNING_S, trial_timeout_s=min(base.trial_timeout_s, MIN_TUNING_S))
        return replace(base, timeout_s=left, trial_timeout_s=min(base.trial_timeout_s, left))

    def fit_seconds(self, elapsed_so_far: float | None = None) -> float:
        """The final fit's time when it starts `elapsed_so_far` seconds after the budget's start (None: now): the
        working time left, at least `FIT_FLOOR_SHARE` of the working time."""
        elapsed = self.elapsed() if elapsed_so_far is None else elapsed_so_far
        return max(self.working_s - elapsed, FIT_FLOOR_SHARE * self.working_s)

    def fit_deadline(self, now: float | None = None) -> float:
        """The clock reading at which a final fit starting at `now` must end (on this budget's clock)."""
        now = self._now(now)
        return now + self.fit_seconds(now - self.start)

    def progress_line(self, stage: str, now: float | None = None) -> str:
        """"final fit: 6 min 12 s of 15 min used, 8 min 48 s left": the whole budget at `now`."""
        return usage_line(stage, self.elapsed(now), self.total_s)

    def plan(self) -> dict[str, Any]:
        """The split as seconds from the start (JSON-ready, for metadata), with the rule in words."""
        return {
            "budget_s": round(self.total_s, 1), "reserve_s": round(self.reserve, 1), "working_s": round(self.working_s, 1),
            "tuning_until_s": round(self.tuning_seconds, 1), "final_fit_until_s": round(self.working_s, 1),
            "rule": SPLIT_RULE,
        }


class FitTimeLimit:
    """Per-epoch hook that ends one fit at `deadline` (a reading of `clock`, by default `time.monotonic`).

    After every epoch (`epoch_end`) it estimates an epoch's time (the mean of the last `window` epochs, the first one
    left out once there are others: it carries the model's construction) and plans the epochs whose end lands
    nearest the deadline, never more than `max_epochs` (the step count's upper bound). `epoch_end` answers True when
    training must stop now, i.e. when stopping ends nearer the deadline than another epoch would: the fit ends within
    half an epoch of its deadline. For TabDDPM, whose learning rate falls linearly to 0 over its `n_iter` epochs, the
    planned count becomes its `n_iter`, so the rate reaches 0 at the deadline instead of staying near its start value
    under a huge step bound. Progress (time used and left, and the whole budget's when a `TimeBudget` is given) is
    logged each time another tenth of the fit's time is used. `record()`: what happened, JSON-ready."""

    def __init__(
        self, deadline: float, *, max_epochs: int, plugin: str = "", stage: str = "final fit",
        log: Callable[[str], None] = lambda message: None, clock: Callable[[], float] = time.monotonic,
        budget: TimeBudget | None = None, started: float | None = None, window: int = 10,
    ) -> None:
        self.deadline, self.max_epochs, self.plugin, self.stage = deadline, max(1, int(max_epochs)), plugin, stage
        self.log, self.clock, self.budget, self.window = log, clock, budget, max(1, int(window))
        self.started = clock() if started is None else started
        self.limit_s = self.deadline - self.started
        self.epochs = 0
        self.epoch_times: list[float] = []
        self.planned_epochs: int | None = None
        self.stopped_at_epoch: int | None = None
        self._last = self.started
        self._logged_tenth = 0

    def begin(self) -> None:
        """A fit (again, e.g. after a divergence) starts now: epoch times are measured afresh; the deadline stays."""
        self._last = self.clock()
        self.epochs, self.epoch_times, self.planned_epochs, self.stopped_at_epoch = 0, [], None, None

    @property
    def epoch_seconds(self) -> float | None:
        times = self.epoch_times[1:] if len(self.epoch_times) > 1 else self.epoch_times
        times = times[-self.window:]
        return sum(times) / len(times) if times else None

    def epoch_end(self, epoch: int, tabddpm: Any = None) -> bool:
        """After epoch `epoch` (from 1): True when the fit must stop now (time used up before `max_epochs`)."""
        now = self.clock()
        self.epochs = epoch
        self.epoch_times.append(now - self._last)
        self._last = now
        left = self.deadline - now
        per_epoch = self.epoch_seconds or 0.0
        if left <= 0:
            more = 0
        elif per_epoch <= 0:
            more = self.max_epochs  # no measurable epoch time: only the step bound limits
        else:
            more = math.floor(left / per_epoch + 0.5)  # the epoch end nearest the deadline
        planned = min(self.max_epochs, epoch + more)
        self.planned_epochs = planned
        stop = planned <= epoch < self.max_epochs
        if stop:
            self.stopped_at_epoch = epoch
        elif tabddpm is not None and planned > epoch and hasattr(tabddpm, "n_iter"):
            tabddpm.n_iter = planned  # TabDDPM's linear learning-rate decay reaches 0 at the planned last epoch
        self._progress(now, epoch, stop)
        return stop

    def _progress(self, now: float, epoch: int, stop: bool) -> None:
        used = now - self.started
        tenth = int(PROGRESS_TENTHS * used / self.limit_s) if self.limit_s > 0 else PROGRESS_TENTHS
        if not stop and tenth <= self._logged_tenth:
            return
        self._logged_tenth = max(self._logged_tenth, tenth)
        who = f"{self.plugin} " if self.plugin else ""
        line = f"{usage_line(self.stage, used, self.limit_s)} ({who}epoch {epoch}"
        if self.planned_epochs is not None and not stop:
            line += f" of about {self.planned_epochs}"
        line += ")"
        if stop:
            line += f"; its time is up: training stops after epoch {epoch}, keeping the model as trained so far"
        if self.budget is not None:
            line += f"; {self.budget.progress_line('whole run')}"
        self.log(line)

    def record(self, seconds: float | None = None) -> dict[str, Any]:
        """JSON-ready: the time limit, the seconds the fit took (`seconds`, else since it started), the epochs
        trained, the epoch at which the time limit stopped it (None: it ended at `max_epochs`) and the epoch time."""
        taken = (self.clock() - self.started) if seconds is None else seconds
        per_epoch = self.epoch_seconds
        return {
            "time_limit_s": round(self.limit_s, 3), "seconds": round(taken, 3), "epochs": self.epochs,
            "max_epochs": self.max_epochs, "stopped_early_at_epoch": self.stopped_at_epoch,
            "epoch_seconds": None if per_epoch is None else round(per_epoch, 4),
            "stopped_by": "time limit" if self.stopped_at_epoch is not None else "end of training",
        }
