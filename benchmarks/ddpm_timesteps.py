"""ddpm's diffusion timesteps at equal fit time: synthcity's and our default (1000) against the TabDDPM paper's
tuned Adult configuration (100; yandex-research/tab-ddpm exp/adult/ddpm_cb_best: 100 timesteps, lr 0.002).

Both variants fit the same encoded Adult training rows (the platform's profile and encoding), with the same seed,
learning rate and batch, cut at the same wall time by the platform's own fit deadline; both sample as many rows as
training rows through the platform's generation layer (denoising clamp, respaced sampler, contract rejection,
missing shares matched) and are judged with the report's metric code against the same holdout.

    .venv/bin/python benchmarks/ddpm_timesteps.py                      # 3 minutes of fitting each, all of Adult
    .venv/bin/python benchmarks/ddpm_timesteps.py --fit-minutes 1 --rows 10000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from synth_platform.evaluation import metrics  # noqa: E402
from synth_platform.generation import generators  # noqa: E402
from synth_platform.generation.table import generate_table  # noqa: E402
from synth_platform.profiling.encoding import apply_disclosure_control, encode_for_generation  # noqa: E402
from synth_platform.profiling.profile import profile_dataframe  # noqa: E402


def judge(training: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, profile) -> dict[str, float]:
    numeric, categorical = profile.by_kind("numeric", "datetime"), profile.by_kind("categorical")
    utility = metrics.train_synthetic_test_real(synthetic, training, holdout, "income", categorical, seed=0)
    return {
        "ks_mean": float(np.mean([metrics.ks_statistic(training[c], synthetic[c]) for c in numeric])),
        "tvd_mean": float(np.mean([metrics.total_variation_distance(training[c], synthetic[c]) for c in categorical])),
        "correlation_delta": metrics.correlation_delta(training, synthetic, numeric)["mean"],
        "detection_auc": metrics.detection_auc(training, synthetic, categorical, seed=0),
        "tstr_ratio": utility["train_synthetic_test_real"]["score"] / utility["train_real_test_real"]["score"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit-minutes", type=float, default=3.0)
    parser.add_argument("--rows", type=int, default=0, help="Adult rows to use (0: all 48,842)")
    parser.add_argument("--timesteps", default="1000,100")
    args = parser.parse_args()
    frame = pd.read_csv(REPO / "synth_platform" / "data" / "adult.csv.gz")
    if args.rows:
        frame = frame.sample(args.rows, random_state=0)
    frame = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    cut = int(len(frame) * 0.8)
    training, holdout = frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
    profile = profile_dataframe(training)
    encoded = encode_for_generation(training, profile)
    training_c, holdout_c = apply_disclosure_control(training, profile), apply_disclosure_control(holdout, profile)
    print(f"| timesteps | fit s | steps trained | KS mean | TVD mean | corr delta | detection AUC | TSTR ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for timesteps in (int(t) for t in args.timesteps.split(",")):
        params = {"num_timesteps": timesteps, "lr": 2e-3, "batch_size": 1024,
                  "n_iter": generators.epochs_for_steps("ddpm", 40_000, len(encoded), 1024)}
        with tempfile.TemporaryDirectory() as workspace:
            start = time.perf_counter()
            fitted = generators.fit_generator(encoded, "ddpm", params, seed=0, workspace=Path(workspace),
                                              time_limit_s=args.fit_minutes * 60)
            fit_s = time.perf_counter() - start
            table = generate_table(fitted, len(training), profile, seed=0)
        stop = fitted.budget_stop or {}
        epochs = int(stop.get("epochs") or params["n_iter"])
        steps = epochs * int(np.ceil(len(encoded) / 1024))
        scores = judge(training_c, holdout_c, apply_disclosure_control(table.frame, profile), profile)
        print(f"| {timesteps} | {fit_s:.0f} | {steps:,} | {scores['ks_mean']:.3f} | {scores['tvd_mean']:.3f} | "
              f"{scores['correlation_delta']:.3f} | {scores['detection_auc']:.3f} | {scores['tstr_ratio']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
