"""Runs whose worker process died (kill -9, OOM killer, a lost machine) stay STARTED in Dagster forever: Dagster's
run monitoring cannot see it for the default run launcher (which has no worker health check) nor for runs of
`dagster asset materialize` (no launcher at all). So every run records which process executes it, and the next
run on the same instance (and the `dead_run_sweep_sensor`) marks STARTED runs whose process is gone as failed,
which in turn frees their workspace for `PlatformStorage.remove_stale_workspaces`.

A worker is `host:pid:start`, where `start` is the process's start time: a pid the system reuses for another
process is not mistaken for the worker. Only workers on this host are judged; others are left to their own host.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from dataclasses import dataclass

import psutil
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

WORKER_TAG = "synth_platform/worker"


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    started: float  # process start time (seconds since the epoch, as psutil reads it)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.started:.2f}"

    @classmethod
    def parse(cls, text: str) -> Worker | None:
        host, _, rest = text.rpartition(":")
        host, _, pid = host.rpartition(":")
        try:
            return cls(host, int(pid), float(rest))
        except ValueError:
            return None

    def is_alive(self) -> bool:
        """Whether this worker still runs (on this host: the same pid with the same start time)."""
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 0.5
        except psutil.Error:
            return False


def this_worker() -> Worker:
    """The run worker of the calling process: the process itself, or, in a step process a multiprocess executor
    started, its parent (the step process ends with its step, the run worker with the run)."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    return Worker(socket.gethostname(), pid, psutil.Process(pid).create_time())


def record_worker(instance: DagsterInstance, run_id: str) -> None:
    """Tag run `run_id` with the worker executing it (the first process to record it wins)."""
    run = instance.get_run_by_id(run_id)
    if run is not None and WORKER_TAG not in run.tags:
        instance.add_run_tags(run_id, {WORKER_TAG: str(this_worker())})


def fail_runs_of_dead_workers(instance: DagsterInstance) -> list[str]:
    """Mark every STARTED run whose recorded worker on this host is gone as failed; return their run ids."""
    host = socket.gethostname()
    failed = []
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        worker = Worker.parse(run.tags.get(WORKER_TAG, ""))
        if worker is None or worker.host != host or worker.is_alive():
            continue
        instance.report_run_failed(
            run,
            message=f"The run's worker process (pid {worker.pid} on {host}) is gone: it was killed or crashed without "
            "ending the run. Marked failed by synth_platform so the run does not stay STARTED; its workspace is "
            "removed by the next tuning step.",
        )
        failed.append(run.run_id)
    return failed
