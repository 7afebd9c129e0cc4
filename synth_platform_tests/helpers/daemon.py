"""The real `dagster-daemon` for tests and benchmarks: submit runs as the UI does, run the daemon on a workspace,
wait for an outcome, stop the daemon and everything it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

LOCATION = "synth_platform"


def write_workspace(path: Path, working_directory: Path) -> Path:
    path.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "synth_platform.definitions", "location_name": LOCATION, "working_directory": str(working_directory)}}]}))
    return path


def submit(instance, workspace, job_name: str, run_config: dict, tags: dict) -> str:
    """What `dagster job launch` and the UI do: create the run from the code location and hand it to the instance's
    run coordinator (QUEUED until the daemon dequeues it)."""
    from dagster._cli.job import _create_run

    location = workspace.get_code_location(LOCATION)
    (repo,) = location.get_repositories().values()
    remote_job = repo.get_full_job(job_name)
    run = _create_run(instance=instance, code_location=location, remote_repo=repo, remote_job=remote_job,
                      run_config=run_config, tags=tags, op_selection=None, run_id=None)
    return instance.submit_run(run.run_id, workspace).run_id


@contextlib.contextmanager
def running_daemon(workspace_yaml: Path, log: Path, cwd: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the workspace (environment: this process's), logging to `log`; on exit it and its
    code servers and run workers are stopped (SIGTERM to its process group, SIGKILL after 30 s)."""
    daemon_bin = Path(sys.executable).with_name("dagster-daemon")
    with log.open("w") as out:
        daemon = subprocess.Popen([str(daemon_bin), "run", "-w", str(workspace_yaml)], cwd=cwd,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield daemon
    finally:
        try:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=30)


def wait_until(done: Callable[[], bool], daemon: subprocess.Popen, log: Path, seconds: float) -> None:
    """Poll `done` every 2 s; raises with the daemon log's tail when the daemon exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return
        if daemon.poll() is not None:
            raise RuntimeError("the daemon exited:\n" + log.read_text()[-5000:])
        time.sleep(2)
    raise TimeoutError(f"not done after {seconds:.0f} s:\n" + log.read_text()[-5000:])


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of the intervals that are open at one moment (one that ends as another starts: not both)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, step in events:
        open_now += step
        most = max(most, open_now)
    return most
