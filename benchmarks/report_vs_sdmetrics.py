"""Our privacy/utility report against SDMetrics' equivalent metrics, side by side on the same Adult tables.

    .venv/bin/python benchmarks/report_vs_sdmetrics.py            # full: SDMetrics' NewRowSynthesis alone takes ~15 min
    .venv/bin/python benchmarks/report_vs_sdmetrics.py --quick    # SDMetrics' exact-copy check on 2,000 rows, scaled

Tables: Adult shuffled with a fixed seed, 30,162 training rows, 15,000 holdout rows, and 30,000 "synthetic" rows
drawn column by column from the training marginals with 1% of them exact training copies (the timings do not
depend on which generator made the rows; the copies exercise the exact-match path).

The metrics both compute, on the same inputs:
- KS per numeric column (SDMetrics KSComplement), TVD per categorical column (TVComplement);
- Pearson correlation per numeric pair (CorrelationSimilarity);
- contingency similarity per categorical and mixed pair, numeric columns in 10 bins (ContingencySimilarity);
- exact copies of training rows (NewRowSynthesis, numerical_match_tolerance=0);
- DCR overfitting protection: the same 2,000 synthetic query rows against the same equal-size training sample and
  the whole holdout (DCROverfittingProtection, no subsampling: SDMetrics' `num_rows_subsample` would also shrink
  the reference sets, which hides memorisation).

It prints seconds per metric group for each side and the ratios, our whole report (which also computes detection
AUC, TSTR, NNDR, two membership attacks and bootstrap intervals) against SDMetrics' subset, and checks that the
values agree. Timings are wall-clock on whatever machine runs it; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import gzip
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity  # noqa: E402
from sdmetrics.single_column import KSComplement, TVComplement  # noqa: E402
from sdmetrics.single_table import DCROverfittingProtection, NewRowSynthesis  # noqa: E402

from synth_platform.evaluation import distances, metrics  # noqa: E402
from synth_platform.evaluation.report import build_report  # noqa: E402
from synth_platform.profiling.profile import profile_dataframe  # noqa: E402
from synth_platform.sampling.source import BUNDLED_DATASET  # noqa: E402

QUERY_ROWS = 2000


def adult_tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with gzip.open(BUNDLED_DATASET, "rt") as handle:
        adult = pd.read_csv(handle).sample(frac=1, random_state=seed).reset_index(drop=True)
    training, holdout = adult.iloc[:30162].reset_index(drop=True), adult.iloc[30162:45162].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    synthetic = pd.DataFrame({c: training[c].to_numpy()[rng.integers(0, len(training), 30000)] for c in training.columns})
    copies = rng.choice(len(synthetic), 300, replace=False)
    synthetic.iloc[copies] = training.iloc[rng.choice(len(training), 300, replace=False)].to_numpy()
    for column in training.columns:
        synthetic[column] = synthetic[column].astype(training[column].dtype)
    return training, holdout, synthetic


def timed(function):
    start = time.perf_counter()
    value = function()
    seconds = time.perf_counter() - start
    print(f"  ... {seconds:7.2f} s", flush=True)
    return value, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="SDMetrics' NewRowSynthesis on 2,000 synthetic rows, time scaled to 30,000")
    args = parser.parse_args()

    training, holdout, synthetic = adult_tables()
    numeric = [c for c in training.columns if training[c].dtype != object]
    categorical = [c for c in training.columns if training[c].dtype == object]
    metadata = {"columns": {**{c: {"sdtype": "numerical"} for c in numeric}, **{c: {"sdtype": "categorical"} for c in categorical}}}
    print(f"training {len(training)}, holdout {len(holdout)}, synthetic {len(synthetic)} rows; "
          f"{len(numeric)} numeric + {len(categorical)} categorical columns")

    rng = np.random.default_rng(0)
    query_index = rng.choice(len(synthetic), QUERY_ROWS, replace=False)
    equal_index = rng.choice(len(training), len(holdout), replace=False)
    profile = profile_dataframe(training)
    # Compile the distance kernel once (numba caches it on disk; a fresh clone pays this once, ~3 s).
    build_report(training.head(300), holdout.head(100), synthetic.head(300), profile, bootstrap_resamples=5, privacy_rows=50)

    ours, theirs, values = {}, {}, {}

    # Column shapes.
    (ours_ks, ours_tvd), ours["column shapes (KS, TVD)"] = timed(lambda: (
        [metrics.ks_statistic(training[c], synthetic[c]) for c in numeric],
        [metrics.total_variation_distance(training[c], synthetic[c]) for c in categorical]))
    (their_ks, their_tvd), theirs["column shapes (KS, TVD)"] = timed(lambda: (
        [1 - KSComplement.compute(training[c], synthetic[c]) for c in numeric],
        [1 - TVComplement.compute(training[c], synthetic[c]) for c in categorical]))
    values["KS mean"] = (np.mean(ours_ks), np.mean(their_ks))
    values["TVD mean (SDMetrics drops missing values)"] = (np.mean(ours_tvd), np.mean(their_tvd))

    # Numeric pairs.
    pairs = [(a, b) for i, a in enumerate(numeric) for b in numeric[i + 1:]]
    ours_corr, ours["correlation (numeric pairs)"] = timed(lambda: metrics.correlation_delta(training, synthetic, numeric)["mean"])
    their_corr, theirs["correlation (numeric pairs)"] = timed(lambda: np.mean([
        2 * (1 - CorrelationSimilarity.compute(training[[a, b]], synthetic[[a, b]], coefficient="Pearson")) for a, b in pairs]))
    values["correlation delta"] = (ours_corr, their_corr)

    # Categorical and mixed pairs.
    mixed = [(a, b) for i, a in enumerate(training.columns) for b in training.columns[i + 1:] if a in categorical or b in categorical]
    ours_assoc, ours["contingency (categorical & mixed pairs)"] = timed(
        lambda: metrics.association_delta(training, synthetic, numeric, categorical)["contingency_similarity_mean"])
    their_assoc, theirs["contingency (categorical & mixed pairs)"] = timed(lambda: np.mean([
        ContingencySimilarity.compute(training[[a, b]], synthetic[[a, b]],
                                      continuous_column_names=[c for c in (a, b) if c in numeric] or None)
        for a, b in mixed]))
    values["contingency similarity mean"] = (ours_assoc, their_assoc)

    # Exact copies.
    ours_copy, ours["exact copies"] = timed(lambda: metrics.exact_copy_rate(synthetic, training))
    copy_rows = 2000 if args.quick else len(synthetic)
    their_new, seconds = timed(lambda: NewRowSynthesis.compute(
        training, synthetic.iloc[:copy_rows], metadata, numerical_match_tolerance=0.0))
    theirs["exact copies"] = seconds * len(synthetic) / copy_rows
    values["exact-copy rate" + (" (SDMetrics on 2,000 rows)" if args.quick else "")] = (
        ours_copy if not args.quick else metrics.exact_copy_rate(synthetic.iloc[:copy_rows], training), 1 - their_new)

    # DCR overfitting protection: same query rows, same references, SDMetrics' distance.
    query, training_equal = synthetic.iloc[query_index], training.iloc[equal_index]

    def our_dcr_protection() -> float:
        space = distances.MixedSpace.fit(training, numeric, categorical)
        q = space.transform(query)
        to_training = distances.distance_to_closest_record(q, space.transform(training_equal), space.n_columns)
        to_holdout = distances.distance_to_closest_record(q, space.transform(holdout), space.n_columns)
        return metrics.dcr_overfitting_protection(to_training, to_holdout)

    ours_dcr, ours["DCR overfitting protection"] = timed(our_dcr_protection)
    their_dcr, theirs["DCR overfitting protection"] = timed(lambda: DCROverfittingProtection.compute(
        training_equal, query, holdout, metadata, None))
    values["DCR overfitting protection (ours: one scale, the training range)"] = (ours_dcr, their_dcr)

    def per_reference_scaling() -> float:  # SDMetrics' choice: each reference scaled by its own range
        def dcr(reference: pd.DataFrame) -> np.ndarray:
            space = distances.MixedSpace.fit(reference, numeric, categorical)
            return distances.distance_to_closest_record(space.transform(query), space.transform(reference), space.n_columns)
        return metrics.dcr_overfitting_protection(dcr(training_equal), dcr(holdout))

    values["DCR overfitting protection, ours scaled as SDMetrics does"] = (per_reference_scaling(), their_dcr)

    report, full_seconds = timed(lambda: build_report(training, holdout, synthetic, profile))

    print("\nvalues (ours vs SDMetrics):")
    for name, (a, b) in values.items():
        print(f"  {name:75s} {a:.6f}  {b:.6f}")
    print("\nseconds:                                      ours   SDMetrics   ratio")
    for name in ours:
        scaled = " (scaled from 2,000 rows)" if args.quick and name == "exact copies" else ""
        print(f"  {name:40s} {ours[name]:8.2f} {theirs[name]:10.2f} {theirs[name] / ours[name]:8.1f}x{scaled}")
    total_ours, total_theirs = sum(ours.values()), sum(theirs.values())
    print(f"  {'metrics both compute':40s} {total_ours:8.2f} {total_theirs:10.2f} {total_theirs / total_ours:8.1f}x")
    print(f"\nour whole report (all metrics, 95% intervals, {report['privacy_sample']['synthetic_query_rows']} query rows, "
          f"full references): {full_seconds:.2f} s; SDMetrics' subset / our whole report: {total_theirs / full_seconds:.1f}x")


if __name__ == "__main__":
    main()
