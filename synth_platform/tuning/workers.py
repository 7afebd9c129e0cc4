"""Several worker processes (and machines) sharing one persisted Optuna study. Pure logic: no Dagster here.

Every worker opens the same RDB storage (PostgreSQL; SQLite only for a single worker), loads the same study and runs
`study.optimize` with a sampler of its own seed. Each trial records which worker ran it (`worker_host`,
`worker_pid`, `worker_index`, `sampler_seed` user attrs) and, when the objective raises, the error (`error`).

Crashed workers: while a trial runs, its worker writes a heartbeat to the storage every `heartbeat_interval_s`.
Before each trial, every worker fails the study's trials whose heartbeat is older than `grace_period_s` (Optuna's
`fail_stale_trials`), and `RetryHeartbeatStaleTrialCallback` re-enqueues each such trial with the same parameters
as a WAITING trial that the next free worker runs first (at most `max_retry` times per original trial). The
coordinator (`run_workers`) also notices its own children dying: it fails their RUNNING trials at once (same retry
callback, no need to wait for the grace period) and runs the budget they did not finish in one recovery worker.

The objective is not defined here: a worker imports a factory given as "package.module:function" and calls it with
picklable keyword arguments (paths to files, numbers, strings), so a worker can be a spawned process or a
`python -m synth_platform.tuning.workers ...` on another machine.

Per-trial time limit (not built): `study.optimize`'s `timeout` only stops *new* trials, and a Python thread cannot
interrupt a training step. A limit would run each trial under a watchdog in the coordinator that SIGKILLs a worker
whose RUNNING trial is older than the limit, after tagging that trial (e.g. a `timed_out` user attr) so that it is
failed without a retry — a retry would run the same slow parameters again.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from synth_platform.tuning.strategy import CONSTRAINTS_ATTR, ERROR_ATTR, SAMPLERS, check_sampler, make_pruner, make_sampler


ObjectiveFn = Callable[[optuna.Trial], "float | Sequence[float]"]


class WorkersFailedError(RuntimeError):
    """No worker of a `run_workers` call finished: nothing was tuned."""


# --- storage --------------------------------------------------------------------------------------------------------


def is_sqlite(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0].lower() == "sqlite"


def check_heartbeat_settings(heartbeat_interval_s: int, grace_period_s: int, max_retry: int | None) -> None:
    for name, value in (("heartbeat_interval_s", heartbeat_interval_s), ("grace_period_s", grace_period_s)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a whole number of seconds >= 1 (Optuna's heartbeat takes ints), got {value!r}.")
    if grace_period_s <= heartbeat_interval_s:
        raise ValueError(
            f"grace_period_s ({grace_period_s}) must exceed heartbeat_interval_s ({heartbeat_interval_s}), or live "
            "trials between two heartbeats are failed as stale; use at least twice the interval."
        )
    if max_retry is not None and max_retry < 0:
        raise ValueError(f"max_retry must be >= 0 or None (retry without limit), got {max_retry}.")


def storage_for(url: str, *, heartbeat_interval_s: int = 10, grace_period_s: int = 60, max_retry: int | None = 2) -> RDBStorage:
    """An Optuna RDB storage whose running trials send heartbeats and whose stale trials are retried.

    A trial is stale when its heartbeat is older than `grace_period_s`; it is then failed and re-enqueued with the
    same parameters, at most `max_retry` times per original trial (None: without limit). Optuna takes whole seconds.
    SQLite works for one worker process; several processes on one SQLite file wait on its single write lock
    ("database is locked"), so `run_workers` refuses more than one worker on SQLite.

    Optuna creates its tables on first use without IF NOT EXISTS, so workers that open a fresh PostgreSQL database
    at the same moment collide (duplicate key on pg_type "studydirection"); that collision is retried here.
    """
    check_heartbeat_settings(heartbeat_interval_s, grace_period_s, max_retry)
    engine_kwargs = {} if is_sqlite(url) else {"pool_pre_ping": True}  # idle connections die during long trials
    for attempt in range(_SCHEMA_RACE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeat_interval and the retry callback
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval_s,
                    grace_period=grace_period_s,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == _SCHEMA_RACE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # another process is creating the tables; they exist once it commits
    raise AssertionError("unreachable")


_SCHEMA_RACE_ATTEMPTS = 5


# --- what a worker runs ---------------------------------------------------------------------------------------------


def derive_seed(base_seed: int, *identity: int) -> int:
    """A sampler seed for one worker: distinct per (base seed, worker identity), reproducible, fits in 32 bits."""
    return int(np.random.SeedSequence([int(base_seed) & 0xFFFFFFFF, *(int(i) & 0xFFFFFFFF for i in identity)]).generate_state(1)[0])


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one worker needs, picklable: it crosses to spawned processes and is what the CLI builds.

    `objective` names a factory "package.module:function"; `objective(**objective_kwargs)` returns the objective
    `trial -> value` (or values, one per direction). With `constraints=True` every completed trial must carry its
    constraints: a list of floats under the user attr "constraints" (or `trial.set_constraint(name, value)` calls);
    a value <= 0 is satisfied. `worker_index` picks the sampler seed derived from `base_seed`; None (the CLI's
    default) derives it from the host name and process id instead, distinct but not reproducible.
    """

    storage_url: str
    study_name: str
    objective: str
    objective_kwargs: Mapping[str, Any] = field(default_factory=dict)
    n_trials: int = 1
    timeout_s: float | None = None
    sampler: str = "tpe"
    base_seed: int = 0
    worker_index: int | None = 0
    directions: tuple[str, ...] = ("minimize",)
    constraints: bool = False
    heartbeat_interval_s: int = 10
    grace_period_s: int = 60
    max_retry: int | None = 2
    pruner: str = "none"  # a strategy.PRUNERS name
    trial_callbacks: tuple[Callable, ...] = ()  # picklable Optuna callbacks (study, trial), e.g. tracking.TrialLogger

    def __post_init__(self) -> None:
        object.__setattr__(self, "directions", tuple(self.directions))
        object.__setattr__(self, "trial_callbacks", tuple(self.trial_callbacks))
        object.__setattr__(self, "objective_kwargs", dict(self.objective_kwargs))

    def validate(self) -> None:
        if ":" not in self.objective or not all(self.objective.split(":", 1)):
            raise ValueError(f"objective must name a factory as 'package.module:function', got {self.objective!r}.")
        if self.n_trials < 0:
            raise ValueError(f"n_trials must be >= 0, got {self.n_trials}.")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive or None, got {self.timeout_s}.")
        if not self.directions or any(d not in ("minimize", "maximize") for d in self.directions):
            raise ValueError(f"directions must be 'minimize' / 'maximize', one per objective value, got {self.directions!r}.")
        check_sampler(self.sampler, multi_objective=len(self.directions) > 1, constraints=self.constraints)
        check_heartbeat_settings(self.heartbeat_interval_s, self.grace_period_s, self.max_retry)

    def sampler_seed(self) -> int:
        if self.worker_index is None:
            host = int.from_bytes(socket.gethostname().encode()[-8:].rjust(8, b"\0"), "big")
            return derive_seed(self.base_seed, host, os.getpid())
        return derive_seed(self.base_seed, self.worker_index)


@dataclass
class WorkerSummary:
    """What one worker did. `exitcode` is None for a worker that ran in the calling process; `error` says why a
    worker stopped early (an exception, or the signal that killed it)."""

    worker_index: int | None
    pid: int
    host: str
    sampler_seed: int | None
    n_trials_asked: int
    trial_numbers: list[int] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    exitcode: int | None = None
    error: str | None = None
    recovery: bool = False  # runs the budget of workers that died
    died: bool = False  # ended without a summary (killed, crashed); an exception it caught itself is only `error`

    @property
    def ok(self) -> bool:
        return self.error is None and self.exitcode in (None, 0)

    def to_dict(self) -> dict:
        return asdict(self)


def load_objective(spec: WorkerSpec) -> ObjectiveFn:
    module_name, _, function_name = spec.objective.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"Cannot import the objective module {module_name!r} ({exc}); install the project on this machine and "
            "put it on PYTHONPATH, or fix the 'module:function' name."
        ) from exc
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise AttributeError(f"{module_name!r} has no function {function_name!r}; name the objective factory as 'module:function'.")
    objective = factory(**spec.objective_kwargs)
    if not callable(objective):
        raise TypeError(f"{spec.objective}(**kwargs) returned {type(objective).__name__}, not an objective trial -> value.")
    return objective


def _apply_constraints(trial: optuna.Trial) -> None:
    """Hand the user attr "constraints" to Optuna 5's samplers (`trial.set_constraint`); fail if there are none."""
    listed = trial.user_attrs.get(CONSTRAINTS_ATTR)
    if listed is None:
        # Optuna 5's Trial has set_constraint but no getter: read the stored trial (private handles, no public one)
        frozen = trial.study._storage.get_trial(trial._trial_id)
        if frozen.constraints:  # the objective called trial.set_constraint itself
            return
        raise ValueError(
            f"Trial {trial.number} stored no constraints although the worker runs with constraints=True: store a list "
            "of floats with trial.set_user_attr('constraints', [...]) (a value <= 0 is satisfied) or call "
            "trial.set_constraint(name, value) in the objective."
        )
    values = [listed] if isinstance(listed, (int, float)) else list(listed)
    for index, value in enumerate(values):
        trial.set_constraint(str(index), float(value))


def _with_bookkeeping(objective: ObjectiveFn, spec: WorkerSpec, seed: int) -> ObjectiveFn:
    host, pid = socket.gethostname(), os.getpid()

    def run_trial(trial: optuna.Trial):
        trial.set_user_attr("worker_host", host)
        trial.set_user_attr("worker_pid", pid)
        trial.set_user_attr("worker_index", spec.worker_index)
        trial.set_user_attr("sampler_seed", seed)
        try:
            result = objective(trial)
            if spec.constraints:
                _apply_constraints(trial)
            return result
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # Optuna 5 keeps no fail reason: record it where every worker can read it
            trial.set_user_attr(ERROR_ATTR, f"{type(exc).__name__}: {exc}"[:2000])
            raise

    return run_trial


def ensure_study(storage: RDBStorage | str, study_name: str, directions: Sequence[str]) -> optuna.Study:
    """Create the study, or load it and check that it optimizes the same directions."""
    study = optuna.create_study(study_name=study_name, storage=storage, directions=list(directions), load_if_exists=True)
    found = tuple(d.name.lower() for d in study.directions)
    if found != tuple(directions):
        raise ValueError(
            f"Study {study_name!r} already exists with directions {found}, not {tuple(directions)}; "
            "use a new study name or the directions it was created with."
        )
    return study


def _load_study(storage: RDBStorage, spec: WorkerSpec, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    try:
        pruner = make_pruner(spec.pruner, "multi" if len(spec.directions) > 1 else "single")
        return optuna.load_study(study_name=spec.study_name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError as exc:
        raise KeyError(
            f"Study {spec.study_name!r} does not exist in this storage; the coordinator creates it (run_workers / "
            "ensure_study), or pass --directions to the CLI to create it."
        ) from exc


def _run_worker(spec: WorkerSpec, storage: RDBStorage, *, recovery: bool = False) -> WorkerSummary:
    seed = spec.sampler_seed()
    sampler = make_sampler(spec.sampler, seed, multi_objective=len(spec.directions) > 1, constraints=spec.constraints)
    study = _load_study(storage, spec, sampler)
    objective = _with_bookkeeping(load_objective(spec), spec, seed)
    summary = WorkerSummary(spec.worker_index, os.getpid(), socket.gethostname(), seed, spec.n_trials, recovery=recovery)
    finished: Counter[str] = Counter()

    def record(study: optuna.Study, trial: FrozenTrial) -> None:
        summary.trial_numbers.append(trial.number)
        finished[trial.state.name] += 1

    if spec.n_trials > 0:
        study.optimize(
            objective, n_trials=spec.n_trials, timeout=spec.timeout_s, catch=(Exception,),
            callbacks=[record, *spec.trial_callbacks],
        )
    summary.states = dict(finished)
    return summary


def run_worker(spec: WorkerSpec) -> WorkerSummary:
    """Run `spec.n_trials` trials of the existing study in this process; objective errors become FAIL trials."""
    storage = storage_for(spec.storage_url, heartbeat_interval_s=spec.heartbeat_interval_s,
                          grace_period_s=spec.grace_period_s, max_retry=spec.max_retry)
    try:
        return _run_worker(spec, storage)
    finally:
        storage.engine.dispose()


# --- coordinator ----------------------------------------------------------------------------------------------------


def trials_per_worker(total_trials: int, n_workers: int) -> list[int]:
    """Split a trial budget as evenly as possible: 10 over 3 workers -> [4, 3, 3]."""
    if n_workers < 1:
        raise ValueError(f"n_workers must be at least 1, got {n_workers}.")
    return [total_trials // n_workers + (1 if i < total_trials % n_workers else 0) for i in range(n_workers)]


def _process_main(spec: WorkerSpec, connection: multiprocessing.connection.Connection, recovery: bool) -> None:
    try:
        storage = storage_for(spec.storage_url, heartbeat_interval_s=spec.heartbeat_interval_s,
                              grace_period_s=spec.grace_period_s, max_retry=spec.max_retry)
        summary = _run_worker(spec, storage, recovery=recovery)
    except BaseException as exc:
        connection.send(WorkerSummary(spec.worker_index, os.getpid(), socket.gethostname(), None, spec.n_trials,
                                      error=f"{type(exc).__name__}: {exc}", recovery=recovery))
        connection.close()
        sys.exit(1)
    connection.send(summary)
    connection.close()


def _describe_exit(index: int | None, pid: int, exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode} without a summary"
    return (f"worker {index} (pid {pid}) {how}; its running trial is failed and retried with the same parameters "
            "(look for out-of-memory kills in the system log if nobody stopped it)")


def _spawn_and_wait(specs: Sequence[WorkerSpec], *, recovery: bool, log: Callable[[str], None]) -> list[WorkerSummary]:
    context = multiprocessing.get_context("spawn")  # not fork: forking after torch/OpenMP started can deadlock
    running = {}
    for spec in specs:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_process_main, args=(spec, sender, recovery),
                                  name=f"optuna-worker-{spec.worker_index}", daemon=False)
        process.start()
        sender.close()
        running[spec.worker_index] = (spec, process, receiver)
        log(f"worker {spec.worker_index} started (pid {process.pid}, {spec.n_trials} trials)")
    received: dict[int | None, WorkerSummary] = {}
    summaries: dict[int | None, WorkerSummary] = {}
    while running:
        waitables = [p.sentinel for _, p, _ in running.values()] + [r for _, _, r in running.values()]
        multiprocessing.connection.wait(waitables)
        for index, (spec, process, receiver) in list(running.items()):
            if index not in received and receiver.poll():
                try:
                    received[index] = receiver.recv()
                except EOFError:
                    received[index] = None
            if process.is_alive():
                continue
            process.join()
            receiver.close()
            summary = received.get(index)
            if summary is None:  # killed: nothing was sent
                summary = WorkerSummary(index, process.pid, socket.gethostname(), None, spec.n_trials, died=True,
                                        error=_describe_exit(index, process.pid, process.exitcode), recovery=recovery)
            summary.exitcode = process.exitcode
            summaries[index] = summary
            del running[index]
            log(f"worker {index} (pid {process.pid}) finished: " + (summary.error or f"{summary.states}"))
    return [summaries[spec.worker_index] for spec in specs]


def _fail_trials_of_dead_workers(storage: RDBStorage, spec: WorkerSpec, dead: Sequence[WorkerSummary]) -> list[int]:
    """Fail the RUNNING trials of processes known to be dead and re-enqueue them, as the heartbeat would later."""
    host = socket.gethostname()
    pids = {summary.pid for summary in dead}
    study = optuna.load_study(study_name=spec.study_name, storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=spec.max_retry)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("worker_host") != host or trial.user_attrs.get("worker_pid") not in pids:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(spec.study_name), trial.number)
        try:
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # another worker's heartbeat check failed it first
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            retry(study, storage.get_trial(trial_id))
        failed.append(trial.number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # and whatever else went stale (other machines)
    return failed


def _unfinished_budget(storage: RDBStorage, spec: WorkerSpec, dead: WorkerSummary) -> int:
    """Trials a dead worker still owed: those it started but did not finish (killed mid-trial) and never started."""
    study = optuna.load_study(study_name=spec.study_name, storage=storage)
    host = socket.gethostname()
    finished = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get("worker_host") != host or trial.user_attrs.get("worker_pid") != dead.pid:
            continue
        if trial.state == TrialState.WAITING:  # a retry, which copied the dead worker's user attrs
            continue
        dead.trial_numbers.append(trial.number)
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            trial.state == TrialState.FAIL and ERROR_ATTR in trial.user_attrs
        ):
            finished += 1
    states = {trial.number: trial.state.name for trial in study.get_trials(deepcopy=False)}
    dead.states = dict(Counter(states[number] for number in dead.trial_numbers))
    return max(0, dead.n_trials_asked - finished)


def run_workers(
    spec: WorkerSpec,
    n_workers: int,
    *,
    total_trials: int | None = None,
    recover: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> list[WorkerSummary]:
    """Run `n_workers` workers on one study: each runs `spec.n_trials` trials (or a share of `total_trials`) with
    its own sampler seed, in processes of the spawn context (one worker runs in this process).

    The study is created first if it is missing. A worker that dies is reported in its summary (exit code, signal),
    never hidden; with `recover`, its RUNNING trial is failed and re-enqueued with the same parameters, and a
    recovery worker runs what it left unfinished. Raises WorkersFailedError when no worker finished at all.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be at least 1, got {n_workers}.")
    spec.validate()
    if n_workers > 1 and is_sqlite(spec.storage_url):
        raise ValueError(
            "Several worker processes on one SQLite file contend for its single write lock and fail with "
            "'database is locked'; use a PostgreSQL storage URL (postgresql+psycopg2://user@host/db) or n_workers=1."
        )
    try:
        pickle.dumps(spec)
    except Exception as exc:
        raise TypeError(f"The worker spec must be picklable to reach worker processes ({exc}); pass objective_kwargs "
                        "as plain values such as file paths, not open connections or lambdas.") from exc
    shares = trials_per_worker(total_trials, n_workers) if total_trials is not None else [spec.n_trials] * n_workers
    specs = [replace(spec, worker_index=i, n_trials=n) for i, n in enumerate(shares)]
    storage = storage_for(spec.storage_url, heartbeat_interval_s=spec.heartbeat_interval_s,
                          grace_period_s=spec.grace_period_s, max_retry=spec.max_retry)
    started = time.monotonic()
    try:
        ensure_study(storage, spec.study_name, spec.directions)
        if n_workers == 1:
            summaries = [_run_worker(specs[0], storage)]
        else:
            summaries = _spawn_and_wait(specs, recovery=False, log=log)
        dead = [s for s in summaries if s.died]
        if dead and recover:
            failed = _fail_trials_of_dead_workers(storage, spec, dead)
            owed = sum(_unfinished_budget(storage, spec, s) for s in dead)
            log(f"{len(dead)} worker(s) died; failed and re-enqueued their running trials {failed}; "
                f"a recovery worker runs the {owed} trials they owed")
            time_left = None if spec.timeout_s is None else spec.timeout_s - (time.monotonic() - started)
            if owed and (time_left is None or time_left > 0):
                recovery_spec = replace(spec, worker_index=n_workers, n_trials=owed, timeout_s=time_left)
                summaries += _spawn_and_wait([recovery_spec], recovery=True, log=log)
    finally:
        storage.engine.dispose()
    if not any(s.ok for s in summaries):
        raise WorkersFailedError("No tuning worker finished: " + "; ".join(f"worker {s.worker_index}: {s.error}" for s in summaries))
    return summaries


# --- CLI: a worker on another machine -------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m synth_platform.tuning.workers",
        description="Run one tuning worker against a shared Optuna study (same storage URL, same study name).",
    )
    parser.add_argument("--storage", required=True, help="SQLAlchemy URL of the Optuna storage, e.g. "
                        "postgresql+psycopg2://optuna@db-host/optuna (password from ~/.pgpass or PGPASSWORD)")
    parser.add_argument("--study", required=True, help="study name, the same on every worker")
    parser.add_argument("--objective", required=True, help="objective factory, 'package.module:function'")
    kwargs = parser.add_mutually_exclusive_group()
    kwargs.add_argument("--kwargs", default=None, help="the factory's keyword arguments as a JSON object")
    kwargs.add_argument("--kwargs-file", default=None, help="a JSON file holding the factory's keyword arguments")
    parser.add_argument("--trials", type=int, required=True, help="trials this worker runs")
    parser.add_argument("--timeout", type=float, default=None, help="seconds after which no new trial starts")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--worker-index", type=int, default=None,
                        help="distinct per worker for reproducible seeds; default: derived from host and pid")
    parser.add_argument("--directions", nargs="+", default=None, choices=("minimize", "maximize"),
                        help="create the study if missing with these directions (default: it must exist)")
    parser.add_argument("--constraints", action="store_true", help="trials carry constraints (user attr 'constraints')")
    parser.add_argument("--heartbeat-interval", type=int, default=WorkerSpec.heartbeat_interval_s)
    parser.add_argument("--grace-period", type=int, default=WorkerSpec.grace_period_s)
    parser.add_argument("--max-retry", type=int, default=WorkerSpec.max_retry)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.kwargs_file is not None:
        with open(args.kwargs_file, encoding="utf-8") as handle:
            objective_kwargs = json.load(handle)
    else:
        objective_kwargs = json.loads(args.kwargs) if args.kwargs else {}
    if not isinstance(objective_kwargs, dict):
        raise SystemExit("--kwargs / --kwargs-file must hold a JSON object (the factory's keyword arguments).")
    if is_sqlite(args.storage):
        print("warning: SQLite storage serves one worker process; share a study between workers on PostgreSQL.", file=sys.stderr)
    storage = storage_for(args.storage, heartbeat_interval_s=args.heartbeat_interval, grace_period_s=args.grace_period,
                          max_retry=args.max_retry)
    try:
        try:
            found = tuple(d.name.lower() for d in storage.get_study_directions(storage.get_study_id_from_name(args.study)))
        except KeyError:
            found = None
        directions = tuple(args.directions) if args.directions else (found or ("minimize",))
        spec = WorkerSpec(storage_url=args.storage, study_name=args.study, objective=args.objective,
                          objective_kwargs=objective_kwargs, n_trials=args.trials, timeout_s=args.timeout,
                          sampler=args.sampler, base_seed=args.seed, worker_index=args.worker_index,
                          directions=directions, constraints=args.constraints,
                          heartbeat_interval_s=args.heartbeat_interval, grace_period_s=args.grace_period,
                          max_retry=args.max_retry)
        spec.validate()
        if args.directions:
            ensure_study(storage, args.study, directions)
        summary = _run_worker(spec, storage)
    finally:
        storage.engine.dispose()
    print(json.dumps(summary.to_dict()))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyError, ValueError, ImportError) as error:  # ours say what to do; a traceback would bury that
        sys.exit(f"error: {error.args[0] if isinstance(error, KeyError) and error.args else error}")
