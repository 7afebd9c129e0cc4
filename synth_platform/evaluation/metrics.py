"""Utility and privacy metrics of a synthetic table, each named after the definition it implements.

Pure logic: no Dagster here. Definitions follow the anchors in shared/DESIGN.md §5:

- `ks_statistic`: two-sample Kolmogorov-Smirnov statistic D (SDMetrics KSComplement = 1 - D).
- `total_variation_distance`: ½ Σ |p - q| over categories, missing values a category of their own
  (SDMetrics TVComplement = 1 - TVD).
- `correlation_delta`: mean over numeric column pairs of |ρ_real - ρ_synthetic| (Pearson).
- `exact_copy_rate`: share of synthetic rows equal to some training row = 1 - SDMetrics NewRowSynthesis
  (exact match; SDMetrics' default numeric tolerance is not applied).
- `distance_to_closest_record`: SDMetrics' per-column distance (numeric |x - y| / range of the real column,
  categorical 0/1), averaged over columns, minimum over the full reference set (never subsampled), chunked.
- `membership_inference_auc`: distance attack; training rows are members, holdout rows non-members, each scored by
  minus its distance to the closest synthetic record; ROC AUC (0.5 = no leakage).
- `train_synthetic_test_real`: a gradient-boosting model trained on synthetic rows and on the training rows, both
  scored on the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

MISSING = "__missing__"
CHUNK_CELLS = 8_000_000  # query rows × reference rows held in memory at once (float32: 32 MB)


def ks_statistic(real: pd.Series, synthetic: pd.Series) -> float:
    """Kolmogorov-Smirnov D between the non-missing values of two numeric (or datetime) columns."""
    a, b = numbers(real).dropna(), numbers(synthetic).dropna()
    if len(a) == 0 or len(b) == 0:
        return float(len(a) != len(b))
    return float(stats.ks_2samp(a.to_numpy(), b.to_numpy()).statistic)


def total_variation_distance(real: pd.Series, synthetic: pd.Series) -> float:
    """½ Σ |p - q| over the union of categories; a missing value is a category of its own."""
    p = _as_category(real).value_counts(normalize=True)
    q = _as_category(synthetic).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return float(0.5 * np.abs(p - q).sum())


def correlation_delta(real: pd.DataFrame, synthetic: pd.DataFrame, numeric_columns: list[str]) -> dict:
    """Mean |ρ_real - ρ_synthetic| of Pearson correlations over numeric column pairs, and the worst pair."""
    if len(numeric_columns) < 2:
        return {"mean": 0.0, "pairs": 0, "worst_pair": None, "worst": 0.0}
    real_corr = _numeric_frame(real, numeric_columns).corr().to_numpy()
    synthetic_corr = _numeric_frame(synthetic, numeric_columns).corr().to_numpy()
    upper = np.triu_indices(len(numeric_columns), k=1)
    # A constant column has no correlation; treat it as 0 on that side rather than dropping the pair.
    deltas = np.abs(np.nan_to_num(real_corr[upper]) - np.nan_to_num(synthetic_corr[upper]))
    worst = int(np.argmax(deltas))
    return {
        "mean": float(deltas.mean()),
        "pairs": int(len(deltas)),
        "worst_pair": [numeric_columns[upper[0][worst]], numeric_columns[upper[1][worst]]],
        "worst": float(deltas[worst]),
    }


def exact_copy_rate(synthetic: pd.DataFrame, training: pd.DataFrame) -> float:
    """Share of synthetic rows identical (all columns, missing equal to missing) to at least one training row."""
    if len(synthetic) == 0:
        return 0.0
    columns = list(training.columns)
    training_rows = set(_row_keys(training[columns]))
    return float(np.mean([key in training_rows for key in _row_keys(synthetic[columns])]))


def _row_keys(frame: pd.DataFrame):
    normalized = frame.astype(object).where(frame.notna(), MISSING)
    normalized = normalized.apply(lambda col: col.map(_normalize_scalar))
    return map(tuple, normalized.itertuples(index=False, name=None))


def _normalize_scalar(value):
    if isinstance(value, (np.integer, np.floating, int, float)) and not isinstance(value, bool):
        value = float(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


@dataclass
class MixedSpace:
    """Rows encoded for SDMetrics' per-column distance: numeric scaled by 1/range, categoricals as integer codes."""

    numeric_columns: list[str]
    categorical_columns: list[str]
    low: np.ndarray
    span: np.ndarray
    categories: list[dict]

    @classmethod
    def fit(cls, real: pd.DataFrame, numeric_columns: list[str], categorical_columns: list[str]) -> MixedSpace:
        numbers = _numeric_frame(real, numeric_columns).to_numpy(dtype=float) if numeric_columns else np.zeros((len(real), 0))
        low = np.nanmin(numbers, axis=0) if numbers.shape[1] else np.zeros(0)
        high = np.nanmax(numbers, axis=0) if numbers.shape[1] else np.zeros(0)
        span = np.where((high - low) > 0, high - low, 1.0)
        categories = [{value: code for code, value in enumerate(_as_category(real[c]).unique())} for c in categorical_columns]
        return cls(numeric_columns, categorical_columns, low, span, categories)

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        numbers = _numeric_frame(frame, self.numeric_columns).to_numpy(dtype=float) if self.numeric_columns else np.zeros((len(frame), 0))
        scaled = ((numbers - self.low) / self.span).astype(np.float32)
        codes = np.empty((len(frame), len(self.categorical_columns)), dtype=np.int32)
        for j, (column, mapping) in enumerate(zip(self.categorical_columns, self.categories)):
            codes[:, j] = _as_category(frame[column]).map(mapping).fillna(-1).to_numpy(dtype=np.int32)
        return scaled, codes

    @property
    def n_columns(self) -> int:
        return len(self.numeric_columns) + len(self.categorical_columns)


def distance_to_closest_record(
    query: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray], n_columns: int
) -> np.ndarray:
    """For each query row, the mean per-column distance to its closest reference row (all reference rows).

    Numeric distance |x - y| on range-scaled values (a missing value is at distance 1 from any number and 0 from
    another missing value), categorical distance 0/1. Works in chunks of query rows so memory stays bounded.
    """
    q_num, q_cat = query
    r_num, r_cat = reference
    n_query, n_reference = len(q_num), len(r_num)
    if n_reference == 0:
        raise ValueError("distance_to_closest_record needs at least one reference row.")
    result = np.empty(n_query, dtype=np.float64)
    step = max(1, CHUNK_CELLS // n_reference)
    for start in range(0, n_query, step):
        stop = min(start + step, n_query)
        total = np.zeros((stop - start, n_reference), dtype=np.float32)
        for j in range(q_num.shape[1]):
            diff = np.abs(q_num[start:stop, j, None] - r_num[None, :, j])
            q_missing = np.isnan(q_num[start:stop, j])[:, None]
            r_missing = np.isnan(r_num[:, j])[None, :]
            diff = np.where(q_missing | r_missing, np.where(q_missing & r_missing, 0.0, 1.0), diff)
            total += diff
        for j in range(q_cat.shape[1]):
            total += q_cat[start:stop, j, None] != r_cat[None, :, j]
        result[start:stop] = total.min(axis=1) / max(n_columns, 1)
    return result


def membership_inference_auc(member_dcr: np.ndarray, non_member_dcr: np.ndarray) -> float:
    """ROC AUC of a distance attack: the closer a real record is to the synthetic set, the likelier a member."""
    labels = np.r_[np.ones(len(member_dcr)), np.zeros(len(non_member_dcr))]
    scores = -np.r_[member_dcr, non_member_dcr]
    return float(roc_auc_score(labels, scores))


def dcr_share(dcr_training: np.ndarray, dcr_holdout: np.ndarray) -> float:
    """P(closer to training than to holdout) + ½ P(tie), for equal-size training and holdout references; ≈ 0.5 is ideal."""
    return float(np.mean(dcr_training < dcr_holdout) + 0.5 * np.mean(dcr_training == dcr_holdout))


def train_synthetic_test_real(
    synthetic: pd.DataFrame, training: pd.DataFrame, holdout: pd.DataFrame, target: str, categorical_columns: list[str], seed: int = 0
) -> dict:
    """Train one gradient-boosting model on synthetic rows and one on training rows; score both on the holdout."""
    is_classification = target in categorical_columns
    features = [c for c in training.columns if c != target]
    cat_features = [c for c in features if c in categorical_columns]
    categories = {c: sorted(set(_as_category(training[c])) | set(_as_category(holdout[c]))) for c in cat_features}

    def design(frame: pd.DataFrame) -> pd.DataFrame:
        return _design_matrix(frame, features, categories)

    def fit_and_score(train: pd.DataFrame) -> dict:
        y_train = _as_category(train[target]) if is_classification else numbers(train[target])
        keep = y_train.notna()
        if is_classification and y_train[keep].nunique() < 2:
            return {"score": 0.0, "note": "only one class present in the training rows"}
        model_cls = HistGradientBoostingClassifier if is_classification else HistGradientBoostingRegressor
        model = model_cls(categorical_features="from_dtype", random_state=seed, max_iter=200)
        model.fit(design(train)[keep.to_numpy()], y_train[keep])
        y_true = _as_category(holdout[target]) if is_classification else numbers(holdout[target])
        mask = y_true.notna().to_numpy()
        predicted = model.predict(design(holdout)[mask])
        if is_classification:
            return {
                "accuracy": float(accuracy_score(y_true[mask], predicted)),
                "macro_f1": float(f1_score(y_true[mask], predicted, average="macro")),
                "score": float(f1_score(y_true[mask], predicted, average="macro")),
            }
        return {"r2": float(r2_score(y_true[mask], predicted)), "score": float(r2_score(y_true[mask], predicted))}

    on_synthetic = fit_and_score(synthetic)
    on_real = fit_and_score(training)
    return {
        "target": target,
        "task": "classification" if is_classification else "regression",
        "score_name": "macro_f1" if is_classification else "r2",
        "train_synthetic_test_real": on_synthetic,
        "train_real_test_real": on_real,
        "ratio": float(on_synthetic["score"] / on_real["score"]) if on_real["score"] else None,
    }


def detection_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, categorical_columns: list[str], *, max_rows: int = 5000, folds: int = 5, seed: int = 0
) -> float:
    """Cross-validated ROC AUC of a classifier telling real rows from synthetic rows (0.5: indistinguishable, 1: every
    synthetic row is recognisable). Equal numbers of rows from each side (at most `max_rows`), gradient boosting with
    native categoricals (missing as a category), out-of-fold probabilities over `folds` stratified folds. Unlike
    synthcity's detection scores, which fit XGBoost/MLP/GMM detectors, this is one model with SDMetrics' reading
    of the AUC; it is a utility diagnostic, not a privacy measure (see `membership_inference_auc`)."""
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
    categories = {c: sorted(set(_as_category(rows[c]))) for c in features if c in categorical_columns}
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed, max_iter=100)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(
        model, _design_matrix(rows, features, categories), labels, cv=splitter, method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(labels, probabilities))


def _design_matrix(frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]) -> pd.DataFrame:
    """Model input: categorical columns as pandas categoricals over fixed categories, the others as floats."""
    out = pd.DataFrame(index=frame.index)
    for column in features:
        if column in categories:
            out[column] = pd.Categorical(_as_category(frame[column]), categories=categories[column])
        else:
            out[column] = numbers(frame[column])
    return out


def _as_category(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), MISSING).map(str)


def numbers(series: pd.Series) -> pd.Series:
    """A numeric or datetime column as floats (datetimes as seconds since 1970); anything else becomes NaN."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return (series - pd.Timestamp(0)).dt.total_seconds()
    return pd.to_numeric(series, errors="coerce").astype(float)


def _numeric_frame(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: numbers(frame[column]) for column in columns}, index=frame.index)
