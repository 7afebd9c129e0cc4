"""Several tables' chains through the real run queue, against running the same chains one after another.

    .venv/bin/python benchmarks/queued_tables.py                      # 2 and 4 tables, training limit 1 and 2 (~25 min)
    .venv/bin/python benchmarks/queued_tables.py --tables 2 --limits 1

For each table count N: a tables file with N entries (all the embedded Adult table, each with its own seed and
sample, so each chain does the same amount of work), a fresh PostgreSQL database as the Dagster instance storage
(dagster.postgres.yaml with the training tag's limit set), N `<table>_synthesis_job` runs submitted at once as the
UI does, and the real `dagster-daemon` working off the queue. Compared with the same N runs one after another
(`dagster job execute` per table, in turn: what a user without the queue would do). Printed: wall time of each,
their ratio, the most training runs in progress at once (read from the run records), and how long each run waited
in the queue. Budgets are small (a few thousand rows, short tuning and fit) so a run takes about a minute.

With limit 1 the queue runs the chains in turn (a training run's torch threads use every core), so its wall time
is the sequential one plus the daemon's dequeue and launch overhead; limit 2 runs two at once with 1 torch thread
each. The machine may be busy: the load average is printed; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synth_platform.jobs import TRAINING_TAG  # noqa: E402
from synth_platform_tests.helpers.daemon import most_at_once, running_daemon, submit, wait_until, write_workspace  # noqa: E402

PG_ADMIN_URL = os.environ.get("SYNTH_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def run_config(seed: int, rows: int, threads: int) -> dict:
    lenient = {"ks_mean_max": 1.0, "correlation_delta_max": 1.0, "mia_auc_max": 1.0, "exact_copy_rate_max": 1.0}
    return {"ops": {
        "source_sample": {"config": {"max_rows": rows, "seed": seed}},
        "tuned_hyperparameters": {"config": {"n_trials": 1, "trial_steps": 100, "tuning_rows": 1000, "track_in_mlflow": False,
                                             "threads": threads}},
        "synthetic_table": {"config": {"training_steps": 500, "time_budget_minutes": 0, "threads": threads}},
        "privacy_utility_report": {"config": {"bootstrap_resamples": 20, "privacy_rows": 500, **lenient}},
    }}


def tables_file(path: Path, count: int) -> list[str]:
    names = [f"table{i + 1}" for i in range(count)]
    path.write_text(yaml.safe_dump({"tables": [{"name": name, "table": "adult"} for name in names]}))
    return names


class Database:
    """A fresh PostgreSQL database on the local server for one Dagster instance, dropped afterwards."""

    def __enter__(self) -> sa.URL:
        self.name = f"synth_bench_{uuid.uuid4().hex[:10]}"
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        return sa.make_url(PG_ADMIN_URL).set(database=self.name)

    def __exit__(self, *exc) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


def environment(work: Path, url: sa.URL, tables: Path) -> dict[str, str]:
    env = {**os.environ, "DAGSTER_HOME": str(work / "home"), "SYNTH_TABLES_FILE": str(tables), "TQDM_DISABLE": "1",
           "SYNTH_OPTIMIZER_MAX_ATTEMPTS": "0", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "DAGSTER_PG_HOST": url.host, "DAGSTER_PG_USER": url.username, "DAGSTER_PG_PASSWORD": url.password or "",
           "DAGSTER_PG_DB": url.database}
    (work / "home").mkdir(parents=True, exist_ok=True)
    return env


def instance_yaml(home: Path, limit: int) -> None:
    config = yaml.safe_load((REPO / "dagster.postgres.yaml").read_text())
    for item in config["concurrency"]["runs"]["tag_concurrency_limits"]:
        if item["key"] == TRAINING_TAG:
            item["limit"] = limit
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def queued(count: int, limit: int, rows: int) -> dict:
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with tempfile.TemporaryDirectory() as tmp, Database() as url:
        work = Path(tmp)
        names = tables_file(work / "tables.yaml", count)
        env = environment(work, url, work / "tables.yaml")
        instance_yaml(work / "home", limit)
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            workspace_yaml = write_workspace(work / "workspace.yaml", REPO)
            threads = max(1, (os.cpu_count() or 1) // limit)
            with dg.DagsterInstance.from_config(str(work / "home")) as instance:
                with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace_yaml)])) as context:
                    workspace = context.create_request_context()
                    started = time.monotonic()
                    runs = [submit(instance, workspace, f"{name}_synthesis_job", run_config(seed, rows, threads), {})
                            for seed, name in enumerate(names)]
                log = work / "daemon.log"
                with running_daemon(workspace_yaml, log, REPO) as daemon:
                    wait_until(lambda: all(r.is_finished for r in instance.get_runs(dg.RunsFilter(run_ids=runs))),
                               daemon, log, 3600)
                wall = time.monotonic() - started
                records = instance.get_run_records(dg.RunsFilter(run_ids=runs))
                statuses = sorted({r.dagster_run.status.value for r in records})
                intervals = [(r.start_time, r.end_time) for r in records]
                waits = sorted(round(r.start_time - r.create_timestamp.timestamp(), 1) for r in records)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return {"tables": count, "limit": limit, "wall_s": round(wall, 1), "statuses": statuses,
            "most_training_at_once": most_at_once(intervals), "queue_waits_s": waits}


def one_after_another(count: int, rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, Database() as url:
        work = Path(tmp)
        names = tables_file(work / "tables.yaml", count)
        env = environment(work, url, work / "tables.yaml")
        instance_yaml(work / "home", 1)
        dagster = Path(sys.executable).with_name("dagster")
        started = time.monotonic()
        codes = []
        for seed, name in enumerate(names):
            config = work / f"{name}.yaml"
            config.write_text(yaml.safe_dump(run_config(seed, rows, os.cpu_count() or 1)))
            codes.append(subprocess.run([str(dagster), "job", "execute", "-m", "synth_platform.definitions", "-j",
                                         f"{name}_synthesis_job", "-c", str(config)], cwd=REPO, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode)
        wall = time.monotonic() - started
    return {"tables": count, "wall_s": round(wall, 1), "exit_codes": codes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="2,4", help="table counts, comma-separated")
    parser.add_argument("--limits", default="1,2", help="training tag limits, comma-separated")
    parser.add_argument("--rows", type=int, default=3000, help="rows sampled per table")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    rows = []
    for count in [int(n) for n in args.tables.split(",")]:
        sequential = one_after_another(count, args.rows)
        print(json.dumps({"one_after_another": sequential}), flush=True)
        for limit in [int(n) for n in args.limits.split(",")]:
            result = queued(count, limit, args.rows)
            print(json.dumps({"queued": result}), flush=True)
            rows.append((count, limit, result, sequential))
    print(f"\nload average at end: {os.getloadavg()}")
    print("| tables | training limit | queued wall | one after another | ratio | most training runs at once | run states |")
    print("|---|---|---|---|---|---|---|")
    for count, limit, result, sequential in rows:
        print(f"| {count} | {limit} | {result['wall_s']:.0f} s | {sequential['wall_s']:.0f} s | "
              f"{result['wall_s'] / sequential['wall_s']:.2f} | {result['most_training_at_once']} | {', '.join(result['statuses'])} |")


if __name__ == "__main__":
    main()
