"""Tuning trials per hour with the trials fanned out over 1 and 2 concurrent Dagster steps, against the in-step
worker processes they generalize, side by side in one run.

    .venv/bin/python benchmarks/tuning_fan_out.py                  # 8 Adult trials per setting (~8 min)
    .venv/bin/python benchmarks/tuning_fan_out.py --trials 4 --trial-steps 300

Each setting runs the adult chain up to `tuned_hyperparameters` (source_sample → profiled_dataset → the tuning
graph: open_study_step → run_trials_step per share → choose_parameters_step) as one run on Dagster's multiprocess
executor, with a fresh PostgreSQL database as the Optuna storage and a fresh instance (no warm starts, no tuning
memory), the same seed and the same trial budget. Settings:

- `1 step`: fan_out 1, workers 1 (one trial at a time, every core for it: the default);
- `2 steps`: fan_out 2, workers 1 (two step processes, each with half the cores, sharing the study);
- `1 step × 2 workers`: fan_out 1, workers 2 (the same two processes, spawned inside one step).

Printed per setting: trials finished (complete / pruned / failed), the tuning graph's wall time (from the open
step's start to the choice step's end, step start-up included), the part of it outside the trial steps (open and
choice steps, launch gaps), trials per hour and the ratio to `1 step`.
The machine may be busy: the load average is printed; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import optuna
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synth_platform_tests.helpers.fan_out_job import step_times, tuning_job  # noqa: E402

PG_ADMIN_URL = os.environ.get("SYNTH_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
SETTINGS = (("1 step", 1, 1), ("2 steps", 2, 1), ("1 step × 2 workers", 1, 2))
GRAPH_START, GRAPH_END = "tuned_hyperparameters.open_study_step", "tuned_hyperparameters.choose_parameters_step"


class Database:
    """A fresh PostgreSQL database on the local server (the Optuna storage of one setting), dropped afterwards."""

    def __enter__(self) -> str:
        self.name = f"synth_bench_{uuid.uuid4().hex[:10]}"
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        return sa.make_url(PG_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *exc) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()



def run_setting(fan_out: int, workers: int, args: argparse.Namespace) -> dict:
    with Database() as storage, tempfile.TemporaryDirectory(prefix="synth_fan_out_") as home:
        os.environ["SYNTH_OPTUNA_STORAGE"] = storage  # the step processes build their resources from it
        run_config = {"ops": {
            "source_sample": {"config": {"max_rows": args.rows, "seed": args.seed}},
            "tuned_hyperparameters": {"config": {
                "n_trials": args.trials, "fan_out": fan_out, "workers": workers, "trial_steps": args.trial_steps,
                "tuning_rows": args.tuning_rows, "warm_start": False, "track_in_mlflow": False, "seed": args.seed,
                "timeout_s": 3600.0, "pruner": "none"}},
        }}
        instance = dg.DagsterInstance.local_temp(home)
        try:
            with dg.execute_job(dg.reconstructable(tuning_job), instance, run_config=run_config) as result:
                if not result.success:
                    raise SystemExit(f"the run of fan_out={fan_out}, workers={workers} failed; see {home}")
                times = step_times(instance, result.run_id)
                (materialization,) = [e.materialization for e in result.get_asset_materialization_events()
                                      if e.asset_key.path[-1] == "tuned_hyperparameters"]
            study = optuna.load_study(study_name=materialization.metadata["study_name"].value, storage=storage)
            states = [t.state.name for t in study.trials]
        finally:
            instance.dispose()
            os.environ.pop("SYNTH_OPTUNA_STORAGE", None)
    wall = times[GRAPH_END]["STEP_SUCCESS"] - times[GRAPH_START]["STEP_START"]
    shares = [t for key, t in times.items() if "run_trials_step[" in key]
    trials_span = max(t["STEP_SUCCESS"] for t in shares) - min(t["STEP_START"] for t in shares)
    finished = sum(s in ("COMPLETE", "PRUNED") for s in states)
    return {"complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
            "wall_s": wall, "steps_around_s": wall - trials_span, "trials_per_hour": finished / wall * 3600}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per setting")
    parser.add_argument("--trial-steps", type=int, default=1000, help="optimizer steps per trial (the default budget)")
    parser.add_argument("--tuning-rows", type=int, default=5000, help="rows a trial uses (the default)")
    parser.add_argument("--rows", type=int, default=20000, help="rows of the Adult sample")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"# tuning fan-out — {time.strftime('%Y-%m-%d %H:%M')} — {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"{args.trials} ddpm trials × {args.trial_steps} steps on {args.tuning_rows} rows, Adult sample of {args.rows} rows")
    rows = []
    for name, fan_out, workers in SETTINGS:
        started = time.perf_counter()
        measured = run_setting(fan_out, workers, args)
        rows.append((name, fan_out, workers, measured))
        print(f"  {name}: {measured} (run {time.perf_counter() - started:.0f} s)", flush=True)
    base = rows[0][3]["trials_per_hour"]
    print("\n| setting | fan_out | workers | complete / pruned / failed | tuning wall | of which open + choice steps | "
          "trials per hour | vs 1 step |")
    print("|---|---|---|---|---|---|---|---|")
    for name, fan_out, workers, m in rows:
        print(f"| {name} | {fan_out} | {workers} | {m['complete']} / {m['pruned']} / {m['failed']} | {m['wall_s']:.0f} s | "
              f"{m['steps_around_s']:.0f} s | {m['trials_per_hour']:.0f} | {m['trials_per_hour'] / base:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
