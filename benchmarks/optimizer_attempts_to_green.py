"""Auto-optimizer benchmark: attempts and wall time to all green, from the platform's default parameters.

For each dataset: a fresh Dagster instance, the whole graph with default config (only the table and the report's
target differ), then the auto_optimizer_sensor's requests executed as the daemon would launch them, until a run is
all green or the chain stops (attempt cap, or no untried change). Default thresholds, never loosened.

    .venv/bin/python benchmarks/optimizer_attempts_to_green.py                      # adult and credit_data
    .venv/bin/python benchmarks/optimizer_attempts_to_green.py --datasets penguins  # any of adult, credit_data, penguins
    .venv/bin/python benchmarks/optimizer_attempts_to_green.py --quick --datasets penguins  # a smoke run, tiny budgets
    .venv/bin/python benchmarks/optimizer_attempts_to_green.py --start undertrained --datasets credit_data
        # the first run trains a tenth of the default steps: how the optimizer recovers

Adult is the bundled embedded source; the others are loaded from ../shared/datasets into a SQLite file first.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import dagster as dg
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from synth_platform import attempt_chain  # noqa: E402
from synth_platform.definitions import defs  # noqa: E402
from synth_platform.resources import AutoOptimizerSettings, SourceDatabase  # noqa: E402
from synth_platform.sensors import auto_optimizer_sensor  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
DATASETS = {  # name: (csv under ../shared/datasets or None for the embedded Adult, table, report target)
    "adult": (None, "adult", "income"),
    "credit_data": ("credit_data.csv", "credit_data", "Status"),
    "penguins": ("penguins.csv", "penguins", "species"),
}


def source_for(name: str, directory: Path) -> SourceDatabase:
    csv, table, _ = DATASETS[name]
    if csv is None:
        return SourceDatabase()
    path = directory / f"{table}.sqlite"
    with sqlite3.connect(path) as conn:
        pd.read_csv(SHARED / csv).to_sql(table, conn, index=False, if_exists="replace")
    return SourceDatabase(url=f"sqlite:///{path}")


def definitions_for(source: SourceDatabase, max_attempts: int) -> dg.Definitions:
    """The platform's definitions with this benchmark's source."""
    return dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs, sensors=defs.sensors, executor=defs.executor,
        resources={**defs.resources, "source_database": source, "auto_optimizer": AutoOptimizerSettings(max_attempts=max_attempts)},
    )


QUICK = {  # --quick: small budgets, to see the mechanics in a few minutes (not the defaults the benchmark is about)
    "tuned_hyperparameters": {"n_trials": 1, "trial_steps": 100, "tuning_rows": 1000},
    "synthetic_table": {"training_steps": 300, "num_rows": 1000},
}


UNDERTRAINED = {"synthetic_table": {"training_steps": 500}}  # --start undertrained: a tenth of ddpm's 5,000 steps


def run_chain(name: str, max_attempts: int, log, quick: bool = False, start: str = "defaults") -> dict:
    _, table, target = DATASETS[name]
    with tempfile.TemporaryDirectory(prefix=f"optimizer-bench-{name}-") as home, dg.instance_for_test(temp_dir=home) as instance:
        bench = definitions_for(source_for(name, Path(home)), max_attempts)
        config = {"ops": {
            "source_sample": {"config": {"table": table}},
            "privacy_utility_report": {"config": {"target_column": target}},
        }}
        for overrides in (QUICK if quick else {}, UNDERTRAINED if start == "undertrained" else {}):
            for op, values in overrides.items():
                config["ops"].setdefault(op, {"config": {}})["config"].update(values)
        started = time.perf_counter()
        first = bench.resolve_job_def("synthesis_job").execute_in_process(run_config=config, instance=instance, raise_on_error=False)
        seconds = {first.run_id: time.perf_counter() - started}
        log(f"{name}: first run {'green' if first.success else 'not green'} in {seconds[first.run_id]:.0f} s")
        cursor = None
        for _ in range(2 * max_attempts + 2):  # bounded: the sensor must stop by itself well before this
            context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=bench,
                                              resources={"auto_optimizer": bench.resources["auto_optimizer"]})
            tick = auto_optimizer_sensor(context)
            cursor = tick.cursor
            if not tick.run_requests:
                break
            for request in tick.run_requests:
                log(f"{name}: {request.job_name} {request.tags.get(attempt_chain.ATTEMPT_TAG, '')} "
                    f"{request.tags.get(attempt_chain.CHANGE_TAG, request.tags.get(attempt_chain.STOP_TAG, ''))}")
                t = time.perf_counter()
                run = bench.resolve_job_def(request.job_name).execute_in_process(
                    run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False)
                seconds[run.run_id] = time.perf_counter() - t
        total = time.perf_counter() - started
        attempts = attempt_chain.chain_attempts(instance, first.run_id)
        best = instance.get_latest_materialization_event(dg.AssetKey("best_synthetic_table"))
        chosen = best.asset_materialization.metadata if best else {}
        green_at = next((a.attempt for a in attempts if a.all_green), None)
        rows = []
        for a in attempts:
            m = (a.report or {}).get("metrics", {})
            rows.append({
                "attempt": a.attempt, "rule": a.rule or "first run", "seconds": round(seconds.get(a.run_id, 0.0), 1),
                "plugin": ((a.report or {}).get("generator") or {}).get("plugin"), "green": a.all_green,
                "failed": a.failed_checks(), **{k: m.get(k) for k in ("ks_mean", "correlation_delta", "membership_inference_auc", "exact_copy_rate", "tstr_score")},
            })
        return {
            "dataset": name, "start": start, "training_rows": (attempts[0].report or {}).get("rows", {}).get("training"),
            "re_runs": len(attempts) - 1, "green_at_attempt": green_at, "wall_seconds": round(total, 1),
            "chosen_attempt": chosen["chosen_attempt"].value if chosen else None,
            "chosen_green": chosen["all_green"].value if chosen else None, "attempts": rows,
        }


def print_attempts(r: dict) -> None:
    print(f"\n{r['dataset']}:")
    print("| attempt | rule | plugin | seconds | KS mean | corr Δ | MIA AUC | copies | TSTR | failed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for a in r["attempts"]:
        cells = [f"{a[k]:.3f}" if isinstance(a[k], float) else "" for k in ("ks_mean", "correlation_delta", "membership_inference_auc", "exact_copy_rate", "tstr_score")]
        print(f"| {a['attempt']} | {a['rule']} | {a['plugin']} | {a['seconds']:.0f} | " + " | ".join(cells) + f" | {', '.join(a['failed']) or '—'} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="adult,credit_data", help=f"comma-separated, from {list(DATASETS)}")
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small budgets instead of the defaults (a smoke run)")
    parser.add_argument("--start", choices=("defaults", "undertrained"), default="defaults",
                        help="first run's config: the defaults, or a tenth of the default training steps")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(DATASETS)}")
    results = []
    for name in names:  # each dataset's table as soon as it is done; the summary at the end
        results.append(run_chain(name, args.max_attempts, log=lambda message: print(message, flush=True), quick=args.quick, start=args.start))
        print_attempts(results[-1])
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    print()
    print("| dataset | start | training rows | re-runs | all green at attempt | wall time | chosen attempt |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        green = "never" if r["green_at_attempt"] is None else str(r["green_at_attempt"])
        chosen = f"{r['chosen_attempt']} ({'green' if r['chosen_green'] else 'NOT green'})"
        print(f"| {r['dataset']} | {r['start']} | {r['training_rows']} | {r['re_runs']} | {green} | {r['wall_seconds'] / 60:.1f} min | {chosen} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
