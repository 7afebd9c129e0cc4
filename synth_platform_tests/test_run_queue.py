"""The run queue of both instance configs: runs that train a generator carry the `synth_platform/training` tag, and
the real `dagster-daemon` on the PostgreSQL instance (dagster.postgres.yaml) never has more of them in progress than
the tag's limit, while a run without the tag is not held back by it; two tables from one tables file run as two
chains side by side, each with its schedule, checks and auto-optimizer."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from synth_platform.definitions import defs
from synth_platform.jobs import TRAINING_TAG
from synth_platform_tests.conftest import REPO, tiny_config
from synth_platform_tests.helpers.daemon import LOCATION, most_at_once, running_daemon, submit, wait_until, write_workspace


def _training_limit(yaml_name: str) -> int:
    limits = yaml.safe_load((REPO / yaml_name).read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
    (limit,) = [item for item in limits if item["key"] == TRAINING_TAG and item.get("value") == "true"]
    return limit["limit"]


def _point_at(pg_database: str, monkeypatch) -> None:
    """The environment dagster.postgres.yaml reads, for this database."""
    url = sa.make_url(pg_database)
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host)
    monkeypatch.setenv("DAGSTER_PG_USER", url.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)


def test_most_at_once_counts_overlaps():
    assert most_at_once([(0, 1), (1, 2), (2, 3)]) == 1
    assert most_at_once([(0, 2), (1, 3), (2.5, 4)]) == 2


@pytest.mark.parametrize("yaml_name", ["dagster.yaml", "dagster.postgres.yaml"])
def test_both_instances_queue_runs_and_limit_training(yaml_name, tmp_path, pg_database, monkeypatch):
    _point_at(pg_database, monkeypatch)
    shutil.copy(REPO / yaml_name, tmp_path / "dagster.yaml")
    limit = _training_limit(yaml_name)
    assert limit == _training_limit("dagster.yaml") >= 1  # the two variants agree
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert {"key": TRAINING_TAG, "value": "true", "limit": limit} in queue.tag_concurrency_limits


def test_training_jobs_carry_the_tag_on_every_run_they_start():
    """Job-level run tags: schedule ticks, sensor requests and UI launches of these jobs all get them."""
    tagged = {name for name in ("adult_synthesis_job", "adult_resynthesis_job", "adult_best_attempt_job", "optimize_run_job")
              if defs.resolve_job_def(name).run_tags.get(TRAINING_TAG) == "true"}
    assert tagged == {"adult_synthesis_job", "adult_resynthesis_job"}
    assert defs.resolve_schedule_def("adult_synthesis_schedule").job_name == "adult_synthesis_job"
    assert "adult_resynthesis_job" in {job.name for job in defs.resolve_sensor_def("adult_auto_optimizer_sensor").jobs}


LENIENT = {"ks_mean_max": 1.0, "correlation_delta_max": 1.0, "mia_auc_max": 1.0, "exact_copy_rate_max": 1.0}


def _two_tables(path: Path) -> Path:
    """Two tables' chains from one tables file: `adult` passes every check on tiny training (thresholds at 1.0);
    `census` (the same embedded rows) cannot pass its KS threshold, so its chain fails and its sensor re-runs it."""
    path.write_text(yaml.safe_dump({"tables": [
        {"name": "adult", "table": "adult", "schedule": "0 3 * * *", "thresholds": LENIENT},
        {"name": "census", "table": "adult", "schedule": "0 4 * * *", "thresholds": {**LENIENT, "ks_mean_max": 0.001}},
    ]}))
    return path


def test_two_tables_through_the_daemon(tmp_path, pg_database, monkeypatch):
    """Two tables from one tables file through the real daemon on the PostgreSQL instance: two chains in the code
    location, a schedule on each, their training runs queued under the limit and first in, first out; the failing
    table's checks start re-runs of that table only, and its chain ends with its own best-attempt run."""
    _point_at(pg_database, monkeypatch)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("SYNTH_TABLES_FILE", str(_two_tables(tmp_path / "tables.yaml")))
    monkeypatch.setenv("SYNTH_OPTIMIZER_MAX_ATTEMPTS", "1")  # one re-run, then the best attempt
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    shutil.copy(REPO / "dagster.postgres.yaml", home / "dagster.yaml")
    limit = _training_limit("dagster.postgres.yaml")
    workspace_yaml = write_workspace(tmp_path / "workspace.yaml", REPO)
    submitted = ["adult", "census", "adult"]  # two tables' chains, submitted interleaved

    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with dg.DagsterInstance.from_config(str(home)) as instance:
        with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace_yaml)])) as process_context:
            workspace = process_context.create_request_context()
            (repo,) = workspace.get_code_location(LOCATION).get_repositories().values()
            assert {s.name: s.job_name for s in repo.get_schedules()} == {
                "adult_synthesis_schedule": "adult_synthesis_job", "census_synthesis_schedule": "census_synthesis_job"}
            assert {s.name for s in repo.get_sensors()} >= {"adult_auto_optimizer_sensor", "census_auto_optimizer_sensor"}
            assert {snap.asset_key.path[0] for snap in repo.get_asset_node_snaps()} == {"adult", "census"}
            training = [
                submit(instance, workspace, f"{table}_synthesis_job",
                        tiny_config(bootstrap_resamples=20, source_sample={"seed": seed}), tags={})
                for seed, table in enumerate(submitted)
            ]
            # A cheap run without the tag, submitted last: it fails at once (no such chain) and must start beside the
            # first training run, not behind the queued ones.
            other = submit(instance, workspace, "adult_best_attempt_job",
                            {"ops": {"best_synthetic_table": {"config": {"chain": "no-such-chain"}}}}, {})
        queued = instance.get_runs(dg.RunsFilter(run_ids=[*training, other]))
        assert {run.status for run in queued} == {dg.DagsterRunStatus.QUEUED}
        assert all(run.tags.get(TRAINING_TAG) == "true" for run in queued if run.run_id in training)
        assert TRAINING_TAG not in instance.get_run_by_id(other).tags
        census_first = training[1]

        def chain_ended() -> bool:
            runs = instance.get_runs(dg.RunsFilter(run_ids=[*training, other]))
            best = instance.get_runs(dg.RunsFilter(job_name="census_best_attempt_job"))
            return all(run.is_finished for run in runs) and bool(best) and all(run.is_finished for run in best)

        log = tmp_path / "daemon.log"
        started = time.monotonic()
        with running_daemon(workspace_yaml, log, REPO) as daemon:
            wait_until(chain_ended, daemon, log, 600)
        print(f"queue drained and the census chain ended in {time.monotonic() - started:.0f} s")

        records = {record.dagster_run.run_id: record for record in instance.get_run_records()}
        checks = {table: instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey([table, "privacy_utility_report"]), "ks_mean_within_threshold"), limit=10)
            for table in ("adult", "census")}
    by_table = {}
    for record in records.values():
        by_table.setdefault((record.dagster_run.tags.get("synth_platform/table"), record.dagster_run.job_name), []).append(record)
    status = {run_id: records[run_id].dagster_run.status for run_id in training}
    assert status[training[0]] == status[training[2]] == dg.DagsterRunStatus.SUCCESS, log.read_text()[-5000:]
    assert status[census_first] == dg.DagsterRunStatus.FAILURE  # its blocking KS check failed
    # Check history per table: adult's report passed its KS check twice, census's failed.
    assert [c.status.value for c in checks["adult"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert "FAILED" in {c.status.value for c in checks["census"]} and "SUCCEEDED" not in {c.status.value for c in checks["census"]}
    # The failure re-ran census only, as one chain, and ended it with census's own best-attempt run.
    (rerun,) = by_table[("census", "census_resynthesis_job")]
    assert rerun.dagster_run.tags["synth_platform/chain"] == census_first
    assert ("adult", "adult_resynthesis_job") not in by_table
    (best,) = by_table[("census", "census_best_attempt_job")]
    assert best.dagster_run.tags["synth_platform/chain"] == census_first
    # Never more training runs at once than the limit, the re-run included, read from the run records.
    tagged = [r for r in records.values() if r.dagster_run.tags.get(TRAINING_TAG) == "true"]
    intervals = [(r.start_time, r.end_time) for r in tagged]
    assert len(tagged) == 4 and all(start is not None and end is not None and start < end for start, end in intervals)
    first = min(start for start, _ in intervals)
    print("training runs (s from the first start):", sorted((round(s - first, 1), round(e - first, 1)) for s, e in intervals),
          "untagged run:", round(records[other].start_time - first, 1), round(records[other].end_time - first, 1))
    assert most_at_once(intervals) <= limit, intervals
    if limit == 1:  # first in, first out: the tables take turns (census does not wait for adult's second), none starves
        assert sorted(training, key=lambda run_id: records[run_id].start_time) == training
    # The untagged run was not held by the training limit: it started while the first training run was in progress.
    assert records[other].dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert records[other].start_time < records[training[0]].end_time
