"""Utility and privacy metrics of a synthetic table, each named after the definition it implements.

Pure logic: no Dagster here. Definitions follow the anchors in shared/DESIGN.md §5:

- `ks_statistic`: two-sample Kolmogorov-Smirnov statistic D (SDMetrics KSComplement = 1 - D).
- `total_variation_distance`: ½ Σ |p - q| over categories, missing values a category of their own
  (SDMetrics TVComplement = 1 - TVD).
- `correlation_delta`: mean over numeric column pairs of |ρ_real - ρ_synthetic| (Pearson).
- `exact_copy_rate`: share of synthetic rows equal to some training row = 1 - SDMetrics NewRowSynthesis
  (exact match; SDMetrics' default numeric tolerance is not applied).
- `association_delta`: mean over categorical-categorical and categorical-numeric pairs of |V_real - V_synthetic|,
  bias-corrected Cramér's V (Bergsma 2013; uncorrected V grows as tables shrink, so a 3,000-row synthetic table
  against 30,000 real rows would show a delta from size alone) of the pair's contingency table, numeric
  columns cut into SDMetrics' 10 equal-width bins of the real column, missing values a category of their own.
- `contingency_similarity`: SDMetrics ContingencySimilarity, 1 - TVD of a pair's joint distribution (same bins).
- distances (`synth_platform.evaluation.distances`): SDMetrics' per-column DCR distance over the full reference set.
- `dcr_share`: P(d_training < d_holdout) + ½ P(tie) over synthetic rows, equal-size references (MOSTLY AI's share).
- `dcr_overfitting_protection`: SDMetrics DCROverfittingProtection, min(2 (1 - P[d_training < d_holdout]), 1)
  (strict inequality: ties count as closer to the holdout, as in SDMetrics).
- `nearest_neighbour_distance_ratio`: d_1 / d_2, the distances of a row to its closest and second-closest training
  rows (1 where both are 0); a low ratio marks a row that sits on one training record rather than among several.
- `membership_inference_auc`: distance attack; training rows are members, holdout rows non-members, each scored by
  minus its distance to the closest synthetic record; ROC AUC (0.5 = no leakage).
- `density_ratio_membership_auc`: a DOMIAS-style attack (van Breugel et al., 2023) with k-nearest-neighbour
  density estimates: a record scores high where the synthetic density is high relative to the density of real
  records the generator never saw (a reference part of the holdout).
- `train_synthetic_test_real`: a gradient-boosting model trained on synthetic rows and on the training rows, both
  scored on the holdout.

The gradient-boosting models (`train_synthetic_test_real`, `detection_auc`) take categorical columns natively, and
scikit-learn's HistGradientBoosting accepts at most `MAX_CATEGORY_LEVELS` (255) categories per column: a column
with more keeps its 254 most frequent categories and groups the rest into one `OTHER_LEVEL` category
(`category_levels`), the same grouping for the real and the synthetic rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from synth_platform.evaluation.distances import (
    MISSING, REGULAR_STATE, as_category as _as_category, holds_datetimes, missing_token, numbers,
    numeric_frame as _numeric_frame, value_states,
)

# scikit-learn's HistGradientBoosting bins a categorical feature into at most max_bins = 255 bins, one per category
# (missing values never reach it here: they are a category of their own), and refuses a column with more.
MAX_CATEGORY_LEVELS = 255
OTHER_LEVEL = "(other)"  # the categories beyond the most frequent ones, grouped (as the profile's rare-value coding)
# A classification target with more classes than this is predicted as its most frequent classes plus OTHER_LEVEL:
# a gradient-boosting classifier grows one tree per class per iteration, so thousands of classes take hours.
MAX_TARGET_CLASSES = 20


def ks_statistic(real: pd.Series, synthetic: pd.Series) -> float:
    """Kolmogorov-Smirnov D between the non-missing values of two numeric (or datetime) columns: the largest gap
    between the two empirical CDFs (the statistic of scipy's `ks_2samp`, without its p-value).

    Non-finite and huge values: D depends on the order of the values only, so -inf is simply the smallest value,
    +inf the largest, 1e300 and sentinel dates (9999-12-31) large ones: a synthetic column with the real share of
    +inf scores as well as the real one, one that lost them is off by that share (tested by hand)."""
    a, b = numbers(real).dropna().to_numpy(), numbers(synthetic).dropna().to_numpy()
    if len(a) == 0 or len(b) == 0:
        return float(len(a) != len(b))
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    gap = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(gap)))


class WeightedKS:
    """`ks_statistic` of one column pair under row weights, for the bootstrap.

    A bootstrap resample of n rows is a vector of row counts (how often each row was drawn); with the rows'
    positions among the distinct values precomputed, the resampled CDFs are weighted counts over those values, so
    each resample costs a `bincount` instead of a sort. With integer weights the result equals `ks_statistic` on the
    resampled rows exactly (tested)."""

    def __init__(self, real: pd.Series, synthetic: pd.Series):
        a, b = numbers(real).to_numpy(), numbers(synthetic).to_numpy()
        grid = np.unique(np.concatenate([a[~np.isnan(a)], b[~np.isnan(b)]]))
        self.cells = len(grid) + 1  # the last cell holds missing values
        self.real_cells = np.where(np.isnan(a), len(grid), np.searchsorted(grid, a))
        self.synthetic_cells = np.where(np.isnan(b), len(grid), np.searchsorted(grid, b))

    def statistic(self, real_weights: np.ndarray, synthetic_weights: np.ndarray) -> float:
        real = np.bincount(self.real_cells, weights=real_weights, minlength=self.cells)[:-1]
        synthetic = np.bincount(self.synthetic_cells, weights=synthetic_weights, minlength=self.cells)[:-1]
        n_a, n_b = real.sum(), synthetic.sum()
        if n_a == 0 or n_b == 0:
            return float(n_a != n_b)
        return float(np.max(np.abs(np.cumsum(real) / n_a - np.cumsum(synthetic) / n_b)))


def weighted_correlation(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix of the columns of `values` with row weights (pairwise-complete where values are
    missing); a constant column correlates 0 with everything. With bootstrap row counts as weights this equals the
    correlation of the resampled rows."""
    p = values.shape[1]
    if not np.isnan(values).any():
        mean = weights @ values / weights.sum()
        centred = values - mean
        covariance = centred.T @ (centred * weights[:, None])
        scale = np.sqrt(np.diag(covariance))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(covariance / np.outer(scale, scale))
    # Pairwise-complete, every pair at once: sums over the rows where both columns have a value, as matrix products
    # of the value and presence matrices (a loop over pairs took minutes per bootstrap on 50-column tables). Each
    # column is centred on its own weighted mean first, so the moments subtract numbers of the data's spread, not
    # of its offset (datetimes are ~1e9 seconds).
    present = ~np.isnan(values)
    mask = present.astype(float)
    weighted_mask = mask * weights[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.nan_to_num(np.nansum(values * weights[:, None], axis=0) / weighted_mask.sum(axis=0))
    x = np.where(present, values - centre, 0.0)
    wx = x * weights[:, None]
    n = weighted_mask.T @ mask  # [i, j]: weight of the rows with both values
    sum_x = wx.T @ mask  # [i, j]: Σ w x_i over those rows
    sum_xx = (wx * x).T @ mask  # [i, j]: Σ w x_i² over those rows
    sum_xy = wx.T @ x  # [i, j]: Σ w x_i x_j (rows missing either add 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_i, mean_j = sum_x / n, sum_x.T / n
        covariance = sum_xy / n - mean_i * mean_j
        # A column constant over a pair's rows has variance 0, which the subtraction leaves as rounding noise of a
        # few ε · mean(x²): below 1e-10 · mean(x²) the variance is 0, and so is the correlation.
        square_i, square_j = sum_xx / n, sum_xx.T / n
        variance_i = square_i - mean_i ** 2
        variance_i = np.where(variance_i > 1e-10 * square_i, variance_i, 0.0)
        variance_j = square_j - mean_j ** 2
        variance_j = np.where(variance_j > 1e-10 * square_j, variance_j, 0.0)
        out = np.nan_to_num(covariance / np.sqrt(variance_i * variance_j), nan=0.0, posinf=0.0, neginf=0.0)
    np.fill_diagonal(out, 1.0)
    return np.clip(out, -1.0, 1.0)


def total_variation_distance(real: pd.Series, synthetic: pd.Series) -> float:
    """½ Σ |p - q| over the union of categories; a missing value is a category of its own (never merged with a
    text value, '__missing__' included: `missing_token`)."""
    token = missing_token(real, synthetic)
    p = _as_category(real, token).value_counts(normalize=True)
    q = _as_category(synthetic, token).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return float(0.5 * np.abs(p - q).sum())


def correlation_delta(real: pd.DataFrame, synthetic: pd.DataFrame, numeric_columns: list[str]) -> dict:
    """Mean |ρ_real - ρ_synthetic| of Pearson correlations over numeric column pairs, and the worst pair.

    Non-finite and huge values: ρ is the correlation of the finite part, pairwise-complete (a row counts for a pair
    where both values are finite; ±inf is left out like a missing value, as Pearson has no meaning for it), and
    `finite_share_real` / `finite_share_synthetic` state the share of rows finite in every column. Each column is
    divided by its largest finite |value| before ρ is computed (ρ does not change under scaling), so values as large
    as 1e300 are correlated, not overflowed to inf. Whether the tables hold ±inf as often is for the marginals
    (`ks_statistic`) to say."""
    if len(numeric_columns) < 2:
        return {"mean": 0.0, "pairs": 0, "worst_pair": None, "worst": 0.0, "columns": list(numeric_columns),
                "real_matrix": [], "synthetic_matrix": [], "finite_share_real": 1.0, "finite_share_synthetic": 1.0}
    real_values, synthetic_values = numeric_matrix(real, numeric_columns), numeric_matrix(synthetic, numeric_columns)
    real_corr = pd.DataFrame(real_values).corr().to_numpy()
    synthetic_corr = pd.DataFrame(synthetic_values).corr().to_numpy()
    upper = np.triu_indices(len(numeric_columns), k=1)
    # A constant column has no correlation; treat it as 0 on that side rather than dropping the pair.
    deltas = np.abs(np.nan_to_num(real_corr[upper]) - np.nan_to_num(synthetic_corr[upper]))
    worst = int(np.argmax(deltas))
    return {
        "mean": float(deltas.mean()),
        "pairs": int(len(deltas)),
        "worst_pair": [numeric_columns[upper[0][worst]], numeric_columns[upper[1][worst]]],
        "worst": float(deltas[worst]),
        "columns": list(numeric_columns),
        "real_matrix": np.nan_to_num(real_corr).round(6).tolist(),
        "synthetic_matrix": np.nan_to_num(synthetic_corr).round(6).tolist(),
        "finite_share_real": _finite_share(real_values),
        "finite_share_synthetic": _finite_share(synthetic_values),
    }


def _finite_share(values: np.ndarray) -> float:
    return float(np.isfinite(values).all(axis=1).mean()) if len(values) else 1.0


def exact_copy_rate(synthetic: pd.DataFrame, training: pd.DataFrame) -> float:
    """Share of synthetic rows identical (all columns, missing equal to missing) to at least one training row.

    Exact comparison of whole rows: numbers compare as numbers (1 == 1.0, inf == inf), datetimes as instants (Python
    dates and sentinels such as 9999-12-31 included), anything else as text, missing equal to missing but never to
    a text (a NULL is not the text '__missing__'); rows are grouped in one pass, no hashing shortcuts."""
    if len(synthetic) == 0:
        return 0.0
    return float(training_copy_mask(synthetic, training).mean())


def training_copy_mask(synthetic: pd.DataFrame, training: pd.DataFrame) -> np.ndarray:
    """Per synthetic row: does it equal (by `exact_copy_rate`'s comparison) at least one training row?"""
    if len(synthetic) == 0:
        return np.zeros(0, dtype=bool)
    columns = list(training.columns)
    rows = _comparable(training[columns], synthetic[columns])
    group = rows.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
    in_training = np.zeros(group.max() + 1, dtype=bool)
    in_training[group[: len(training)]] = True
    return in_training[group[len(training):]]


def _comparable(training: pd.DataFrame, synthetic: pd.DataFrame) -> pd.DataFrame:
    """Training rows then synthetic rows, each column in one comparable type on both sides."""
    out = {}
    for column in training.columns:
        both = pd.concat([training[column], synthetic[column]], ignore_index=True)
        numeric = pd.api.types.is_numeric_dtype(both.dtype) and not pd.api.types.is_bool_dtype(both.dtype)
        if numeric or pd.api.types.is_datetime64_any_dtype(both.dtype) or (both.dtype == object and holds_datetimes(both)):
            out[column] = numbers(both)
            continue
        distinct = both.dropna().unique()  # few values: parse those, not every row
        parsed = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce") if both.dtype == object else None
        if parsed is not None and len(distinct) and parsed.notna().all():
            out[column] = both.map(dict(zip(distinct, parsed.astype(float)))).astype(float)
        else:
            out[column] = _as_category(both)  # one token for both sides, none of the values
    return pd.DataFrame(out)


def membership_inference_auc(member_dcr: np.ndarray, non_member_dcr: np.ndarray) -> float:
    """ROC AUC of a distance attack: the closer a real record is to the synthetic set, the likelier a member."""
    return rank_auc(-member_dcr, -non_member_dcr)


def rank_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """ROC AUC = P(positive score > negative score) + ½ P(tie), from the Mann-Whitney rank sum (average ranks for
    ties); equals scikit-learn's `roc_auc_score` (tested) at a fraction of its cost, which the bootstrap needs."""
    n_pos, n_neg = len(positive_scores), len(negative_scores)
    if n_pos == 0 or n_neg == 0:
        raise ValueError("An AUC needs at least one member and one non-member score.")
    ranks = stats.rankdata(np.r_[positive_scores, negative_scores])
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def dcr_share(dcr_training: np.ndarray, dcr_holdout: np.ndarray) -> float:
    """P(closer to training than to holdout) + ½ P(tie), for equal-size training and holdout references; ≈ 0.5 is ideal."""
    return float(np.mean(dcr_training < dcr_holdout) + 0.5 * np.mean(dcr_training == dcr_holdout))


def dcr_overfitting_protection(dcr_training: np.ndarray, dcr_holdout: np.ndarray) -> float:
    """SDMetrics DCROverfittingProtection: min(2 (1 - P[d_training < d_holdout]), 1); 1 = no more synthetic rows
    closer to the training part than to the holdout than chance gives (equal-size references)."""
    closer_to_training = float(np.mean(dcr_training < dcr_holdout))
    return min(2.0 * (1.0 - closer_to_training), 1.0)


def nearest_neighbour_distance_ratio(two_nearest: np.ndarray) -> np.ndarray:
    """Per row d_1 / d_2 from its two nearest distances (columns of `k_nearest_distances(..., k=2)`); 1 where both are
    0 (the row equals two records, it singles none out)."""
    first, second = two_nearest[:, 0], two_nearest[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(second > 0, first / np.where(second > 0, second, 1.0), 1.0)


def density_ratio_membership_auc(
    member_synthetic_kth: np.ndarray, member_reference_kth: np.ndarray,
    non_member_synthetic_kth: np.ndarray, non_member_reference_kth: np.ndarray,
) -> float:
    """ROC AUC of a DOMIAS-style density-ratio attack from k-th nearest-neighbour distances.

    A k-NN density estimate is p(x) ∝ k / (n r_k(x)^d), so the DOMIAS score p_synthetic(x) / p_reference(x) is a
    monotone function of log r_k,reference(x) - log r_k,synthetic(x), and the AUC needs no more than that (the
    constants and the dimension d do not change the ranking). Distances are floored at 1e-12 so that with k = 1
    (the report's choice) a verbatim copy (r_synthetic = 0) ranks highest rather than producing infinities; with
    larger k a copy only shifts the k-th distance and the attack loses sight of it.
    """
    def score(synthetic_kth: np.ndarray, reference_kth: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(reference_kth, 1e-12)) - np.log(np.maximum(synthetic_kth, 1e-12))

    labels = np.r_[np.ones(len(member_synthetic_kth)), np.zeros(len(non_member_synthetic_kth))]
    scores = np.r_[score(member_synthetic_kth, member_reference_kth), score(non_member_synthetic_kth, non_member_reference_kth)]
    return float(roc_auc_score(labels, scores))


def pair_codes(real: pd.Series, synthetic: pd.Series, is_numeric: bool, bins: int = 10,
               special: list[float] | tuple = ()) -> tuple[np.ndarray, np.ndarray]:
    """One column of a pair as integer codes shared by both sides: categories (missing its own, never merged with a
    text), or for a numeric column SDMetrics' `discretize_column` bins: `bins` equal-width bins of the real values,
    outer edges open, missing values a bin of their own.

    Non-finite values are states of their own, as missing is: +inf and -inf each get a code of their own, and so
    does each of `special` (values, e.g. the seconds of sentinel dates such as 9999-12-31, compared to the whole
    second); the bins span the regular (finite, non-special) real values only, so one +inf or 9999-12-31 does not
    squeeze every other value into one bin. Codes: 1..bins the bins, bins + 1 missing, bins + 2 +inf,
    bins + 3 -inf, bins + 4 + i the i-th special value. Huge finite values (1e300) are regular; the edges are
    computed without overflow."""
    if is_numeric:
        real_values, synthetic_values = numbers(real).to_numpy(), numbers(synthetic).to_numpy()
        real_states, synthetic_states = value_states(real_values, special), value_states(synthetic_values, special)
        present = real_values[real_states == REGULAR_STATE]
        low, high = (float(present.min()), float(present.max())) if len(present) else (0.0, 0.0)
        if low == high:
            low, high = low - 0.5, high + 0.5
        if np.isfinite(high - low):  # numpy's histogram edges, as SDMetrics
            edges = np.linspace(low, high, bins + 1)
        else:  # halved: high - low overflows near ±1.8e308
            steps = np.linspace(0.0, 1.0, bins + 1)
            edges = (low / 2 * (1 - steps) + high / 2 * steps) * 2
        edges[0], edges[-1] = -np.inf, np.inf

        def codes(values: np.ndarray, states: np.ndarray) -> np.ndarray:
            binned = np.digitize(np.where(states == REGULAR_STATE, values, 0.0), edges)
            return np.where(states == REGULAR_STATE, binned, bins + states).astype(np.int64)

        return codes(real_values, real_states), codes(synthetic_values, synthetic_states)
    token = missing_token(real, synthetic)
    real_labels, synthetic_labels = _as_category(real, token), _as_category(synthetic, token)
    codes = {value: code for code, value in enumerate(pd.unique(pd.concat([real_labels, synthetic_labels])))}
    return real_labels.map(codes).to_numpy(dtype=np.int64), synthetic_labels.map(codes).to_numpy(dtype=np.int64)


def _contingency(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.bincount(a * shape[1] + b, minlength=shape[0] * shape[1]).reshape(shape).astype(float)


def cramers_v(table: np.ndarray, bias_corrected: bool = False) -> float:
    """Cramér's V of a contingency table, sqrt(χ² / (n (min(r, c) - 1))), over the rows and columns that occur (0
    when fewer than two of either occur). With `bias_corrected`, Bergsma's (2013) correction, which removes the
    upward bias of small samples with many categories so tables of different sizes compare."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    n = table.sum()
    if n == 0 or min(table.shape) < 2:
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    rows, columns = table.shape
    if not bias_corrected:
        return float(np.sqrt(chi2 / (n * (min(rows, columns) - 1))))
    if n < 2:
        return 0.0
    phi2 = max(0.0, chi2 / n - (rows - 1) * (columns - 1) / (n - 1))
    rows_corrected = rows - (rows - 1) ** 2 / (n - 1)
    columns_corrected = columns - (columns - 1) ** 2 / (n - 1)
    denominator = min(rows_corrected - 1, columns_corrected - 1)
    return float(np.sqrt(phi2 / denominator)) if denominator > 0 else 0.0


def association_delta(
    real: pd.DataFrame, synthetic: pd.DataFrame, numeric_columns: list[str], categorical_columns: list[str], bins: int = 10,
    special: dict[str, list[float]] | None = None,
) -> dict:
    """Cramér's V delta and contingency similarity over every pair with at least one categorical column.

    Numeric columns are cut by `pair_codes`: ±inf and the column's `special` values (sentinel dates, in seconds)
    are categories of their own beside the bins of the regular values.

    Returns the mean |ΔV| (`mean`), the worst pair, and the mean SDMetrics ContingencySimilarity
    (`contingency_similarity_mean`, 1 - TVD of the pair's joint distribution)."""
    columns = [(c, True) for c in numeric_columns] + [(c, False) for c in categorical_columns]
    codes = {c: pair_codes(real[c], synthetic[c], is_numeric, bins, (special or {}).get(c, ()))
             for c, is_numeric in columns}
    pairs = []
    for i, (a, a_numeric) in enumerate(columns):
        for b, b_numeric in columns[i + 1:]:
            if a_numeric and b_numeric:
                continue
            (ra, sa), (rb, sb) = codes[a], codes[b]
            shape = (int(max(ra.max(initial=0), sa.max(initial=0))) + 1, int(max(rb.max(initial=0), sb.max(initial=0))) + 1)
            real_table, synthetic_table = _contingency(ra, rb, shape), _contingency(sa, sb, shape)
            v_real, v_synthetic = cramers_v(real_table, bias_corrected=True), cramers_v(synthetic_table, bias_corrected=True)
            tvd = 0.5 * np.abs(real_table / max(real_table.sum(), 1) - synthetic_table / max(synthetic_table.sum(), 1)).sum()
            pairs.append({"pair": [a, b], "cramers_v_real": v_real, "cramers_v_synthetic": v_synthetic,
                          "delta": abs(v_real - v_synthetic), "contingency_similarity": float(1.0 - tvd)})
    if not pairs:
        return {"mean": 0.0, "pairs": 0, "worst_pair": None, "worst": 0.0, "contingency_similarity_mean": 1.0, "by_pair": []}
    worst = max(pairs, key=lambda p: p["delta"])
    return {
        "mean": float(np.mean([p["delta"] for p in pairs])),
        "pairs": len(pairs),
        "worst_pair": worst["pair"],
        "worst": float(worst["delta"]),
        "contingency_similarity_mean": float(np.mean([p["contingency_similarity"] for p in pairs])),
        "by_pair": pairs,
    }


@dataclass(frozen=True)
class HoldoutPredictions:
    """What `train_synthetic_test_real` scored, kept for the bootstrap of the TSTR/TRTR ratio (never for the
    report's JSON: predictions of a target column can be source values). `truth`: the holdout rows' target (the
    rows scored, in order); `synthetic_trained` / `real_trained`: each model's predictions of those rows, None where
    its score is None. Classification labels are text, regression values floats."""

    task: str  # "classification" or "regression"
    truth: np.ndarray
    synthetic_trained: np.ndarray | None
    real_trained: np.ndarray | None


def holdout_score(task: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """The score of `train_synthetic_test_real`: macro F1 (classification, zero_division 0) or R² (regression)."""
    if task == "classification":
        return float(f1_score(truth, predicted, average="macro", zero_division=0.0))
    return float(r2_score(truth, predicted))


def macro_f1_of_codes(truth: np.ndarray, predicted: np.ndarray, n_labels: int) -> float:
    """`holdout_score`'s macro F1 on integer-coded labels (0 .. n_labels - 1), from one confusion matrix: the mean
    over the labels present in the truth or the predictions of 2 TP / (2 TP + FP + FN), as scikit-learn's f1_score
    with average="macro", zero_division=0 (tested). The bootstrap needs it: scikit-learn takes ~6 ms a call."""
    confusion = np.bincount(truth * n_labels + predicted, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    true_count, predicted_count = confusion.sum(axis=1), confusion.sum(axis=0)
    present = true_count + predicted_count > 0
    return float(np.mean(2.0 * np.diag(confusion)[present] / (true_count + predicted_count)[present]))


def train_synthetic_test_real(
    synthetic: pd.DataFrame, training: pd.DataFrame, holdout: pd.DataFrame, target: str, categorical_columns: list[str], seed: int = 0
) -> dict:
    """Train one gradient-boosting model on synthetic rows and one on training rows; score both on the holdout
    (`train_synthetic_test_real_with_predictions`, without the predictions)."""
    return train_synthetic_test_real_with_predictions(synthetic, training, holdout, target, categorical_columns, seed)[0]


def train_synthetic_test_real_with_predictions(
    synthetic: pd.DataFrame, training: pd.DataFrame, holdout: pd.DataFrame, target: str, categorical_columns: list[str], seed: int = 0
) -> tuple[dict, HoldoutPredictions]:
    """Train one gradient-boosting model on synthetic rows and one on training rows; score both on the holdout.
    Returns the JSON-ready result and, apart from it, the holdout predictions (`HoldoutPredictions`).

    Both models see the same encoding, fixed by the real rows (training and holdout): categorical features grouped
    to at most `MAX_CATEGORY_LEVELS` categories, a classification target to at most `MAX_TARGET_CLASSES` classes
    (`category_levels`; `target_classes_grouped` says how many were grouped). Rows whose target is missing are left
    out. Training rows of a single class give a model that predicts that class for every row, scored as any other
    (a synthetic table that lost a class scores what predicting one class scores). A score is None, with a note,
    when it is not defined: no target value to learn from or to score on, or no feature column."""
    is_classification = target in categorical_columns
    features = [c for c in training.columns if c != target]
    cat_features = [c for c in features if c in categorical_columns]
    real = pd.concat([training, holdout], ignore_index=True)
    categories = {c: category_levels(real[c]) for c in cat_features}
    classes, grouped_classes = [], 0
    if is_classification:
        present = _as_category(real[target].dropna())
        classes = category_levels(present, MAX_TARGET_CLASSES)
        if present.nunique() > MAX_TARGET_CLASSES:
            grouped_classes = int(present.nunique() - (MAX_TARGET_CLASSES - 1))

    def labels(frame: pd.DataFrame) -> pd.Series:
        if is_classification:
            return _grouped(_as_category(frame[target], MISSING), classes)
        values = numbers(frame[target])
        return values.where(np.isfinite(values))

    def design(frame: pd.DataFrame) -> pd.DataFrame:
        return _design_matrix(frame, features, categories)

    y_true = labels(holdout)
    scored = y_true.notna().to_numpy()
    if is_classification:  # a missing target is not a class to predict
        scored &= holdout[target].notna().to_numpy()

    def fit_and_score(train: pd.DataFrame) -> tuple[dict, np.ndarray | None]:
        y_train = labels(train)
        keep = y_train.notna().to_numpy()
        if is_classification:
            keep &= train[target].notna().to_numpy()
        if not features:
            return {"score": None, "note": f"no column besides the target {target!r} to predict it from"}, None
        if not keep.any():
            return {"score": None, "note": f"no row with a value of the target {target!r} to train on"}, None
        if not scored.any():
            return {"score": None, "note": f"no holdout row with a value of the target {target!r} to score on"}, None
        note = None
        if is_classification and y_train[keep].nunique() < 2:
            only = y_train[keep].iloc[0]
            predicted = np.full(int(scored.sum()), only, dtype=object)
            note = f"only one class ({only!r}) in these rows: the model predicts it for every row"
        else:
            model_cls = HistGradientBoostingClassifier if is_classification else HistGradientBoostingRegressor
            model = model_cls(categorical_features="from_dtype", random_state=seed, max_iter=200)
            x_train, x_holdout = _without_empty_columns(design(train)[keep], design(holdout)[scored])
            model.fit(x_train, y_train[keep])
            predicted = model.predict(x_holdout)
        truth = y_true[scored]
        if is_classification:
            result = {
                "accuracy": float(accuracy_score(truth, predicted)),
                "macro_f1": holdout_score(task, truth, predicted),
            }
            result["score"] = result["macro_f1"]
        else:
            result = {"r2": holdout_score(task, truth, predicted)}
            result["score"] = result["r2"]
        return ({**result, "note": note} if note else result), np.asarray(predicted)

    task = "classification" if is_classification else "regression"
    on_synthetic, synthetic_predicted = fit_and_score(synthetic)
    on_real, real_predicted = fit_and_score(training)
    predictions = HoldoutPredictions(task=task, truth=y_true[scored].to_numpy(),
                                     synthetic_trained=synthetic_predicted, real_trained=real_predicted)
    return {
        "target": target,
        "task": task,
        "score_name": "macro_f1" if is_classification else "r2",
        "train_synthetic_test_real": on_synthetic,
        "train_real_test_real": on_real,
        "ratio": float(on_synthetic["score"] / on_real["score"])
        if on_synthetic["score"] is not None and on_real["score"] else None,
        "target_classes_grouped": grouped_classes,
    }, predictions


def detection_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, categorical_columns: list[str], *, max_rows: int = 5000, folds: int = 5, seed: int = 0
) -> float:
    """Cross-validated ROC AUC of a classifier telling real rows from synthetic rows (0.5: indistinguishable, 1: every
    synthetic row is recognisable): `detection_auc_of` the out-of-fold `detection_predictions`. The raw
    out-of-fold AUC, not floored at 0.5 as SDMetrics' detection metrics are: far below 0.5 means synthetic rows
    copy real ones (each row's twin with the other label sits in the training folds), which a floor would hide.
    synthcity's detection scores fit XGBoost/MLP/GMM detectors instead. A utility diagnostic, not a privacy
    measure (see `membership_inference_auc`)."""
    return detection_auc_of(*detection_predictions(real, synthetic, categorical_columns, max_rows=max_rows, folds=folds, seed=seed))


def detection_auc_of(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC of `detection_predictions` (label 1, synthetic, the positive class)."""
    return float(roc_auc_score(labels, probabilities))


def detection_predictions(
    real: pd.DataFrame, synthetic: pd.DataFrame, categorical_columns: list[str], *, max_rows: int = 5000, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The labels (0 real, 1 synthetic) and out-of-fold probabilities of "synthetic" behind `detection_auc`: equal
    numbers of rows from each side (at most `max_rows`; the real rows first), gradient boosting with native
    categoricals (missing as a category; beyond `MAX_CATEGORY_LEVELS` categories the rarest grouped, by their
    frequency in the pooled rows: `category_levels`), out-of-fold probabilities over `folds` stratified folds."""
    n = min(len(real), len(synthetic), max_rows)
    if n < folds:
        raise ValueError(f"detection_auc needs at least {folds} rows on each side, got {n}.")
    rng = np.random.default_rng(seed)
    rows = pd.concat(
        [real.iloc[rng.choice(len(real), n, replace=False)], synthetic.iloc[rng.choice(len(synthetic), n, replace=False)]],
        ignore_index=True,
    )
    labels = np.r_[np.zeros(n), np.ones(n)]
    features = list(real.columns)
    # One grouping for both sides, from the pooled rows (blind to which side a row comes from).
    categories = {c: category_levels(rows[c]) for c in features if c in categorical_columns}
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed, max_iter=100)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    (design,) = _without_empty_columns(_design_matrix(rows, features, categories))
    probabilities = cross_val_predict(model, design, labels, cv=splitter, method="predict_proba")[:, 1]
    return labels, probabilities


def category_levels(values: pd.Series, max_levels: int = MAX_CATEGORY_LEVELS) -> list[str]:
    """The categories a model sees for one column (missing values the category MISSING), sorted: every category
    when there are at most `max_levels`, else the `max_levels - 1` most frequent in `values` (ties by label) and
    `OTHER_LEVEL`, which stands for the others (`_grouped`)."""
    counts = _as_category(values, MISSING).value_counts()
    if len(counts) <= max_levels:
        return sorted(counts.index)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return sorted({label for label, _ in ranked[: max_levels - 1]} | {OTHER_LEVEL})


def _grouped(labels: pd.Series, levels: list[str]) -> pd.Series:
    """Labels outside `levels` become OTHER_LEVEL when the levels group (hold OTHER_LEVEL), else stay as they are."""
    if OTHER_LEVEL not in levels:
        return labels
    return labels.where(labels.isin(levels), OTHER_LEVEL)


def _design_matrix(frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]) -> pd.DataFrame:
    """Model input: categorical columns as pandas categoricals over fixed categories (`category_levels`: a category
    outside them is OTHER_LEVEL where the column is grouped, else missing), the others as floats (±inf missing)."""
    out = {}
    for column in features:
        if column in categories:
            out[column] = pd.Categorical(_grouped(_as_category(frame[column], MISSING), categories[column]), categories=categories[column])
        else:
            values = numbers(frame[column])
            out[column] = values.where(np.isfinite(values))
    return pd.DataFrame(out, index=frame.index)


def _without_empty_columns(fitted_on: pd.DataFrame, *others: pd.DataFrame) -> list[pd.DataFrame]:
    """The design matrices with every numeric column that has no value in `fitted_on` set to 0 in all of them:
    it carries nothing to learn, and scikit-learn's gradient boosting fails on a feature with no value at all."""
    empty = [c for c in fitted_on.columns
             if not isinstance(fitted_on[c].dtype, pd.CategoricalDtype) and fitted_on[c].isna().all()]
    if not empty:
        return [fitted_on, *others]
    return [frame.assign(**{c: 0.0 for c in empty}) for frame in (fitted_on, *others)]


def numeric_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Numeric and datetime columns as the float matrix `correlation_delta` correlates (datetimes in seconds):
    missing and ±inf values NaN (left out pairwise), each column divided by its largest finite |value| so that
    products of values as large as 1e300 do not overflow (a correlation does not change under scaling)."""
    values = _numeric_frame(frame, columns).to_numpy(dtype=float)
    values = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(all="ignore"):
        scale = np.nanmax(np.abs(values), axis=0) if len(values) else np.ones(values.shape[1])
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return values / scale
