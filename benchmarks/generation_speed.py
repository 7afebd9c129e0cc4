"""Generation speed: synthcity called plainly vs synth_platform's generation layer, side by side on Adult.

    .venv/bin/python benchmarks/generation_speed.py [--parts ddpm,tuning,million] [--ddpm-steps 3000]
        [--generate 30000] [--sampling-steps 100] [--plugin tvae] [--trials 20] [--plain-trials 20]
        [--trial-steps 500] [--tuning-arms ours,plain] [--pruner median]
        [--million 1000000] [--seed 0]

Data: UCI Adult's original training split with the rows that have a missing value removed (30,162 rows), as in
the issue that asked for this; the holdout for the privacy metrics is 10,000 rows of the original test split.

Parts (each prints its own table and the ratios):
- ddpm: one TabDDPM fit (the same fitted model serves every column; our layer adds nothing to ddpm's fit but the
  x̂₀ clamp), then `--generate` rows by synthcity's own `generate` (ancestral sampling through all 1,000 timesteps,
  batches of 2,000, no clamp), by our layer through all 1,000 timesteps (the sampler alone is then the difference),
  and by our layer as configured (`generators.sample`: a respaced chain through `--sampling-steps` timesteps,
  batches of 20,000, inference mode, the clamp); seconds, peak resident memory while generating, and the report's
  utility and privacy metrics with their 95% intervals.
- tuning: the same `--trials` parameter sets (drawn from the plugin's search space by a seeded random sampler,
  `--trial-steps` optimizer steps each) fitted on the same fit rows and scored on the same validation rows, by arm
  (`--tuning-arms`): `plain`, synthcity as its docs show (it fits its data encoder in every trial and trains every
  trial to the end); `ours`, the product's trial (`tuning.study.make_objective`: one encoder fit, reused; the reused
  heap; utility scored at 25/50/75% of each trial's training for the `--pruner`, which stops trials far behind the
  median), the sets enqueued in order into an Optuna study; `reuse` (optional), encoder reuse and the heap without
  pruning. Wall time of each study, the best utility distance each found, and the ratios; `--plain-trials` below
  `--trials` measures fewer plain trials and says that the plain total is extrapolated from their mean.
- million: `--million` ddpm rows generated in chunks, decoded per chunk and streamed to a parquet file, in a child
  process whose peak resident memory (its whole life: imports, model, generation) is reported.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import pickle

import cloudpickle  # the fitted ddpm carries closures (the x̂₀ clamp) that pickle cannot serialise
import resource
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import synth_platform  # noqa: E402,F401 - OpenMP wait policy
from synth_platform.evaluation.report import build_report  # noqa: E402
from synth_platform.generation import generators  # noqa: E402
from synth_platform.generation.encoder_cache import EncoderCache  # noqa: E402
from synth_platform.profiling.profile import decode_from_generation, encode_for_generation, profile_dataframe  # noqa: E402
from synth_platform.sampling.source import BUNDLED_DATASET  # noqa: E402
from synth_platform.tuning.search_space import search_space, suggest  # noqa: E402
from synth_platform.tuning.study import utility_distance  # noqa: E402

ADULT_TRAIN_ROWS = 32_561  # rows 0–32,560 of the bundled file are the original adult.data
REPORTED = ("ks_mean", "tvd_mean", "correlation_delta", "membership_inference_auc", "exact_copy_rate", "tstr_score")


class PeakRSS:
    """Peak resident memory of this process while inside (polled every 20 ms from /proc), in MiB above the start."""

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    @property
    def growth_mib(self) -> float:
        return self.peak - self.start


def load_adult(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    with gzip.open(BUNDLED_DATASET, "rt") as handle:
        adult = pd.read_csv(handle)
    training = adult.iloc[:ADULT_TRAIN_ROWS].dropna().reset_index(drop=True)
    holdout = adult.iloc[ADULT_TRAIN_ROWS:].dropna().sample(10_000, random_state=seed).reset_index(drop=True)
    return training, holdout


def report_metrics(training, holdout, synthetic, profile, seed: int) -> dict:
    report = build_report(training, holdout, synthetic, profile, privacy_rows=2000, bootstrap_resamples=100, seed=seed)
    return {name: (report["metrics"][name], (report.get("intervals") or {}).get(name)) for name in REPORTED}


def shown(value, interval) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" + (f" ({interval[0]:.4f}–{interval[1]:.4f})" if interval else "")


def ddpm_part(args, training, holdout, profile, encoded, workspace: Path) -> Path:
    print(f"\n== ddpm: fit once, generate {args.generate:,} rows both ways ==", flush=True)
    n_iter = generators.epochs_for_steps("ddpm", args.ddpm_steps, len(encoded), 1024)
    start = time.perf_counter()
    fitted = generators.fit_generator(encoded, "ddpm", {"n_iter": n_iter, "batch_size": 1024, "num_timesteps": 1000},
                                      seed=args.seed, workspace=workspace / "ddpm")
    print(f"fit: {len(encoded):,} rows, {args.ddpm_steps} steps ({n_iter} epochs), {time.perf_counter() - start:.0f} s", flush=True)
    model_path = workspace / "ddpm.pkl"
    with open(model_path, "wb") as handle:
        cloudpickle.dump(fitted, handle)

    diffusion = fitted.model.model.diffusion
    clamped = diffusion.gaussian_p_mean_variance
    del diffusion.gaussian_p_mean_variance  # synthcity's own method again: plain means plain
    with PeakRSS() as plain_memory:
        start = time.perf_counter()
        plain_rows = fitted.model.generate(count=args.generate, random_state=args.seed).dataframe()
        plain_s = time.perf_counter() - start
    diffusion.gaussian_p_mean_variance = clamped
    print(f"plain synthcity generate: {plain_s:.1f} s", flush=True)
    with PeakRSS() as ours_memory:
        start = time.perf_counter()
        our_rows = generators.sample(fitted, args.generate, seed=args.seed, sampling_steps=args.sampling_steps)
        ours_s = time.perf_counter() - start
    print(f"our generation layer: {ours_s:.1f} s", flush=True)
    # The sampler alone: our layer through all 1,000 timesteps (synthcity's ancestral sampler with the x̂₀ clamp).
    with PeakRSS() as full_memory:
        start = time.perf_counter()
        full_rows = generators.sample(fitted, args.generate, seed=args.seed, sampling_steps=1000)
        full_s = time.perf_counter() - start
    print(f"our layer, all 1,000 timesteps: {full_s:.1f} s", flush=True)
    columns = {"synthcity plain": (plain_s, plain_memory, plain_rows),
               "synth_platform, 1,000 timesteps": (full_s, full_memory, full_rows),
               f"synth_platform, {args.sampling_steps} steps": (ours_s, ours_memory, our_rows)}
    measured = {label: report_metrics(training, holdout, decode_from_generation(rows, profile), profile, args.seed)
                for label, (_, _, rows) in columns.items()}
    print(f"\n| ddpm, {args.generate:,} rows | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    print("| generate seconds | " + " | ".join(f"{c[0]:.1f}" for c in columns.values()) + " |")
    print("| peak memory growth while generating (MiB) | " + " | ".join(f"{c[1].growth_mib:.0f}" for c in columns.values()) + " |")
    for name in REPORTED:
        print(f"| {name} | " + " | ".join(shown(*measured[label][name]) for label in columns) + " |")
    print(f"\nddpm generation: {plain_s / ours_s:.1f}× faster than synthcity plain; {full_s / ours_s:.1f}× faster than our "
          f"layer through all 1,000 timesteps (the sampler alone: same model, same clamp)", flush=True)
    return model_path


def parameter_sets(plugin: str, n: int, seed: int, trial_steps: int, fit_rows: int) -> list[dict]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(plugin)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    sets = []
    for _ in range(n):
        trial = study.ask()
        params = suggest(trial, space)
        params["n_iter"] = generators.epochs_for_steps(plugin, trial_steps, fit_rows, params.get("batch_size"))
        sets.append(params)
        study.tell(trial, 0.0)
    return sets


def tuning_part(args, training, profile, encoded, workspace: Path) -> None:
    import optuna

    from synth_platform.tuning import strategy
    from synth_platform.tuning.study import PrivacyConstraints, SearchSettings, TrialSetup, TuningBudget, make_objective

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(encoded))
    n_validation = len(order) // 4
    fit_frame = encoded.iloc[order[n_validation:]].reset_index(drop=True)
    fit_rows = training.iloc[order[n_validation:]].reset_index(drop=True)
    validation = training.iloc[order[:n_validation]].reset_index(drop=True)
    sets = parameter_sets(args.plugin, args.trials, args.seed, args.trial_steps, len(fit_frame))
    arms = args.tuning_arms.split(",")
    print(f"\n== tuning: {args.trials} {args.plugin} trials on {len(fit_frame):,} fit rows, {len(validation):,} validation "
          f"rows; arms {arms} ==", flush=True)
    totals: dict[str, float] = {}
    best: dict[str, float] = {}
    notes: dict[str, str] = {}

    def score(rows) -> float:
        return utility_distance(validation, decode_from_generation(rows, profile), profile)

    if "ours" in arms:  # the product's trial: encoder reuse, reused heap, checkpoints for the median pruner
        setup = TrialSetup(
            plugin=args.plugin, fit_frame=fit_frame, fit_rows=fit_rows, validation=validation, profile=profile,
            space=search_space(args.plugin), budget=TuningBudget(n_trials=args.trials, trial_steps=args.trial_steps),
            search=SearchSettings(pruner=args.pruner), privacy=generators.PrivacyPolicy(),
            constraints=PrivacyConstraints(),
            seed=args.seed, workspace=workspace / "ours", encoder_cache_dir=workspace / "encoders",
        )
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed),
                                    pruner=strategy.make_pruner(args.pruner))
        for params in sets:
            study.enqueue_trial({k: v for k, v in params.items() if k != "n_iter"})
        objective = make_objective(setup, lambda message: print(f"  ours  {message}", flush=True))
        start = time.perf_counter()
        study.optimize(objective, n_trials=len(sets), catch=(Exception,))
        totals["ours"] = time.perf_counter() - start
        states = [t.state.name for t in study.trials]
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        best["ours"] = min(t.value for t in complete)
        winner = min(complete, key=lambda t: t.value).number
        notes["ours"] = (f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, {states.count('FAIL')} failed; "
                         f"best: trial {winner}")
        for t in study.trials:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
            print(f"  ours  trial {t.number:2d}: {t.state.name:8s} {seconds:6.1f} s, value {t.value}, "
                  f"checkpoints {dict(t.intermediate_values)}", flush=True)

    if "reuse" in arms:  # encoder reuse and the reused heap only: every trial trains to the end
        cache = EncoderCache(workspace / "encoders-reuse")
        values = []
        start = time.perf_counter()
        for i, params in enumerate(sets):
            t0 = time.perf_counter()
            fitted = generators.fit_generator(fit_frame, args.plugin, params, seed=args.seed + i,
                                              workspace=workspace / f"reuse-{i}", encoder_cache=cache)
            values.append(score(generators.sample(fitted, len(validation), seed=args.seed + i)))
            print(f"  reuse trial {i:2d}: {time.perf_counter() - t0:6.1f} s, utility distance {values[-1]:.4f}", flush=True)
        totals["reuse"] = time.perf_counter() - start
        best["reuse"] = min(values)
        notes["reuse"] = f"best: trial {int(np.argmin(values))}; encoder fitted {cache.fits}×"

    if "plain" in arms:  # synthcity as its docs show: every trial fits its encoder and trains to the end
        from synthcity.plugins.core.dataloader import GenericDataLoader

        values, seconds = [], []
        for i, params in enumerate(sets[: args.plain_trials]):
            t0 = time.perf_counter()
            model = generators.synthcity_plugins().get(args.plugin, random_state=args.seed + i, strict=False,
                                                       workspace=workspace / f"plain-{i}", **params)
            model.fit(GenericDataLoader(fit_frame))
            values.append(score(model.generate(count=len(validation), random_state=args.seed + i).dataframe()))
            seconds.append(time.perf_counter() - t0)
            print(f"  plain trial {i:2d}: {seconds[-1]:6.1f} s, utility distance {values[-1]:.4f}", flush=True)
        measured = len(seconds)
        totals["plain"] = sum(seconds) if measured == args.trials else float(np.mean(seconds)) * args.trials
        best["plain"] = min(values)
        notes["plain"] = (f"best: trial {int(np.argmin(values))}" if measured == args.trials else
                          f"extrapolated from {measured} measured trials (mean {np.mean(seconds):.0f} s); best of those")

    labels = {"plain": "synthcity plain", "reuse": "encoder reuse + heap, no pruning", "ours": f"synth_platform ({args.pruner} pruner)"}
    shown_arms = [a for a in ("plain", "reuse", "ours") if a in totals]
    print(f"\n| {args.trials}-trial {args.plugin} study | " + " | ".join(labels[a] for a in shown_arms) + " |")
    print("|---" * (len(shown_arms) + 1) + "|")
    print("| wall seconds | " + " | ".join(f"{totals[a]:.0f}" for a in shown_arms) + " |")
    print("| best utility distance found | " + " | ".join(f"{best[a]:.4f}" for a in shown_arms) + " |")
    print("| trials | " + " | ".join(notes[a] for a in shown_arms) + " |")
    if "plain" in totals:
        for arm in shown_arms[1:]:
            print(f"\n{args.trials}-trial study, {labels[arm]}: {totals['plain'] / totals[arm]:.1f}× less wall time than "
                  f"synthcity plain", flush=True)


def _million_child(model_path: str, rows: int, out: str, sampling_steps: int, seed: int, queue) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(model_path, "rb") as handle:
        fitted, profile = pickle.load(handle)
    generators.configure_compute()
    writer, start = None, time.perf_counter()
    for chunk in generators.iter_sample(fitted, rows, seed=seed, sampling_steps=sampling_steps):
        table = pa.Table.from_pandas(decode_from_generation(chunk, profile), preserve_index=False)
        writer = writer or pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
    writer.close()
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def million_part(args, model_path: Path, profile, workspace: Path) -> None:
    print(f"\n== {args.million:,} ddpm rows, streamed to parquet in a child process ==", flush=True)
    with open(model_path, "rb") as handle:
        fitted = pickle.load(handle)
    bundle = workspace / "ddpm_and_profile.pkl"
    with open(bundle, "wb") as handle:
        cloudpickle.dump((fitted, profile), handle)
    out = workspace / "million.parquet"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_million_child, args=(str(bundle), args.million, str(out), args.sampling_steps, args.seed, queue))
    child.start()
    seconds, peak_mib = queue.get()
    child.join()
    rows = pd.read_parquet(out, columns=[profile.output_columns()[0]]).shape[0]
    print(f"| rows written | seconds | peak resident memory of the process |\n|---|---|---|\n"
          f"| {rows:,} | {seconds:.0f} | {peak_mib / 1024:.2f} GiB |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="ddpm,tuning,million")
    parser.add_argument("--ddpm-steps", type=int, default=3000)
    parser.add_argument("--generate", type=int, default=30_000)
    parser.add_argument("--sampling-steps", type=int, default=generators.DEFAULT_SAMPLING_STEPS)
    parser.add_argument("--plugin", default="tvae", choices=("tvae", "ctgan"))
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--plain-trials", type=int, default=20)
    parser.add_argument("--trial-steps", type=int, default=500)
    parser.add_argument("--tuning-arms", default="ours,plain", help="comma-separated: plain, reuse, ours")
    parser.add_argument("--pruner", default="median", choices=("median", "successive_halving", "none"))
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    threads = generators.configure_compute()
    training, holdout = load_adult(args.seed)
    profile = profile_dataframe(training)
    encoded = encode_for_generation(training, profile)
    print(f"Adult: {len(training):,} training rows, {len(holdout):,} holdout rows; {threads} torch threads, "
          f"{generators.available_cores()} cores, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
        workspace = Path(tmp)
        model_path = None
        if "ddpm" in parts or "million" in parts:
            model_path = ddpm_part(args, training, holdout, profile, encoded, workspace)
        if "tuning" in parts:
            tuning_part(args, training, profile, encoded, workspace)
        if "million" in parts:
            million_part(args, model_path, profile, workspace)


if __name__ == "__main__":
    main()
