"""Our whole privacy/utility report at 10k, 100k and 1M rows: wall time and peak memory.

    .venv/bin/python benchmarks/report_scaling.py                 # 10k, 100k, 1M training rows
    .venv/bin/python benchmarks/report_scaling.py --sizes 10000   # one size

For each size N: training N rows, holdout N/2, synthetic N (synthetic = real size), 15 Adult columns. Rows are Adult
rows drawn with replacement, numeric columns jittered (so rows are mostly distinct, as real tables are); the
synthetic table is an independent draw. Each size runs in a fresh process so its peak resident memory (ru_maxrss,
which includes the Python/pandas/numba start-up, ~0.4 GB) is its own. Default report settings: 2,000 query rows per
side for the distance metrics against full reference sets, 200 bootstrap resamples.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

TARGET = {"seconds": 600, "gigabytes": 8}  # 1M x 15 rows in at most 10 minutes and 8 GB


def jittered_adult(n: int, rng: np.random.Generator) -> pd.DataFrame:
    from synth_platform.sampling.source import BUNDLED_DATASET

    with gzip.open(BUNDLED_DATASET, "rt") as handle:
        adult = pd.read_csv(handle)
    rows = adult.iloc[rng.integers(0, len(adult), n)].reset_index(drop=True)
    rows["age"] = np.clip(rows["age"] + rng.integers(-2, 3, n), 17, 90)
    rows["fnlwgt"] = (rows["fnlwgt"] * rng.uniform(0.9, 1.1, n)).round().astype(np.int64)
    rows["hours_per_week"] = np.clip(rows["hours_per_week"] + rng.integers(-3, 4, n), 1, 99)
    return rows


def run_one(size: int) -> dict:
    from synth_platform.evaluation.report import build_report
    from synth_platform.profiling.profile import profile_dataframe

    rng = np.random.default_rng(size)
    training, holdout, synthetic = jittered_adult(size, rng), jittered_adult(size // 2, rng), jittered_adult(size, rng)
    profile = profile_dataframe(training)
    build_report(training.head(300), holdout.head(100), synthetic.head(300), profile, bootstrap_resamples=5, privacy_rows=50)
    start = time.perf_counter()
    report = build_report(training, holdout, synthetic, profile)
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"rows": size, "columns": training.shape[1], "seconds": round(seconds, 1), "peak_gb": round(peak_gb, 2),
            "ks_mean": round(report["metrics"]["ks_mean"], 4), "membership_inference_auc": round(report["metrics"]["membership_inference_auc"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child)))
        return
    print(f"{'rows':>10} {'columns':>8} {'seconds':>9} {'peak GB':>8}   (target at 1M: ≤ {TARGET['seconds']} s, ≤ {TARGET['gigabytes']} GB)")
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(size)], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{result['rows']:>10} {result['columns']:>8} {result['seconds']:>9} {result['peak_gb']:>8}   "
              f"(ks_mean {result['ks_mean']}, MIA AUC {result['membership_inference_auc']})", flush=True)


if __name__ == "__main__":
    main()
