"""The nearest-record kernel against a brute-force numpy definition of SDMetrics' distance (SDMetrics' own
`calculate_dcr` is compared in test_reference_metrics.py)."""

import numpy as np
import pandas as pd
import pytest

from synth_platform.evaluation import distances


def _brute_force_k_nearest(query: pd.DataFrame, reference: pd.DataFrame, numeric, categorical, k):
    low = reference[numeric].min()
    span = reference[numeric].max() - low
    out = []
    for _, q in query.iterrows():
        row = []
        for _, r in reference.iterrows():
            total = 0.0
            for c in numeric:
                if pd.isna(q[c]) or pd.isna(r[c]):
                    total += 0.0 if (pd.isna(q[c]) and pd.isna(r[c])) else 1.0
                elif span[c] == 0:
                    total += float(q[c] != r[c])
                else:
                    total += min(abs(q[c] - r[c]) / span[c], 1.0)
            for c in categorical:
                same = (pd.isna(q[c]) and pd.isna(r[c])) or q[c] == r[c]
                total += 0.0 if same else 1.0
            row.append(total / (len(numeric) + len(categorical)))
        out.append(sorted(row)[:k])
    return np.array(out)


def test_k_nearest_distances_match_brute_force_with_missing_constant_and_unseen_values(adult):
    numeric, categorical = ["age", "hours_per_week", "capital_gain", "constant"], ["sex", "race", "workclass"]
    rows = adult.sample(160, random_state=4).reset_index(drop=True).assign(constant=7.0)
    rows.loc[::7, "age"] = np.nan
    rows.loc[::5, "workclass"] = None
    reference, query = rows.iloc[:100].copy(), rows.iloc[100:].copy()
    query.loc[query.index[:3], "constant"] = 8.0  # differs from the reference's only value
    query.loc[query.index[3:6], "race"] = "never-seen"  # a category the fitted frame does not have
    query.loc[query.index[6], "hours_per_week"] = 1000  # far outside the range: capped at 1
    space = distances.MixedSpace.fit(reference, numeric, categorical)
    ours = distances.k_nearest_distances(space.transform(query), space.transform(reference), space.n_columns, k=3)
    expected = _brute_force_k_nearest(query, reference, numeric, categorical, k=3)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    assert np.all(np.diff(ours, axis=1) >= 0)


def test_unseen_categories_never_match_each_other():
    reference = pd.DataFrame({"c": ["a", "b", "zz-unseen-1"]})
    space = distances.MixedSpace.fit(reference.iloc[:2], [], ["c"])
    query = pd.DataFrame({"c": ["zz-unseen-2"]})
    # Both values are unknown to the fitted frame; they still differ from each other.
    d = distances.distance_to_closest_record(space.transform(query), space.transform(reference), space.n_columns)
    assert d.tolist() == [1.0]
    again = distances.distance_to_closest_record(space.transform(reference), space.transform(reference), space.n_columns)
    assert again.tolist() == [0.0, 0.0, 0.0]


def test_k_nearest_distances_refuses_mismatched_inputs(adult):
    space = distances.MixedSpace.fit(adult.head(50), ["age"], ["sex"])
    other = distances.MixedSpace.fit(adult.head(50), ["age", "fnlwgt"], ["sex"])
    with pytest.raises(ValueError, match="different columns"):
        distances.k_nearest_distances(space.transform(adult.head(5)), other.transform(adult.head(5)), 2)
    with pytest.raises(ValueError, match="at least 3 reference"):
        distances.k_nearest_distances(space.transform(adult.head(5)), space.transform(adult.head(2)), 2, k=3)
    with pytest.raises(ValueError, match="missing"):
        space.transform(adult.head(5).drop(columns=["sex"]))
