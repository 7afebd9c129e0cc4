"""Quality of TabDDPM samples with and without clipping the predicted clean sample x̂₀ (same fitted model).

synthcity's sampler never clips x̂₀; `synth_platform.generation.generators.clamp_ddpm_denoising_to_training_range`
clips it to the range of the encoded training data. This fits ddpm once on Adult rows, samples the same number of
rows with synthcity's plain sampler and with the clamp (same seed), and prints the report's utility metrics for
both against held-out real rows, and their ratio.

    .venv/bin/python benchmarks/ddpm_denoising_clamp.py [--rows 10000] [--steps 1500] [--samples 2000]

Measured on the 2-core development machine (10,000 rows, 1,500 steps, 2,000 samples, seed 0): KS mean 0.691 → 0.067,
TVD mean 0.459 → 0.091, correlation delta 0.278 → 0.041 (10.3×, 5.0×, 6.7×); fit 110 s, each sampling pass ~29 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd

from synth_platform.evaluation import metrics
from synth_platform.generation import generators
from synth_platform.profiling.profile import decode_from_generation, encode_for_generation, profile_dataframe
from synth_platform.sampling.source import BUNDLED_DATASET


def utility(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict:
    return {
        "ks_mean": float(np.mean([metrics.ks_statistic(real[c], synthetic[c]) for c in numeric])),
        "tvd_mean": float(np.mean([metrics.total_variation_distance(real[c], synthetic[c]) for c in categorical])),
        "correlation_delta": metrics.correlation_delta(real, synthetic, numeric)["mean"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="training rows")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps of the fit")
    parser.add_argument("--samples", type=int, default=2000, help="rows sampled by each sampler")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generators.configure_compute()

    adult = pd.read_csv(BUNDLED_DATASET).sample(args.rows + args.samples, random_state=args.seed).reset_index(drop=True)
    training, real = adult.iloc[: args.rows].reset_index(drop=True), adult.iloc[args.rows :].reset_index(drop=True)
    profile = profile_dataframe(training)
    numeric, categorical = profile.by_kind("numeric"), profile.by_kind("categorical")
    encoded = encode_for_generation(training, profile)
    n_iter = generators.epochs_for_steps("ddpm", args.steps, len(encoded), generators.PLUGIN_DEFAULTS["ddpm"]["batch_size"])

    with tempfile.TemporaryDirectory() as workspace:
        start = time.perf_counter()
        fitted = generators.fit_generator(encoded, "ddpm", {"n_iter": n_iter}, seed=args.seed, workspace=Path(workspace))
        print(f"fit: {args.rows} rows, {args.steps} steps ({n_iter} epochs) in {time.perf_counter() - start:.0f} s")
        results = {}
        diffusion = fitted.model.model.diffusion
        clamped_method = diffusion.gaussian_p_mean_variance
        for name, install in (("synthcity sampler", False), ("clamped x̂₀", True)):
            if install:
                diffusion.gaussian_p_mean_variance = clamped_method
            else:
                del diffusion.gaussian_p_mean_variance  # back to synthcity's own method
            start = time.perf_counter()
            synthetic = decode_from_generation(generators.sample(fitted, args.samples, seed=args.seed), profile)
            seconds = time.perf_counter() - start
            results[name] = utility(real, synthetic, numeric, categorical)
            print(f"{name:>18}: sampled {args.samples} rows in {seconds:.0f} s; "
                  + ", ".join(f"{k} {v:.3f}" for k, v in results[name].items()))

    plain, ours = results["synthcity sampler"], results["clamped x̂₀"]
    print("ratio synthcity / clamped (higher = clamp better): "
          + ", ".join(f"{k} {plain[k] / ours[k]:.1f}×" for k in plain if ours[k] > 0))


if __name__ == "__main__":
    main()
