"""MLflow tracking of Optuna studies: one parent run per study session, one nested run per trial, the final choice.

Pure logic: no Dagster here. Everything goes through `MlflowClient` with explicit run ids (never the fluent
`mlflow.start_run` / active-run stack, and not dagster-mlflow's `mlflow_tracking` resource, which leaves runs RUNNING
unless its end hook is attached), so trials finished in other threads or worker processes can log to the parent run
knowing only its id: a `TrialLogger` is picklable and holds nothing but the tracking URI and two ids.

Runs always end FINISHED or FAILED:
- `StudyTracker` ends its parent run FINISHED on a normal exit and FAILED on any exception, `BaseException`
  included (KeyboardInterrupt, Dagster's run-termination interrupt); the exception propagates.
- A nested trial run is created, filled and ended in one go when Optuna reports the trial finished: FINISHED for
  COMPLETE and PRUNED trials, FAILED otherwise.
- A process killed outright (SIGKILL, OOM killer) runs no hook; its runs carry `host`, `pid` and `pid_start` tags,
  and `fail_orphaned_runs` (called by every `StudyTracker` on start) marks FAILED each RUNNING run whose process on
  this host is gone. Runs left by processes on other hosts are not touched: their liveness cannot be checked here.

MLflow outages: tracking observes tuning and never stops it. A tracking call that fails is logged as a warning
(logger `synth_platform.tuning.tracking`, and `StudyTracker.problems` for the caller to show) and tuning goes on.
After one failure the tracker (or trial logger, per process) stops trying, because each call to a tracking server
that is down costs MLflow's HTTP retries (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, default 7 with exponential backoff:
minutes), which would eat the tuning budget trial after trial; the parent run's final status is still attempted
once at exit. A misconfigured URI (an unsupported scheme) is refused by `tracking_uri_for` instead.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import optuna

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "synth_platform/tuning"

# Tags every run written here carries; the orphan sweep reads host, pid and pid_start.
TAG_STUDY_NAME = "study_name"
TAG_DAGSTER_RUN_ID = "dagster_run_id"
TAG_HOST = "host"
TAG_PID = "pid"
TAG_PID_START = "pid_start"  # the process's start time in clock ticks since boot (Linux), so a reused pid is no alibi
TAG_TRIAL_NUMBER = "trial_number"
TAG_TRIAL_STATE = "trial_state"
TAG_FAILURE = "failure"  # why a parent run ended FAILED
TAG_ORPHANED = "orphaned"  # why the sweep ended a run FAILED
TAG_CHOSEN_STUDY = "chosen_study"
TAG_CHOSEN_TRIAL = "chosen_trial"
TAG_CHOSEN_TRIAL_RUN_ID = "chosen_trial_run_id"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"  # MLflow's own key: the UI nests runs by it
# MLflow's own experiment tag for the kind of work an experiment holds: `custom_model_development` ("Machine
# learning", ours) or `genai_development` (what MLflow's UI writes when that kind is chosen, and its demo experiment
# carries). MLflow 3.17's UI does not read it: it shows every experiment in the view chosen in its sidebar ("GenAI",
# the default, or "Model training", kept per browser; `?workflowType=machine_learning` in a URL). Recorded anyway.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_CLASSIC_ML = "custom_model_development"

# Schemes MLflow 3.17 serves with a database or a tracking server. Not `file:` / plain paths: the file store is in
# maintenance mode and MLflow 3.17 refuses it unless MLFLOW_ALLOW_FILE_STORE=true.
SUPPORTED_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")

_MAX_TAG_LENGTH = 5000
_MAX_PARAM_LENGTH = 6000


def tracking_uri_for(root: Path, configured: str = "") -> str:
    """The MLflow tracking URI: `configured` (env `MLFLOW_TRACKING_URI` or config) if given, else a local store.

    The local store is SQLite at `root / "mlflow" / "mlflow.db"`: MLflow 3.17 refuses its `file:` store (maintenance
    mode, raises unless MLFLOW_ALLOW_FILE_STORE=true) and recommends `sqlite:///…/mlflow.db`; SQLite needs no server
    and is safe for several local processes writing at once. Artifacts, if any are ever logged, go beside it.
    """
    configured = configured.strip()
    if configured:
        scheme = urlparse(configured).scheme.split("+", 1)[0]
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"MLflow tracking URI {configured!r} is not supported: give a database URL "
                f"(e.g. sqlite:////abs/path/mlflow.db, postgresql://user@host/db) or a tracking server "
                f"(http://host:5000). MLflow 3.17 refuses the file store (./mlruns, file:…); "
                f"migrate it with `mlflow migrate-filestore`."
            )
        return configured
    database = (Path(root) / "mlflow" / "mlflow.db").resolve()
    return f"sqlite:///{database.as_posix()}"


def _client(tracking_uri: str):
    # Imported here: `import mlflow` takes seconds, and only processes that track should pay it. MLflow caches one
    # store per URI per process, so a client per call is cheap.
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot, from /proc (Linux); "" where that cannot be read."""
    fields = _proc_stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def _proc_stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may itself hold spaces and parentheses.
    return stat[stat.rfind(")") + 2 :].split()


def _process_alive(pid: int, started: str) -> bool:
    """Whether `pid` is a live process that is the one that started at `started` (if known). Zombies are dead."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    fields = _proc_stat_fields(pid)
    if fields is None:
        return not Path("/proc/self/stat").exists()  # no /proc at all: trust os.kill; else it vanished meanwhile
    if fields[0] in ("Z", "X"):
        return False
    return not started or len(fields) <= 19 or fields[19] == started


def _process_tags(pid: int | None = None) -> dict[str, str]:
    """The owner tags the orphan sweep reads: this process, or `pid` (a process on this host that outlives the run)."""
    pid = os.getpid() if pid is None else pid
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(pid), TAG_PID_START: _process_start(pid)}


def _terminated_status(state: optuna.trial.TrialState) -> str:
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return "FINISHED" if state in finished else "FAILED"


def _milliseconds(moment) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def _text(value: Any, limit: int = _MAX_TAG_LENGTH) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key(name: str) -> str:
    """`name` as an MLflow param, metric or tag key: MLflow refuses characters outside letters, digits, `_ . - `
    and space (and names that are paths), which would lose the whole trial; others become `_`."""
    key = re.sub(r"[^\w.\- ]", "_", str(name))[:250]
    return key if key.strip(".") else f"_{key}"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _log_batch(client, run_id: str, *, metrics: Mapping[str, float] = {}, params: Mapping[str, Any] = {},
               tags: Mapping[str, str] = {}, timestamp_ms: int | None = None) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    metric_rows = [Metric(_key(key), float(value), now, 0) for key, value in metrics.items()]
    param_rows = [Param(_key(key), _text(str(value), _MAX_PARAM_LENGTH)) for key, value in params.items()]
    tag_rows = [RunTag(key, _text(value)) for key, value in tags.items()]  # our own keys, and _key'd user attrs
    # MLflow's log_batch limits: 1000 metrics, 100 params, 100 tags per call.
    batches = max(math.ceil(len(metric_rows) / 1000), math.ceil(len(param_rows) / 100), math.ceil(len(tag_rows) / 100))
    for i in range(batches):
        client.log_batch(
            run_id,
            metrics=metric_rows[i * 1000 : (i + 1) * 1000],
            params=param_rows[i * 100 : (i + 1) * 100],
            tags=tag_rows[i * 100 : (i + 1) * 100],
        )


def _experiment_id(client, experiment: str, tracking_uri: str, *, create: bool) -> str | None:
    """The id of the active experiment `experiment`; with `create`, created if missing (tagged as classic ML), and an
    existing one without a kind tag gets it (one that has a kind keeps it: a person chose it)."""
    found = client.get_experiment_by_name(experiment)
    if found is None and create:
        from mlflow.exceptions import MlflowException

        try:
            return client.create_experiment(experiment, artifact_location=_artifact_location(tracking_uri),
                                            tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND_CLASSIC_ML})
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":  # another process created it meanwhile: use that
                raise
            found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    if found.lifecycle_stage != "active":
        raise RuntimeError(
            f"MLflow experiment {experiment!r} at {tracking_uri} is deleted: restore it "
            f"(`mlflow experiments restore --experiment-id {found.experiment_id}`) or choose another experiment name."
        )
    if create and not found.tags.get(TAG_EXPERIMENT_KIND):
        client.set_experiment_tag(found.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND_CLASSIC_ML)
    return found.experiment_id


def _artifact_location(tracking_uri: str) -> str | None:
    """Beside a local SQLite store (else MLflow's default, ./mlruns in whatever directory the process runs in)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None  # a server or shared database decides its own artifact root
    return (Path(tracking_uri[len("sqlite:///") :]).parent / "artifacts").as_uri()


def _search_all_runs(client, experiment_ids: list[str], filter_string: str = "") -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def fail_orphaned_runs(tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT) -> list[str]:
    """Mark FAILED every RUNNING run of `experiment` written from this host by a process that no longer exists.

    Such runs were left by a process killed without running any hook (SIGKILL, the OOM killer, a lost machine).
    A run is judged by its `host`, `pid` and `pid_start` tags: same host, and the pid is gone, a zombie, or now a
    different process (start time differs). Runs from other hosts or without those tags are left alone. Returns the
    ids of the runs it failed. Tracking errors propagate (StudyTracker turns them into warnings).
    """
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment, tracking_uri, create=False)
    if experiment_id is None:
        return []
    host = socket.gethostname()
    running = _search_all_runs(
        client, [experiment_id], f"attributes.status = 'RUNNING' and tags.{TAG_HOST} = {_quoted(host)}"
    )
    failed = []
    for run in running:
        tags = run.data.tags
        try:
            pid = int(tags.get(TAG_PID, ""))
        except ValueError:
            continue
        if _process_alive(pid, tags.get(TAG_PID_START, "")):
            continue
        client.set_tag(
            run.info.run_id,
            TAG_ORPHANED,
            f"process {pid} on {host} ended without closing this run (killed?); marked FAILED by the orphan sweep",
        )
        client.set_terminated(run.info.run_id, "FAILED")
        failed.append(run.info.run_id)
    if failed:
        logger.warning("Marked %d orphaned MLflow run(s) of %r FAILED: %s", len(failed), experiment, failed)
    return failed


class TrialLogger:
    """An Optuna callback `(study, frozen_trial)` logging each finished trial as a nested MLflow run.

    The nested run (name `trial-<number>`, tag `mlflow.parentRunId`) holds the trial's params, its objective
    value(s) as metrics (`value`, or one per objective: the study's metric names, else `value_0`, `value_1`, …),
    numeric user attributes as metrics (ks_mean, mia_auc, exact_copy_rate, seconds, …), the `constraints` list as
    `constraint_0`, … (user attribute, else Optuna's constraints system attribute), other user attributes as tags
    `user_attr.<name>` and the trial's state (`trial_state`). It ends FINISHED for COMPLETE and PRUNED trials and
    FAILED otherwise, with the trial's own start and end times. Optuna 5 keeps no fail reason on the trial (it only
    logs it), so an objective that wants the error in MLflow records it itself: `trial.set_user_attr("error", …)`
    before re-raising shows up as the tag `user_attr.error`.

    Picklable: holds the tracking URI and the parent's run and experiment ids only, so worker processes can use it.
    A parent run id of None (tracking unavailable when the study started) makes it do nothing.
    """

    def __init__(self, tracking_uri: str, parent_run_id: str | None, experiment_id: str | None):
        self.tracking_uri = tracking_uri
        self.parent_run_id = parent_run_id
        self.experiment_id = experiment_id
        self._disabled = parent_run_id is None or experiment_id is None

    def __getstate__(self) -> dict:
        # A fresh process tries again even if this one gave up.
        return {"tracking_uri": self.tracking_uri, "parent_run_id": self.parent_run_id,
                "experiment_id": self.experiment_id}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["tracking_uri"], state["parent_run_id"], state["experiment_id"])

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self._disabled:
            return
        try:
            self.log_trial(study, trial)
        except Exception as error:  # an outage must not stop the study
            self._disabled = True
            logger.warning(
                "MLflow logging of trial %d of study %r failed (%s: %s); tuning goes on, and this process logs no "
                "more trials to %s. Check that the tracking store is reachable; a run left RUNNING is marked FAILED "
                "by the next study's orphan sweep.",
                trial.number, study.study_name, type(error).__name__, error, self.tracking_uri,
            )

    def log_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
        """Create, fill and end the trial's nested run; returns its run id. Tracking errors propagate."""
        client = _client(self.tracking_uri)
        tags = {
            TAG_PARENT_RUN_ID: self.parent_run_id,
            TAG_STUDY_NAME: study.study_name,
            TAG_TRIAL_NUMBER: str(trial.number),
            TAG_TRIAL_STATE: trial.state.name,
            **_process_tags(),
        }
        metrics: dict[str, float] = {}
        if trial.values is not None:
            names = study.metric_names
            if names is None:
                names = ["value"] if len(trial.values) == 1 else [f"value_{i}" for i in range(len(trial.values))]
            metrics.update(zip(names, trial.values))
        constraints = trial.user_attrs.get("constraints", trial.system_attrs.get("constraints"))
        if isinstance(constraints, (list, tuple)):
            metrics.update({f"constraint_{i}": c for i, c in enumerate(constraints) if _is_number(c)})
        for name, value in trial.user_attrs.items():
            if name == "constraints":
                continue
            if _is_number(value):
                metrics[name] = value
            else:
                tags[f"user_attr.{_key(name)}"] = _text(value)
        run = client.create_run(
            self.experiment_id, start_time=_milliseconds(trial.datetime_start), tags=tags,
            run_name=f"trial-{trial.number}",
        )
        run_id = run.info.run_id
        try:
            _log_batch(client, run_id, metrics=metrics, params=trial.params,
                       timestamp_ms=_milliseconds(trial.datetime_complete))
        finally:  # the run ends even if logging its contents failed (the store may refuse that too: then the sweep)
            client.set_terminated(run_id, _terminated_status(trial.state), end_time=_milliseconds(trial.datetime_complete))
        return run_id


class StudyTracker:
    """A context manager holding the MLflow parent run of one tuning session of an Optuna study.

        with StudyTracker(uri, study_name=name, dagster_run_id=context.run_id) as tracker:
            study.optimize(objective, callbacks=[tracker.trial_logger()])
            tracker.log_choice(name, best.number, best.params, {"utility_distance": best.value})

    On entry: creates or gets the experiment, starts the parent run (name = study name; tags study_name,
    dagster_run_id if given, host, pid, pid_start, and `tags`) and fails orphaned runs (see `fail_orphaned_runs`). On exit
    the run ends FINISHED, or FAILED (tag `failure` says why) when any exception, KeyboardInterrupt and Dagster's
    interrupts included, leaves the block; the exception propagates.

    Tracking failures become warnings and entries in `problems`; then `parent_run_id` may be None and the trial
    logger does nothing. Tuning is never stopped by tracking.

    A session split over Dagster steps (`study.open_study` → `run_trials` → `close_study`) starts the run with
    `owner_pid` set to a process that outlives every step (the run's own process), so the orphan sweep of a study
    starting meanwhile does not end it, and a later step ends it through `resume(...)` and `finish`.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        experiment: str = DEFAULT_EXPERIMENT,
        study_name: str,
        dagster_run_id: str = "",
        tags: Mapping[str, str] | None = None,
        owner_pid: int | None = None,
    ):
        self.tracking_uri = tracking_uri
        self.owner_pid = owner_pid  # the process whose end makes a RUNNING parent run an orphan (default: this one)
        self.experiment = experiment
        self.study_name = study_name
        self.dagster_run_id = dagster_run_id
        self.extra_tags = dict(tags or {})
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.orphans_failed: list[str] = []
        self.problems: list[str] = []
        self._disabled = False

    @classmethod
    def resume(
        cls, tracking_uri: str, *, study_name: str, parent_run_id: str | None, experiment_id: str | None,
        experiment: str = DEFAULT_EXPERIMENT,
    ) -> "StudyTracker":
        """The tracker of a parent run another process started (`start`), known by its ids: a tuning session whose
        phases run as separate steps (open, trials, choice) ends its parent run from the last one (`finish`)."""
        tracker = cls(tracking_uri, experiment=experiment, study_name=study_name)
        tracker.parent_run_id, tracker.experiment_id = parent_run_id, experiment_id
        tracker._disabled = parent_run_id is None or experiment_id is None
        return tracker

    def start(self) -> "StudyTracker":
        """Create or get the experiment, start the parent run and sweep orphaned runs (what entering does)."""
        try:
            client = _client(self.tracking_uri)
            self.experiment_id = _experiment_id(client, self.experiment, self.tracking_uri, create=True)
            tags = {**{k: str(v) for k, v in self.extra_tags.items()}, TAG_STUDY_NAME: self.study_name,
                    **_process_tags(self.owner_pid)}
            if self.dagster_run_id:
                tags[TAG_DAGSTER_RUN_ID] = self.dagster_run_id
            run = client.create_run(self.experiment_id, tags=tags, run_name=self.study_name)
            self.parent_run_id = run.info.run_id
        except Exception as error:
            self._problem("starting the parent run", error)
            return self
        try:  # after the start, so an unreachable store costs one failed call, not two; our own run is alive
            self.orphans_failed = fail_orphaned_runs(self.tracking_uri, self.experiment)
        except Exception as error:
            self._problem("sweeping orphaned runs", error, disable=False)
        return self

    def finish(self, error: BaseException | None = None) -> None:
        """End the parent run: FINISHED, or FAILED with tag `failure` saying why when `error` is given."""
        if self.parent_run_id is None:
            return
        try:
            client = _client(self.tracking_uri)
            if error is None:
                client.set_terminated(self.parent_run_id, "FINISHED")
            else:
                reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                try:
                    client.set_tag(self.parent_run_id, TAG_FAILURE, _text(reason, 1000))
                finally:
                    client.set_terminated(self.parent_run_id, "FAILED")
        except Exception as problem:  # tried even after earlier failures: the final status matters most
            self._problem("ending the parent run", problem)

    def __enter__(self) -> "StudyTracker":
        return self.start()

    def __exit__(self, exc_type, exc, traceback) -> bool:
        self.finish(None if exc_type is None else (exc if exc is not None else exc_type()))
        return False  # never swallow the exception

    def trial_logger(self) -> TrialLogger:
        """The Optuna callback logging trials as runs nested under this one (a no-op if tracking is unavailable)."""
        if self._disabled:
            return TrialLogger(self.tracking_uri, None, None)
        return TrialLogger(self.tracking_uri, self.parent_run_id, self.experiment_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Session-level parameters on the parent run (budget, generator, seed, storage, …)."""
        self._safely("logging parameters", lambda client: _log_batch(client, self.parent_run_id, params=params))

    def log_choice(
        self, study_name: str, trial_number: int, params: Mapping[str, Any], values: Mapping[str, float]
    ) -> None:
        """The final choice on the parent run: params as `best.<name>`, values as metrics `best.<name>`, tags
        `chosen_study`, `chosen_trial` and, when that trial's nested run is found in the experiment (it may come from
        an earlier session of the same persisted study), `chosen_trial_run_id`."""

        def log(client) -> None:
            tags = {TAG_CHOSEN_STUDY: study_name, TAG_CHOSEN_TRIAL: str(trial_number)}
            nested = _search_all_runs(
                client, [self.experiment_id],
                f"tags.{TAG_STUDY_NAME} = {_quoted(study_name)} and tags.{TAG_TRIAL_NUMBER} = '{trial_number}'",
            )
            trial_runs = [r for r in nested if r.data.tags.get(TAG_PARENT_RUN_ID)]
            if trial_runs:
                tags[TAG_CHOSEN_TRIAL_RUN_ID] = max(trial_runs, key=lambda r: r.info.start_time or 0).info.run_id
            _log_batch(
                client, self.parent_run_id,
                params={f"best.{k}": v for k, v in params.items()},
                metrics={f"best.{k}": v for k, v in values.items() if _is_number(v)},
                tags=tags,
            )

        self._safely("logging the final choice", log)

    def _safely(self, what: str, action) -> None:
        if self._disabled or self.parent_run_id is None:
            return
        try:
            action(_client(self.tracking_uri))
        except Exception as error:
            self._problem(what, error)

    def _problem(self, what: str, error: Exception, *, disable: bool = True) -> None:
        message = (
            f"MLflow tracking failed while {what} for study {self.study_name!r} at {self.tracking_uri} "
            f"({type(error).__name__}: {error}); tuning goes on"
            + (", without further MLflow logging. Check that the tracking store is reachable." if disable else ".")
        )
        self.problems.append(message)
        if disable:
            self._disabled = True
        logger.warning(message)


def _quoted(value: str) -> str:
    """`value` as a string literal of an MLflow filter (which has no escapes: single or double quotes)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"{value!r} holds both kinds of quotes; MLflow cannot search for it: rename it.")


__all__ = ["DEFAULT_EXPERIMENT", "StudyTracker", "TrialLogger", "fail_orphaned_runs", "tracking_uri_for"]
