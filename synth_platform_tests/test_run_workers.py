"""A run whose worker is killed with -9 does not stay STARTED: the next run on the instance, or the sweep sensor,
marks it failed (run_workers.py). Real processes, a real instance."""

import os
import signal
import subprocess
import sys
import time

import dagster as dg

from synth_platform.resources import PlatformStorage
from synth_platform.run_workers import WORKER_TAG, Worker, fail_runs_of_dead_workers, this_worker
from synth_platform.sensors import dead_run_sweep_sensor
from synth_platform_tests.conftest import REPO


def test_a_worker_is_its_pid_and_start_time():
    me = this_worker()
    assert me.pid == os.getpid() and me.is_alive()
    assert Worker.parse(str(me)) == Worker(me.host, me.pid, round(me.started, 2))
    assert not Worker(me.host, me.pid, me.started - 1000).is_alive()  # the pid, reused by another process
    assert Worker.parse("garbage") is None


def _start_hanging_run(home, ready):
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "synth_platform_tests.helpers.hanging_run", str(ready)], cwd=REPO, env=env)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert process.poll() is None, "the hanging run ended early"
        assert time.monotonic() < deadline, "the hanging run did not start"
        time.sleep(0.2)
    return process, ready.read_text()


@dg.asset
def quick(platform_storage: PlatformStorage) -> int:
    return 1


def test_a_killed_run_is_marked_failed_by_the_next_run_and_by_the_sensor(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        first, first_id = _start_hanging_run(home, tmp_path / "first")
        second, second_id = _start_hanging_run(home, tmp_path / "second")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        run = instance.get_run_by_id(first_id)
        assert run.status == dg.DagsterRunStatus.STARTED and Worker.parse(run.tags[WORKER_TAG]).pid == first.pid

        # the next run on the instance sweeps: the killed run fails, the live one is left alone
        result = dg.materialize([quick], instance=instance, resources={"platform_storage": PlatformStorage()})
        assert result.success
        assert instance.get_run_by_id(first_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(second_id).status == dg.DagsterRunStatus.STARTED
        failure = [e for e in instance.all_logs(first_id) if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"]
        assert failure and f"pid {first.pid}" in failure[0].dagster_event.message

        # the sensor (daemon) does the same without waiting for a run
        os.kill(second.pid, signal.SIGKILL)
        second.wait()
        with dg.build_sensor_context(instance=instance) as context:
            skip = dead_run_sweep_sensor(context)
        assert second_id in skip.skip_message
        assert instance.get_run_by_id(second_id).status == dg.DagsterRunStatus.FAILURE
        assert fail_runs_of_dead_workers(instance) == []
