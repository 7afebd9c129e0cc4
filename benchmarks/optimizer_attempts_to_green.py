"""Auto-optimizer benchmark: attempts and wall time to all green, from a weak and from a memorising start, on every
dataset in ../shared/datasets and the built patient table, twice in a row on one memory (does the policy learn?).

For each (pass, start, dataset): a fresh Dagster instance, the whole graph with the start's config, then the
auto_optimizer_sensor's requests executed as the daemon would launch them, until a run is all green or the chain
stops (attempt cap, or no untried change). Default thresholds, never loosened. Every chain of both passes shares one
platform store (Optuna studies, tuning memory, recorded attempt outcomes), as one deployment's runs do: the second
pass can use what the first recorded (warm starts, the learnt rule order).

Starts:
    weak         the final fit trains a tenth of the usual steps (too few to learn the marginals)
    memorising   a small sample (400 rows) fitted 5,000 full-batch steps (5,000 epochs: the generator learns its rows)

Repeated configs (an attempt whose tuning + generation config an earlier attempt of its chain had) and repeated
fits (an attempt that fitted the same plugin with the same parameters as an earlier one) must both be 0.

    .venv/bin/python benchmarks/optimizer_attempts_to_green.py                  # default budgets: hours on 2 cores
    .venv/bin/python benchmarks/optimizer_attempts_to_green.py --quick          # small budgets: ~30 min on 2 cores
    .venv/bin/python benchmarks/optimizer_attempts_to_green.py --quick --datasets penguins --starts weak --passes 1

Adult is the bundled embedded source; the others are loaded from ../shared/datasets (and the patient table is
built by synth_platform_tests/profiling/built_tables.py) into a SQLite file first.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The datasets and the definitions over one of them live in _datasets.py (fidelity.py uses them too).
from _datasets import DATASETS, SHARED, TABLE_CONFIG, definitions_for, source_for  # noqa: E402,F401
from synth_platform import attempt_chain  # noqa: E402
from synth_platform.optimizer.policy import comparable  # noqa: E402
from synth_platform.resources import PlatformStorage  # noqa: E402
from synth_platform_tests.helpers.sensor_ticks import optimizer_tick  # noqa: E402

STARTS = ("weak", "memorising")
# --quick: small budgets, to see the mechanics and the learning in about half an hour (not the defaults).
QUICK = {
    "source_sample": {"max_rows": 3000},
    "tuned_hyperparameters": {"n_trials": 1, "trial_steps": 100, "tuning_rows": 1000},
    "synthetic_table": {"training_steps": 600, "num_rows": 1500},
    "privacy_utility_report": {"bootstrap_resamples": 50, "privacy_rows": 500},
}


def start_config(start: str, quick: bool) -> dict[str, dict]:
    """The first run's config changes for a start (over the quick budgets when `quick`)."""
    base = copy.deepcopy(QUICK) if quick else {}
    steps = base.get("synthetic_table", {}).get("training_steps", 5000)
    if start == "weak":
        base.setdefault("synthetic_table", {})["training_steps"] = max(10, steps // 10)
    else:
        base.setdefault("source_sample", {})["max_rows"] = 400
        # 5,000 full-batch steps over 320 training rows: 5,000 epochs, each row seen 5,000 times (the README's
        # penguins run: ddpm's default 5,000 steps on 275 rows already reached a membership AUC of 0.69).
        base.setdefault("synthetic_table", {}).update({"training_steps": 5000, "batch_size": 1024})
    return base


def repeats(instance: dg.DagsterInstance, chain: str) -> tuple[int, int]:
    """(repeated configs, repeated fits) among a chain's attempts."""
    configs, fits, repeated_configs, repeated_fits = set(), set(), 0, 0
    for run in attempt_chain.chain_runs(instance, chain):
        config = comparable(*attempt_chain.full_configs(run.run_config or {}))
        repeated_configs += config in configs
        configs.add(config)
        report = attempt_chain.report_of_run(instance, run.run_id)
        if report is not None:
            fit = attempt_chain.fitted_generator(report)
            repeated_fits += fit in fits
            fits.add(fit)
    return repeated_configs, repeated_fits


def run_chain(name: str, start: str, store: Path, data_dir: Path, max_attempts: int, quick: bool, log) -> dict:
    _, table, target = DATASETS[name]
    with tempfile.TemporaryDirectory(prefix=f"optimizer-bench-{name}-") as home, dg.instance_for_test(temp_dir=home) as instance:
        bench = definitions_for(source_for(name, data_dir), PlatformStorage(root=str(store)), max_attempts)
        config = {"ops": {"source_sample": {"config": {"table": table}}, "privacy_utility_report": {"config": {"target_column": target}}}}
        for op, values in [*TABLE_CONFIG.get(name, {}).items(), *start_config(start, quick).items()]:
            config["ops"].setdefault(op, {"config": {}})["config"].update(values)
        started = time.perf_counter()
        first = bench.resolve_job_def("adult_synthesis_job").execute_in_process(run_config=config, instance=instance, raise_on_error=False)
        log(f"{name}/{start}: first run {'green' if first.success else 'not green'} in {time.perf_counter() - started:.0f} s")
        cursor, ticks = None, []
        for _ in range(2 * max_attempts + 2):  # bounded: the sensor must stop by itself well before this
            t = time.perf_counter()
            tick = optimizer_tick(instance, cursor, bench)
            ticks.append(time.perf_counter() - t)
            cursor = tick.cursor
            if not tick.run_requests:
                break
            for request in tick.run_requests:
                log(f"{name}/{start}: {request.job_name} {request.tags.get(attempt_chain.ATTEMPT_TAG, '')} "
                    f"{request.tags.get(attempt_chain.CHANGE_TAG, request.tags.get(attempt_chain.STOP_TAG, ''))}")
                bench.resolve_job_def(request.job_name).execute_in_process(
                    run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False)
        total = time.perf_counter() - started
        attempts = attempt_chain.chain_attempts(instance, first.run_id)
        green_at = next((a.attempt for a in attempts if a.all_green), None)
        repeated_configs, repeated_fits = repeats(instance, first.run_id)
        return {
            "dataset": name, "start": start, "re_runs": len(attempts) - 1, "green_at_attempt": green_at,
            "wall_seconds": round(total, 1), "repeated_configs": repeated_configs, "repeated_fits": repeated_fits,
            "slowest_tick_seconds": round(max(ticks), 3),
            "rules": [a.rule for a in attempts if a.attempt > 0],
            "first_failed": attempts[0].failed_checks() if attempts else [],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, from {list(DATASETS)}")
    parser.add_argument("--starts", default=",".join(STARTS), help=f"comma-separated, from {list(STARTS)}")
    parser.add_argument("--passes", type=int, default=2, help="passes over every (start, dataset) on one memory")
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small budgets instead of the defaults")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    starts = [s.strip() for s in args.starts.split(",") if s.strip()]
    if unknown := [n for n in names if n not in DATASETS] + [s for s in starts if s not in STARTS]:
        parser.error(f"unknown dataset(s) or start(s) {unknown}; choose from {list(DATASETS)} and {list(STARTS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="optimizer-bench-store-") as shared:
        store, data_dir = Path(shared) / "platform", Path(shared) / "sources"
        data_dir.mkdir()
        for number in range(1, args.passes + 1):
            for start in starts:
                for name in names:
                    result = run_chain(name, start, store, data_dir, args.max_attempts, args.quick, log=lambda m: print(m, flush=True))
                    results.append({"pass": number, **result})
                    print(json.dumps(results[-1]), flush=True)
                    if args.json:
                        args.json.write_text(json.dumps(results, indent=2, default=str))
    print("\n| pass | start | dataset | re-runs | green at attempt | wall time | repeated configs | repeated fits | slowest tick | rules |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        green = "never" if r["green_at_attempt"] is None else str(r["green_at_attempt"])
        print(f"| {r['pass']} | {r['start']} | {r['dataset']} | {r['re_runs']} | {green} | {r['wall_seconds'] / 60:.1f} min | "
              f"{r['repeated_configs']} | {r['repeated_fits']} | {r['slowest_tick_seconds']:.2f} s | {', '.join(r['rules']) or '—'} |")
    print("\n| pass | re-runs in total | chains green | wall time |")
    print("|---|---|---|---|")
    for number in range(1, args.passes + 1):
        mine = [r for r in results if r["pass"] == number]
        print(f"| {number} | {sum(r['re_runs'] for r in mine)} | {sum(r['green_at_attempt'] is not None for r in mine)} of {len(mine)} | "
              f"{sum(r['wall_seconds'] for r in mine) / 60:.1f} min |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
