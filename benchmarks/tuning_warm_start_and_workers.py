"""Tuning with real synthcity training: warm start from the tuning memory vs a cold study, and 1 vs 2 workers.

    .venv/bin/python benchmarks/tuning_warm_start_and_workers.py --quick --torch-threads 1   # ~12 min on a busy 2-core machine
    .venv/bin/python benchmarks/tuning_warm_start_and_workers.py            # 6 trials per study, 4 per worker run (> 40 min)
    .venv/bin/python benchmarks/tuning_warm_start_and_workers.py --seeds 0 1 2 --skip-workers

Every trial is a real `run_study` trial: the generator (ddpm unless `--plugin`) is fitted for `--trial-steps`
optimizer steps on 75% of `--tuning-rows` rows, samples as many rows as the other 25% and is scored on them
(utility distance: mean KS/TVD + correlation delta, lower is better; MIA AUC and exact-copy rate are the privacy
constraints). MLflow is off; the platform's defaults otherwise (TPE, median pruner in part 1).

1. Warm vs cold on Adult (48,842 rows, the whole file as the training table). (a) A donor, credit_data (4,454
   rows), is tuned first for N trials (seed + 1000: with the Adult seed its sampler would draw the very parameter
   sequence the cold Adult study draws) with a fresh tuning memory (SQLite in a temp dir), which records its best
   parameters. (b) A cold study on Adult (no memory) and (c) a warm study on Adult (the memory of (a)) then run N
   trials each with the same seed. Both start with the plugin defaults; the warm one then runs the donor's best
   parameters (the warm-start trial), the cold one goes straight to the sampler. Printed: the running best
   feasible utility distance after k = 1..N trials of each, wall times, `warm_start_won` (the warm-start trial
   beat every other trial of the warm study), and "cold trials to match": how many trials the cold study needed to
   reach the warm study's best after its warm-start trial (k_w = 1 + warm-start trials), as k_cold / k_w, or "not
   reached" within N. One seed is one sample of a noisy process: TPE samples at random for its first 10 trials, so
   with N <= 10 the cold study is "defaults + random draws" and the warm one "defaults + donor's best + the same
   draws, one trial later". A trial's own randomness is seeded (seed + trial number): equal parameters at equal
   trial numbers give equal scores. Use `--seeds` to repeat.
2. 1 vs 2 worker processes on PostgreSQL (a fresh database per run, dropped afterwards): the same M trials (the
   plugin defaults + M-1 parameter sets drawn once by a seeded random sampler, given to every run as `warm_start`;
   pruner off), so every run does the same work. Printed: wall time, trials per hour, ratios. run_study gives each
   worker cores // workers torch threads: 1 worker in this process with 2 threads, 2 spawned workers with 1 each
   (they also pay their own imports). A third run, 1 worker forced to 1 torch thread, separates the thread effect
   from the worker effect: when other processes hold a core, torch's OpenMP threads spin-wait at every barrier
   on a descheduled partner, and a 2-thread trial is several times slower than a 1-thread one.

The machine may be busy: each phase prints the load average and the cores other processes used during it
(system busy time from /proc/stat minus this process tree's CPU time). Compare ratios within one run, not
seconds across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("TQDM_DISABLE", "1")  # synthcity's per-epoch progress bars

import optuna  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from synth_platform.profiling.profile import encode_for_generation, profile_dataframe  # noqa: E402
from synth_platform.sampling.source import BUNDLED_DATASET  # noqa: E402
from synth_platform.tuning.search_space import search_space, suggest  # noqa: E402
from synth_platform.generation import generators  # noqa: E402
from synth_platform.tuning.study import SearchSettings, TuningBudget, TuningResult, run_study  # noqa: E402

logging.getLogger("synth_platform.tuning").propagate = False  # run_study forwards trial lines to our log; no duplicates

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DONOR_SEED_OFFSET = 1000


# --- load: how busy the machine was while a phase ran ----------------------------------------------------------------


def _busy_seconds() -> float:
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is already in user


def _own_seconds() -> float:
    t = os.times()  # children count once joined: run_workers joins its spawned workers before returning
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class Load:
    wall_s: float = 0.0
    busy_cores: float = 0.0
    own_cores: float = 0.0
    loadavg_start: float = 0.0
    loadavg_end: float = 0.0

    @property
    def other_cores(self) -> float:
        return max(0.0, self.busy_cores - self.own_cores)

    def describe(self) -> str:
        return (f"load avg {self.loadavg_start:.1f}->{self.loadavg_end:.1f}; cores busy {self.busy_cores:.2f} of "
                f"{os.cpu_count()}, ours {self.own_cores:.2f}, other processes {self.other_cores:.2f}")


@contextlib.contextmanager
def measured(load: Load):
    busy, own, start = _busy_seconds(), _own_seconds(), time.perf_counter()
    load.loadavg_start = os.getloadavg()[0]
    try:
        yield load
    finally:
        load.wall_s = time.perf_counter() - start
        load.busy_cores = (_busy_seconds() - busy) / load.wall_s
        load.own_cores = (_own_seconds() - own) / load.wall_s
        load.loadavg_end = os.getloadavg()[0]


# --- data -------------------------------------------------------------------------------------------------------------


@dataclass
class Table:
    name: str
    training: pd.DataFrame
    encoded: pd.DataFrame
    profile: object
    fingerprint: str = ""


def load_table(name: str, seed: int) -> Table:
    if name == "adult":
        path = SHARED / "adult.csv.gz"
        frame = pd.read_csv(path if path.exists() else BUNDLED_DATASET)
    else:
        frame = pd.read_csv(SHARED / f"{name}.csv")
    frame = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
    profile = profile_dataframe(frame)
    return Table(name, frame, encode_for_generation(frame, profile), profile, f"bench-{name}")


# --- one study --------------------------------------------------------------------------------------------------------


@dataclass
class StudyRun:
    label: str
    result: TuningResult
    load: Load
    trials: list[dict] = field(default_factory=list)

    def running_best(self) -> list[float | None]:
        best, out = None, []
        for t in self.trials:
            if t["state"] == "COMPLETE" and t["feasible"] and t["values"]:
                best = t["values"][0] if best is None else min(best, t["values"][0])
            out.append(best)
        return out


def study(label: str, table: Table, args, *, storage: str, workspace: Path, seed: int, n_trials: int, memory_url=None,
          n_workers: int = 1, warm_start=(), search: SearchSettings | None = None, threads: int | None = None) -> StudyRun:
    budget = TuningBudget(n_trials=n_trials, trial_steps=args.trial_steps, tuning_rows=args.tuning_rows,
                          timeout_s=6 * 3600, trial_timeout_s=1800)
    started = time.perf_counter()

    def log(message: str) -> None:
        if args.verbose or message.startswith(("trial", "warm start")):
            print(f"    [{label} {time.perf_counter() - started:6.0f} s] {message[:220]}", flush=True)

    per_worker = generators.threads_for(n_workers, threads or 0)
    print(f"  {label}: {n_trials} trials, {n_workers} worker(s) x {per_worker} torch thread(s) ...", flush=True)
    load = Load()
    with measured(load):
        result = run_study(
            table.encoded, table.training, table.profile, plugin=args.plugin, fingerprint=table.fingerprint,
            storage=storage, budget=budget, search=search or SearchSettings(), seed=seed, workspace=workspace,
            n_workers=n_workers, memory_url=memory_url, tracking_uri=None, warm_start=list(warm_start), log=log,
            threads=threads or 0,
        )
    print(f"  {label}: {load.wall_s:.0f} s; {load.describe()}", flush=True)
    return StudyRun(label, result, load, sorted(result.trials, key=lambda t: t["number"]))


def fmt(value: float | None) -> str:
    return "   -   " if value is None else f"{value:.4f}"


# --- 1. warm vs cold --------------------------------------------------------------------------------------------------


def warm_vs_cold(args, seed: int, order: int) -> dict:
    print(f"\n== warm vs cold, seed {seed} ==", flush=True)
    donor, adult = load_table(args.donor, seed), load_table("adult", seed)
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        tmp = Path(tmp)
        memory_url = f"sqlite:///{tmp / 'memory.db'}"
        # Another seed for the donor: with the same one its sampler draws the very parameter sequence the cold Adult
        # study draws (TPE's random start-up depends on the seed and the space only), so its "best" would be a trial
        # the cold study runs anyway.
        runs = {"donor": study(f"donor {args.donor}", donor, args, storage=f"sqlite:///{tmp / 'donor.db'}",
                               workspace=tmp / "donor", seed=seed + DONOR_SEED_OFFSET, n_trials=args.trials, memory_url=memory_url,
                               threads=args.torch_threads)}
        cold_first = order % 2 == 0  # alternate the order over seeds: load drifts
        for which in (("cold", "warm") if cold_first else ("warm", "cold")):
            runs[which] = study(f"{which} adult", adult, args, storage=f"sqlite:///{tmp / f'{which}.db'}",
                                workspace=tmp / which, seed=seed, n_trials=args.trials,
                                memory_url=memory_url if which == "warm" else None, threads=args.torch_threads)
    cold, warm = runs["cold"], runs["warm"]
    cold_best, warm_best = cold.running_best(), warm.running_best()

    print(f"\nrunning best feasible utility distance (lower is better), seed {seed}:")
    print("   k   cold     warm     cold trial (origin)           warm trial (origin)")
    for k in range(args.trials):
        def trial(run: StudyRun) -> str:
            if k >= len(run.trials):
                return ""
            t = run.trials[k]
            value = t.get("utility_distance")
            mark = "" if t["feasible"] or t["state"] != "COMPLETE" else " infeasible"
            shown = f"{value:.4f}" if value is not None else t["state"]
            seconds = f"{t['seconds']:.0f} s" if "seconds" in t else "-"
            return f"{shown}{mark} ({str(t['origin'])[:18]}, {seconds})"
        print(f"  {k + 1:2d}  {fmt(cold_best[k] if k < len(cold_best) else None)}  "
              f"{fmt(warm_best[k] if k < len(warm_best) else None)}   {trial(cold):30s} {trial(warm)}")

    outcome = warm.result.warm_start
    k_warm = 1 + int(outcome.get("warm_start_trials") or 0)
    target = warm_best[k_warm - 1] if len(warm_best) >= k_warm else None
    k_cold = next((k + 1 for k, v in enumerate(cold_best) if v is not None and target is not None and v <= target), None)
    if not outcome.get("warm_start_trials"):
        ratio = "no warm-start trial ran (see above): warm and cold are the same study"
    elif target is None:
        ratio = "the warm study had no feasible trial by then"
    else:
        ratio = f"{k_cold}/{k_warm} = {k_cold / k_warm:.2f}" if k_cold else f"not reached in {args.trials} (> {args.trials / k_warm:.1f}x)"
    print(f"\n  wall: donor {runs['donor'].load.wall_s:.0f} s, cold {cold.load.wall_s:.0f} s, warm {warm.load.wall_s:.0f} s "
          f"(warm/cold {warm.load.wall_s / cold.load.wall_s:.2f}); order {'cold, warm' if cold_first else 'warm, cold'}")
    donor_result = runs["donor"].result
    print(f"  donor best {donor_result.best_value:.4f} (trial {donor_result.best_trial_number}, feasible "
          f"{donor_result.feasible}) with {donor_result.params}")
    if not outcome.get("warm_start_trials"):
        print("  NOTE: no warm-start trial was enqueued although the memory held the donor: its best parameters equal the "
              "plugin defaults (after clipping), and run_study enqueues them with skip_if_exists=True behind the defaults "
              "trial, so they are skipped; the 'warm start: ...' log line is printed anyway.")
    print(f"  warm start: {outcome.get('warm_start_trials')} trial(s) from {outcome.get('sources')}; warm best "
          f"{fmt(outcome.get('warm_start_best_value'))} vs the warm study's cold trials {fmt(outcome.get('cold_best_value'))}; "
          f"warm_start_won = {outcome.get('warm_start_won')}")
    print(f"  final best: cold {cold.result.best_value:.4f} (feasible {cold.result.feasible}), warm "
          f"{warm.result.best_value:.4f} (feasible {warm.result.feasible}); warm/cold {warm.result.best_value / cold.result.best_value:.3f}")
    by_defaults = bool(outcome.get("warm_start_trials")) and target is not None and warm_best[0] == target
    print(f"  cold trials to reach the warm study's best after its warm-start trial ({fmt(target)}): {ratio}"
          + (" (that best is the plugin-defaults trial's, which both studies run first)" if by_defaults else ""))
    return {
        "seed": seed, "cold_running_best": cold_best, "warm_running_best": warm_best,
        "cold_wall_s": cold.load.wall_s, "warm_wall_s": warm.load.wall_s, "donor_wall_s": runs["donor"].load.wall_s,
        "warm_start": outcome, "k_warm": k_warm, "k_cold": k_cold, "target": target,
        "cold_best": cold.result.best_value, "warm_best": warm.result.best_value,
        "cold_trials": cold.trials, "warm_trials": warm.trials, "donor_trials": runs["donor"].trials,
        "loads": {name: vars(run.load) for name, run in runs.items()},
    }


# --- 2. 1 vs 2 workers ------------------------------------------------------------------------------------------------


def fixed_parameter_sets(plugin: str, n: int, seed: int) -> list[dict]:
    """n parameter sets drawn once from the plugin's space by a seeded random sampler: the same work for both runs."""
    space = search_space(plugin)
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    sets = []
    for i in range(n):
        trial = draws.ask()
        sets.append({**suggest(trial, space), "origin": f"benchmark set {i}"})
        draws.tell(trial, 0.0)
    return sets


@contextlib.contextmanager
def fresh_database(admin_url: str):
    name = f"bench_tuning_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def workers(args) -> dict:
    print(f"\n== 1 vs 2 workers on PostgreSQL, {args.worker_trials} trials each ==", flush=True)
    adult = load_table("adult", args.seeds[0])
    fixed = fixed_parameter_sets(args.plugin, args.worker_trials - 1, seed=1234)
    print(f"  trials: plugin defaults + {[{k: v for k, v in s.items() if k != 'origin'} for s in fixed]}")
    # (workers, torch threads per worker or None for run_study's own choice), in this order
    configs = [(1, None), (2, None)] + ([(1, 1)] if not args.no_thread_control and (os.cpu_count() or 1) > 1 else [])
    runs = {}
    for n, threads in configs:
        label = f"{n} worker(s)" + ("" if threads is None else f", {threads} thread")
        with fresh_database(args.pg_url) as url, tempfile.TemporaryDirectory(prefix=f"bench-w{n}-") as tmp:
            runs[(n, threads)] = study(label, adult, args, storage=url, workspace=Path(tmp), seed=args.seeds[0],
                                       n_trials=args.worker_trials, n_workers=n, warm_start=fixed,
                                       search=SearchSettings(pruner="none"), threads=threads)
    base = runs[(1, None)].load.wall_s
    print("\n  workers x threads   wall (s)   trials/hour   vs 1 worker   completed   mean trial (s)   load during the run")
    for (n, threads), run in runs.items():
        per = threads if threads is not None else max(1, (os.cpu_count() or 1) // n)
        done = [t for t in run.trials if t["state"] == "COMPLETE"]
        mean = sum(t.get("seconds", 0.0) for t in done) / max(1, len(done))
        print(f"  {n} x {per}{' (forced)' if threads else '         '}  {run.load.wall_s:9.0f}  "
              f"{3600 * len(run.trials) / run.load.wall_s:12.1f}  {base / run.load.wall_s:10.2f}x  {len(done):6d}/{len(run.trials)}"
              f"  {mean:14.0f}   {run.load.describe()}")
    ratio = base / runs[(2, None)].load.wall_s
    print(f"  throughput 2 workers / 1 worker (run_study's thread split): {ratio:.2f}x")
    if (1, 1) in runs:
        print(f"  throughput 2 workers / 1 worker with 1 torch thread: {runs[(1, 1)].load.wall_s / runs[(2, None)].load.wall_s:.2f}x")
    return {
        "trials": args.worker_trials, "ratio": ratio,
        "runs": {f"{n}x{t}": {"wall_s": r.load.wall_s, "load": vars(r.load), "trials": r.trials, "workers": r.result.workers}
                 for (n, t), r in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 trials per study, 2 per worker run, 200 steps on 2,000 rows")
    parser.add_argument("--plugin", default="ddpm")
    parser.add_argument("--donor", default="credit_data", help="dataset in ../shared/datasets tuned first (the memory's source)")
    parser.add_argument("--trials", type=int, default=None, help="trials per study in part 1 (default 6; --quick 3)")
    parser.add_argument("--worker-trials", type=int, default=None, help="trials per worker measurement (default 4; --quick 2)")
    parser.add_argument("--trial-steps", type=int, default=None, help="optimizer steps per trial (default 300; --quick 200)")
    parser.add_argument("--tuning-rows", type=int, default=None, help="rows per trial, fit + validation (default 3000; --quick 2000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="repeat part 1 with these seeds")
    parser.add_argument("--skip-warm", action="store_true")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch threads for the part-1 studies (default: run_study's choice, all cores)")
    parser.add_argument("--no-thread-control", action="store_true",
                        help="part 2 without the extra 1-worker run pinned to 1 torch thread")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin URL: fresh databases are created and dropped there")
    parser.add_argument("--json", default=None, help="also write every measurement to this file")
    parser.add_argument("--verbose", action="store_true", help="print every study log line")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still drops its databases and temp dirs
    args.trials = args.trials or (3 if args.quick else 6)
    args.worker_trials = args.worker_trials or (2 if args.quick else 4)
    args.trial_steps = args.trial_steps or (200 if args.quick else 300)
    args.tuning_rows = args.tuning_rows or (2000 if args.quick else 3000)
    print(f"plugin {args.plugin}, {args.trial_steps} steps on {args.tuning_rows} rows per trial (75% fit, 25% validation); "
          f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}; OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}; part-1 torch threads {args.torch_threads or 'run_study default'}", flush=True)

    out: dict = {"args": vars(args)}
    started = time.perf_counter()
    if not args.skip_warm:
        out["warm_vs_cold"] = [warm_vs_cold(args, seed, i) for i, seed in enumerate(args.seeds)]
        if len(args.seeds) > 1:
            rows = out["warm_vs_cold"]
            print("\nsummary over seeds:  seed  cold best  warm best  warm_start_won  cold trials to match")
            for r in rows:
                match = f"{r['k_cold']}/{r['k_warm']}" if r["k_cold"] else "not reached"
                print(f"                     {r['seed']:4d}  {r['cold_best']:.4f}    {r['warm_best']:.4f}    "
                      f"{str(r['warm_start']['warm_start_won']):14s}  {match}")
    if not args.skip_workers:
        out["workers"] = workers(args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
