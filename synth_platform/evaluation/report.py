"""The privacy/utility report: every metric of a synthetic table against its training part and holdout, plus the
verdict of each threshold. Pure logic: no Dagster here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Callable

import numpy as np
import pandas as pd

from synth_platform.evaluation import distances, metrics
from synth_platform.evaluation.distances import as_category, missing_token
from synth_platform.evaluation.reidentification import reidentification_risks
from synth_platform.evaluation.uncertainty import CONFIDENCE, bootstrap_interval, resample_indices, wilson_interval
from synth_platform.profiling.profile import SENTINEL, DatasetProfile, as_number
from synth_platform.profiling.values import datetime_seconds


# The thresholds live in a light module of their own (the Dagster definitions load it); re-exported here.
from synth_platform.evaluation.thresholds import (  # noqa: E402,F401
    FIDELITY_RULES, REPORT_RULES, RISK_ATTACKS, RULE_OF_METRIC, THRESHOLD_RULES, ThresholdRule, Thresholds,
    evaluate_threshold, judge, tstr_ratio,
)

RISK_METRICS = {  # report metric -> risk of `reidentification_section`
    "singling_out_risk": "singling_out_multivariate", "linkability_risk": "linkability", "inference_risk": "inference",
}
MIN_PRIVACY_ROWS = 20  # rows each real part needs for the distance metrics and the attacks to mean anything
# k of the k-nearest-neighbour densities behind the density-ratio attack. k = 1: with larger k a verbatim copy of a
# training row barely moves the k-th distance (on Adult copies, AUC 1.00 at k = 1 but 0.58 at k = 5), and a privacy
# attack must see copies; synthcity's KDE-based DOMIAS smooths them away the same way (≈ 0.54).
DENSITY_NEIGHBOURS = 1
HISTOGRAM_BINS = 30


def validate_report_inputs(training: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, profile: DatasetProfile,
                           *, target: str = "") -> list[str]:
    """The compared columns, or a ValueError naming exactly what does not fit (column, size or target)."""
    compared = profile.by_kind("numeric", "datetime", "categorical")
    if not compared:
        raise ValueError("The profile has no numeric, datetime or categorical column to compare.")
    if target and target not in compared:
        known = {column.name: column for column in profile.columns}
        why = (f"it is {known[target].kind} and treated as '{known[target].treatment}'" if target in known
               else "the table has no such column")
        raise ValueError(f"target_column {target!r} cannot be predicted in the report: {why}. Set target_column to one "
                         f"of the compared columns {compared}, or leave it empty for the default.")
    known = {column.name for column in profile.columns}
    for name, frame in (("training", training), ("holdout", holdout), ("synthetic", synthetic)):
        missing = [c for c in compared if c not in frame.columns]
        if missing:
            raise ValueError(f"The {name} table lacks column(s) {missing} of the profiled source; "
                             "it does not have the source's schema.")
    extra = [c for c in synthetic.columns if c not in known]
    if extra:
        raise ValueError(f"The synthetic table has column(s) {extra} that the profiled source does not have.")
    if len(synthetic) == 0:
        raise ValueError("The synthetic table has 0 rows; generate at least one row (num_rows) before reporting.")
    for name, frame in (("training", training), ("holdout", holdout), ("synthetic", synthetic)):
        if len(frame) < MIN_PRIVACY_ROWS:
            advice = "generate more rows (num_rows)" if name == "synthetic" else "sample more rows or change holdout_fraction"
            raise ValueError(f"The {name} table has {len(frame)} rows; the report needs at least {MIN_PRIVACY_ROWS} ({advice}).")
    for column in profile.by_kind("numeric"):
        values = synthetic[column]
        unreadable = values.notna() & pd.to_numeric(values, errors="coerce").isna()
        if unreadable.any():
            example = values[unreadable].iloc[0]
            raise ValueError(f"Synthetic column {column!r} is numeric in the source but holds {int(unreadable.sum())} "
                             f"non-numeric value(s), e.g. {example!r}.")
    return compared


def _aligned(frame: pd.DataFrame, profile: DatasetProfile, columns: list[str]) -> pd.DataFrame:
    """The compared columns, datetimes held as datetime64 whatever their form: Python dates / datetimes and ISO text
    become datetime64[s] (or [us] with sub-seconds; UTC instants), which hold any year, so sentinels such as
    9999-12-31 and 0001-01-01 stay the values they are instead of becoming missing."""
    out = frame[columns].reset_index(drop=True).copy()
    for column in profile.by_kind("datetime"):
        if column in out.columns and not pd.api.types.is_datetime64_any_dtype(out[column].dtype):
            out[column] = seconds_as_datetime64(datetime_seconds(out[column]))
    return out


def seconds_as_datetime64(seconds: np.ndarray) -> pd.Series:
    """Seconds since 1970 as datetime64[s], or datetime64[us] where a value has sub-seconds; NaN is NaT."""
    present = ~np.isnan(seconds)
    whole = bool(np.all(seconds[present] == np.floor(seconds[present])))
    unit, per_second = ("s", 1) if whole else ("us", 1_000_000)
    ticks = np.full(len(seconds), np.iinfo(np.int64).min, dtype=np.int64)  # NaT
    ticks[present] = np.round(seconds[present] * per_second).astype(np.int64)
    return pd.Series(ticks.view(f"datetime64[{unit}]"))


def sentinel_seconds(profile: DatasetProfile) -> dict[str, list[float]]:
    """Per numeric/datetime column the seconds of its sentinel values (the profile's special values; ±inf are states
    in every metric anyway): the metrics treat each as a state of its own, not as a far value."""
    return {column.name: [float(special["seconds"]) for special in column.special_values
                          if special["state"].startswith(SENTINEL) and special.get("seconds") is not None]
            for column in profile.columns if column.kind in ("numeric", "datetime")}


def copies_of_training(synthetic: pd.DataFrame, training: pd.DataFrame, profile: DatasetProfile) -> np.ndarray:
    """Per synthetic row: is it a verbatim training row, compared exactly as the report's exact-copy rate does
    (the profiled numeric, datetime and categorical columns; surrogate identifiers are never compared)."""
    compared = profile.by_kind("numeric", "datetime", "categorical")
    return metrics.training_copy_mask(_aligned(synthetic, profile, compared), _aligned(training, profile, compared))


def _histograms(samples: dict[str, np.ndarray]) -> dict:
    top = max(float(np.max(values)) for values in samples.values() if len(values))
    edges = np.linspace(0.0, top if top > 0 else 1.0, HISTOGRAM_BINS + 1)
    return {"edges": edges.round(6).tolist(),
            **{name: np.histogram(values, bins=edges)[0].tolist() for name, values in samples.items()}}


def build_report(
    training: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    profile: DatasetProfile,
    *,
    target: str = "",
    thresholds: Thresholds = Thresholds(),
    privacy_rows: int = 2000,
    bootstrap_resamples: int = 200,
    seed: int = 0,
    risk_attacks: int = RISK_ATTACKS,
    risk_secret: str = "",
) -> dict:
    """Compute every metric, the 95% intervals of the judged metrics (`verdict_intervals`: the four "all green" ones,
    detection AUC and the TSTR/TRTR ratio; the re-identification risks from their section), and every threshold
    verdict (`thresholds.judge`); returns a JSON-ready dict. The classifiers' predictions behind detection AUC and
    TSTR serve the intervals and are never put into the report.

    Sampling, stated in the report: distance metrics use up to `privacy_rows` query rows per side, but every
    reference set is used whole (all synthetic rows for the attacks, all training rows for NNDR, an equal-size
    training sample vs the whole holdout for the DCR share)."""
    numeric = profile.by_kind("numeric", "datetime")
    categorical = profile.by_kind("categorical")
    compared = validate_report_inputs(training, holdout, synthetic, profile, target=target)
    training = _aligned(training, profile, compared)
    holdout = _aligned(holdout, profile, compared)
    synthetic = _aligned(synthetic, profile, compared)
    rng = np.random.default_rng(seed)

    # KS compares the non-missing values; how often values are missing is compared beside it (for categorical
    # columns TVD already counts missing as a category), so a generator that drops or invents gaps shows.
    per_column = [
        {"column": c, "kind": profile.column(c).kind, "statistic": "ks", "value": metrics.ks_statistic(training[c], synthetic[c]),
         "missing_real": float(training[c].isna().mean()), "missing_synthetic": float(synthetic[c].isna().mean())}
        for c in numeric
    ] + [
        {"column": c, "kind": "categorical", "statistic": "tvd", "value": metrics.total_variation_distance(training[c], synthetic[c]),
         "missing_real": float(training[c].isna().mean()), "missing_synthetic": float(synthetic[c].isna().mean())}
        for c in categorical
    ]
    ks_values = [row["value"] for row in per_column if row["statistic"] == "ks"]
    tvd_values = [row["value"] for row in per_column if row["statistic"] == "tvd"]
    correlation = metrics.correlation_delta(training, synthetic, numeric)
    sentinels = sentinel_seconds(profile)
    association = metrics.association_delta(training, synthetic, numeric, categorical, special=sentinels)

    # Privacy: distances in SDMetrics' per-column space with the training part's ranges (one scale for every
    # distance, so distances to training and to holdout compare; SDMetrics scales by each reference's own range).
    space = distances.MixedSpace.fit(training, numeric, categorical, sentinels)
    n_columns = space.n_columns
    encoded_training = space.transform(training)
    encoded_holdout = space.transform(holdout)
    encoded_synthetic = space.transform(synthetic)

    # DCR share / overfitting protection: a synthetic query sample against equal-size training and holdout references.
    n_equal = min(len(training), len(holdout))
    training_equal = encoded_training.take(rng.choice(len(training), size=n_equal, replace=False))
    query = encoded_synthetic.take(rng.choice(len(synthetic), size=min(privacy_rows, len(synthetic)), replace=False))
    dcr_training = distances.distance_to_closest_record(query, training_equal, n_columns)
    dcr_holdout = distances.distance_to_closest_record(query, encoded_holdout, n_columns)

    # NNDR against the whole training part, of synthetic rows and (the baseline) of holdout rows.
    holdout_query = encoded_holdout.take(rng.choice(len(holdout), size=min(privacy_rows, len(holdout)), replace=False))
    nndr_synthetic = metrics.nearest_neighbour_distance_ratio(distances.k_nearest_distances(query, encoded_training, n_columns, k=2))
    nndr_holdout = metrics.nearest_neighbour_distance_ratio(distances.k_nearest_distances(holdout_query, encoded_training, n_columns, k=2))

    # Attacks: members from training, non-members from one half of the holdout; the other half is the density
    # reference of the density-ratio attack (real rows the generator never saw, disjoint from the non-members).
    holdout_order = rng.permutation(len(holdout))
    n_attack = min(privacy_rows, len(holdout) // 2)
    non_member_index, reference_index = holdout_order[:n_attack], holdout_order[n_attack:]
    members = encoded_training.take(rng.choice(len(training), size=n_attack, replace=False))
    non_members = encoded_holdout.take(non_member_index)
    density_reference = encoded_holdout.take(reference_index)
    k = min(DENSITY_NEIGHBOURS, len(synthetic), len(reference_index))
    member_to_synthetic = distances.k_nearest_distances(members, encoded_synthetic, n_columns, k=k)
    non_member_to_synthetic = distances.k_nearest_distances(non_members, encoded_synthetic, n_columns, k=k)
    member_to_reference = distances.k_nearest_distances(members, density_reference, n_columns, k=k)
    non_member_to_reference = distances.k_nearest_distances(non_members, density_reference, n_columns, k=k)
    member_dcr, non_member_dcr = member_to_synthetic[:, 0], non_member_to_synthetic[:, 0]

    target = target or _default_target(profile)
    utility, holdout_predictions = (
        metrics.train_synthetic_test_real_with_predictions(synthetic, training, holdout, target, categorical, seed=seed)
        if target else (None, None))
    detection = metrics.detection_predictions(training, synthetic, categorical, seed=seed)
    point = {
        "ks_mean": float(np.mean(ks_values)) if ks_values else None,
        "tvd_mean": float(np.mean(tvd_values)) if tvd_values else None,
        "correlation_delta": correlation["mean"],
        "association_delta": association["mean"] if association["pairs"] else None,
        "contingency_similarity_mean": association["contingency_similarity_mean"] if association["pairs"] else None,
        "detection_auc": metrics.detection_auc_of(*detection),
        "exact_copy_rate": metrics.exact_copy_rate(synthetic, training),
        "holdout_exact_copy_rate": metrics.exact_copy_rate(holdout, training),
        "dcr_synthetic_to_training_median": float(np.median(dcr_training)),
        "dcr_synthetic_to_holdout_median": float(np.median(dcr_holdout)),
        "dcr_share": metrics.dcr_share(dcr_training, dcr_holdout),
        "dcr_overfitting_protection": metrics.dcr_overfitting_protection(dcr_training, dcr_holdout),
        "nndr_synthetic_median": float(np.median(nndr_synthetic)),
        "nndr_holdout_median": float(np.median(nndr_holdout)),
        "membership_inference_auc": metrics.membership_inference_auc(member_dcr, non_member_dcr),
        "density_ratio_membership_auc": metrics.density_ratio_membership_auc(
            member_to_synthetic[:, -1], member_to_reference[:, -1], non_member_to_synthetic[:, -1], non_member_to_reference[:, -1]),
        "tstr_score": utility["train_synthetic_test_real"]["score"] if utility else None,
        "trtr_score": utility["train_real_test_real"]["score"] if utility else None,
    }
    point["tstr_ratio"] = tstr_ratio(point["tstr_score"], point["trtr_score"])
    reidentification = reidentification_section(
        training, holdout, synthetic, profile, secret=risk_secret or target, n_attacks=risk_attacks, seed=seed)
    for name, risk in RISK_METRICS.items():
        point[name] = reidentification["risks"][risk]["risk"] if reidentification else None
    # bootstrap_resamples 0 turns the intervals off (preflight says so; a bootstrap needs at least 2 resamples).
    intervals = verdict_intervals(
        training, synthetic, numeric, member_dcr, non_member_dcr, point, n_resamples=bootstrap_resamples, seed=seed,
        detection=detection, holdout_predictions=holdout_predictions,
    ) if bootstrap_resamples >= 2 else {}
    report = {
        "rows": {"training": len(training), "holdout": len(holdout), "synthetic": len(synthetic)},
        "metrics": point,
        "per_column": per_column,
        "correlation": correlation,
        "association": association,
        "train_synthetic_test_real": utility,
        "privacy_sample": {"synthetic_query_rows": len(query), "equal_size_reference_rows": n_equal,
                           "holdout_query_rows": len(holdout_query), "attack_rows_per_side": n_attack,
                           "density_reference_rows": len(reference_index), "density_neighbours": k},
        "distance_histograms": _histograms({
            "synthetic_to_training": dcr_training, "synthetic_to_holdout": dcr_holdout,
            "members_to_synthetic": member_dcr, "non_members_to_synthetic": non_member_dcr,
        }),
        "intervals": {**intervals, **({name: reidentification["risks"][risk]["risk_interval"]
                                        for name, risk in RISK_METRICS.items()} if reidentification else {})},
        "reidentification": reidentification,
        "interval_method": {
            "confidence": CONFIDENCE,
            "ks_mean": f"bias-corrected percentile bootstrap, {bootstrap_resamples} resamples of training and synthetic rows",
            "correlation_delta": f"bias-corrected percentile bootstrap, {bootstrap_resamples} resamples of training and synthetic rows",
            "membership_inference_auc": f"bias-corrected percentile bootstrap, {bootstrap_resamples} resamples of members and non-members",
            "exact_copy_rate": "Wilson score interval over the synthetic rows",
            "detection_auc": f"bias-corrected percentile bootstrap, {bootstrap_resamples} resamples of the real and of "
                             "the synthetic rows' out-of-fold detection probabilities (stratified by label), AUC "
                             "recomputed each time; the classifier is fitted once, so the interval covers the noise "
                             "of the evaluated sample, not the refit noise of the classifier",
            "tstr_ratio": f"bias-corrected percentile bootstrap, {bootstrap_resamples} paired resamples of the holdout "
                          "rows (the same rows score both models' predictions; both scores and their ratio "
                          "recomputed each time); the two models are fitted once, so the interval covers the noise "
                          "of the evaluation sample, not the refit noise of the models; absent where the ratio is "
                          "undefined (no score, or a TRTR score at or below 0 on the holdout or on a resample)",
        },
        "thresholds": asdict(thresholds),
    }
    # Verdicts of every rule; all_green: the blocking ones (the four, and the fidelity two when they block);
    # fidelity_green: detection AUC and TSTR ratio.
    return judge(report)


def reidentification_section(
    training: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, profile: DatasetProfile, *,
    secret: str, n_attacks: int, seed: int,
) -> dict | None:
    """The three risks of Giomi et al. (anonymeter): singling out, linkability between two halves of the
    quasi-identifiers, inference of `secret` from them; each against the holdout as control (people the generator
    never saw) and a random-guess baseline. The attacked training rows are a sample as large as the holdout, so
    main and control compare at equal sizes (anonymeter's extrapolation of singling-out counts to a smaller control
    overstated the risk by up to 0.09 on fresh rows). None when a side has fewer than MIN_PRIVACY_ROWS rows."""
    columns = profile.by_kind("numeric", "datetime", "categorical")
    if min(len(training), len(holdout), len(synthetic)) < MIN_PRIVACY_ROWS or len(columns) < 2 or n_attacks < 1:
        return None
    rng = np.random.default_rng(seed)
    original = training.iloc[rng.choice(len(training), size=min(len(training), len(holdout)), replace=False)]
    numeric = profile.by_kind("numeric", "datetime")

    # One missing token per column for all three tables, none of their values (a NULL is not the text '__missing__').
    tokens = {c: missing_token(original[c], synthetic[c], holdout[c], preferred=profile.column(c).missing_token)
              for c in columns if c not in numeric}

    def as_attack_table(frame: pd.DataFrame) -> pd.DataFrame:  # datetimes as seconds; categories as text
        return pd.DataFrame({
            c: (pd.Series(as_number(frame[c], profile.column(c).kind), index=frame.index) if c in numeric
                else as_category(frame[c], tokens[c])) for c in columns
        }).reset_index(drop=True)

    secret = secret if secret in columns else columns[-1]
    quasi = [c for c in profile.quasi_identifiers() if c in columns]
    risks = reidentification_risks(
        as_attack_table(original), as_attack_table(synthetic), as_attack_table(holdout),
        quasi_identifiers=quasi, secret=secret, n_attacks=min(n_attacks, len(holdout)), seed=seed,
        columns=columns, numeric_columns=numeric,
    )
    return {
        "method": "Giomi et al., PETS 2023 (anonymeter's definitions, implemented in synth_platform.evaluation."
                  "reidentification); risk = (main − control) / (1 − control), 95% intervals from Wilson rates",
        "original_rows": len(original), "control_rows": len(holdout), "synthetic_rows": len(synthetic),
        "quasi_identifiers": quasi, "secret": secret, "risks": risks,
    }


def verdict_intervals(
    training: pd.DataFrame,
    synthetic: pd.DataFrame,
    numeric: list[str],
    member_dcr: np.ndarray,
    non_member_dcr: np.ndarray,
    point: dict[str, float | None],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    detection: tuple[np.ndarray, np.ndarray] | None = None,
    holdout_predictions: metrics.HoldoutPredictions | None = None,
) -> dict[str, list[float]]:
    """95% intervals of the metrics the checks judge, each recomputed with the same function as its point value.

    The fidelity metrics' classifiers are not refitted per resample (far too slow): their predictions are kept and
    the evaluation rows resampled, so those two intervals cover the evaluation sample's noise, not the models'
    refit noise. `detection`: `metrics.detection_predictions` (labels, out-of-fold probabilities) for the detection
    AUC's interval; `holdout_predictions`: what `train_synthetic_test_real_with_predictions` scored, for the TSTR
    ratio's (absent where the ratio is undefined). Without them, no interval for those metrics."""
    intervals: dict[str, list[float]] = {}

    # Both statistics are recomputed from bootstrap row counts (rows drawn with replacement = a multinomial count
    # per row), which is what resampling the rows gives, without materialising the resampled frames.
    def row_counts(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.bincount(resample_indices(rng, n), minlength=n).astype(float)

    if numeric:
        columns = [metrics.WeightedKS(training[c], synthetic[c]) for c in numeric]

        def ks_mean(rng: np.random.Generator) -> float:
            r, s = row_counts(rng, len(training)), row_counts(rng, len(synthetic))
            return float(np.mean([column.statistic(r, s) for column in columns]))

        intervals["ks_mean"] = list(bootstrap_interval(
            ks_mean, point=point["ks_mean"], bounds=(0.0, 1.0), n_resamples=n_resamples, seed=seed))
    if len(numeric) >= 2:
        real_values = metrics.numeric_matrix(training, numeric)
        synthetic_values = metrics.numeric_matrix(synthetic, numeric)
        upper = np.triu_indices(len(numeric), k=1)

        def correlation_delta(rng: np.random.Generator) -> float:
            r, s = row_counts(rng, len(training)), row_counts(rng, len(synthetic))
            delta = metrics.weighted_correlation(real_values, r) - metrics.weighted_correlation(synthetic_values, s)
            return float(np.abs(delta[upper]).mean())

        intervals["correlation_delta"] = list(bootstrap_interval(
            correlation_delta, point=point["correlation_delta"], bounds=(0.0, 2.0), n_resamples=n_resamples, seed=seed))

    def membership_auc(rng: np.random.Generator) -> float:
        m, n = resample_indices(rng, len(member_dcr)), resample_indices(rng, len(non_member_dcr))
        return metrics.membership_inference_auc(member_dcr[m], non_member_dcr[n])

    intervals["membership_inference_auc"] = list(bootstrap_interval(
        membership_auc, point=point["membership_inference_auc"], bounds=(0.0, 1.0), n_resamples=n_resamples, seed=seed))
    copies = int(round(point["exact_copy_rate"] * len(synthetic)))
    intervals["exact_copy_rate"] = list(wilson_interval(copies, len(synthetic)))

    if detection is not None and point.get("detection_auc") is not None:
        labels, probabilities = detection
        intervals["detection_auc"] = list(bootstrap_interval(
            resampled_detection_auc(labels, probabilities), point=point["detection_auc"], bounds=(0.0, 1.0),
            n_resamples=n_resamples, seed=seed))
    if holdout_predictions is not None and point.get("tstr_ratio") is not None:
        ratio = tstr_ratio_interval(holdout_predictions, point=point["tstr_ratio"], n_resamples=n_resamples, seed=seed)
        if ratio is not None:
            intervals["tstr_ratio"] = ratio
    return intervals


def resampled_detection_auc(labels: np.ndarray, probabilities: np.ndarray) -> Callable[[np.random.Generator], float]:
    """The detection AUC of one bootstrap resample, for `bootstrap_interval`: the real rows' (label 0) and the
    synthetic rows' (label 1) out-of-fold probabilities resampled separately (real first, then synthetic, each with
    `resample_indices`), so every resample keeps both sides' sizes; the AUC by `metrics.rank_auc`, which equals
    scikit-learn's roc_auc_score (tested)."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=float)
    real, synthetic = probabilities[labels == 0], probabilities[labels == 1]

    def auc(rng: np.random.Generator) -> float:
        r, s = resample_indices(rng, len(real)), resample_indices(rng, len(synthetic))
        return metrics.rank_auc(synthetic[s], real[r])

    return auc


def resampled_tstr_ratio(predictions: metrics.HoldoutPredictions) -> Callable[[np.random.Generator], float]:
    """The TSTR/TRTR ratio of one bootstrap resample of the holdout rows, for `bootstrap_interval`: one resample
    (`resample_indices`) scores both models (paired), each by `metrics.holdout_score` (macro F1 through
    `metrics.macro_f1_of_codes`, equal to it), and `tstr_ratio` takes the ratio; NaN where it is undefined."""
    n = len(predictions.truth)
    if predictions.task == "classification":
        both = np.concatenate([predictions.truth, predictions.synthetic_trained, predictions.real_trained])
        codes, levels = pd.factorize(pd.Series(both, dtype=object).astype(str), sort=True)
        truth, on_synthetic, on_real = codes[:n], codes[n:2 * n], codes[2 * n:]

        def score(predicted: np.ndarray, rows: np.ndarray) -> float:
            return metrics.macro_f1_of_codes(truth[rows], predicted[rows], len(levels))
    else:
        truth = np.asarray(predictions.truth, dtype=float)
        on_synthetic = np.asarray(predictions.synthetic_trained, dtype=float)
        on_real = np.asarray(predictions.real_trained, dtype=float)

        def score(predicted: np.ndarray, rows: np.ndarray) -> float:
            return metrics.holdout_score("regression", truth[rows], predicted[rows])

    def ratio(rng: np.random.Generator) -> float:
        rows = resample_indices(rng, n)
        value = tstr_ratio(score(on_synthetic, rows), score(on_real, rows))
        return math.nan if value is None else value

    return ratio


def tstr_ratio_interval(
    predictions: metrics.HoldoutPredictions, *, point: float | None, n_resamples: int = 200, seed: int = 0,
) -> list[float] | None:
    """The 95% interval of the TSTR/TRTR ratio from paired resamples of the holdout rows (`resampled_tstr_ratio`);
    None where the ratio is undefined on the holdout (no score, TRTR at or below 0) or on any resample (the TRTR
    score's own spread reaches 0: the ratio has no bounded interval). Macro F1 is never negative: a classification
    interval starts at 0 at the lowest."""
    if point is None or predictions.synthetic_trained is None or predictions.real_trained is None or not len(predictions.truth):
        return None
    statistic = resampled_tstr_ratio(predictions)
    values: list[float] = []

    def recorded(rng: np.random.Generator) -> float:
        values.append(statistic(rng))
        return values[-1]

    bounds = (0.0, None) if predictions.task == "classification" else (None, None)
    try:
        interval = bootstrap_interval(recorded, point=point, bounds=bounds, n_resamples=n_resamples, seed=seed)
    except ValueError:  # not finite on any resample
        return None
    return list(interval) if np.all(np.isfinite(values)) else None


def _default_target(profile: DatasetProfile) -> str:
    """'income' on the bundled data; otherwise the last categorical column with 2 to `metrics.MAX_TARGET_CLASSES`
    categories, else the last numeric column that is not constant, else the last categorical or numeric column.
    (A column of thousands of categories is a poor target: its classes would be grouped, `train_synthetic_test_real`.)"""
    if "income" in profile.by_kind("categorical"):
        return "income"

    def cardinality(name: str) -> int | None:
        return profile.column(name).cardinality

    for name in reversed(profile.by_kind("categorical")):
        if cardinality(name) is None or 2 <= cardinality(name) <= metrics.MAX_TARGET_CLASSES:
            return name
    for name in reversed(profile.by_kind("numeric")):
        if cardinality(name) is None or cardinality(name) >= 2:
            return name
    candidates = profile.by_kind("categorical") or profile.by_kind("numeric")
    return candidates[-1] if candidates else ""


def worst_columns_text(report: dict, count: int = 5) -> str:
    """The columns whose marginals the synthetic table matches worst, with their statistic (names only, no value of
    the source): "`age` (ks 0.112), ..."; empty when the report has no per-column statistic."""
    worst = sorted(report["per_column"], key=lambda row: row["value"], reverse=True)[:count]
    return ", ".join(f"`{r['column']}` ({r['statistic']} {r['value']:.3f})" for r in worst)
