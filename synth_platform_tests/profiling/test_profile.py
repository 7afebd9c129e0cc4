import numpy as np
import pandas as pd
import pytest

from synth_platform.profiling.profile import (
    MISSING_INDICATOR_SUFFIX,
    MISSING_TOKEN,
    DatasetProfile,
    align_for_comparison,
    decode_from_generation,
    encode_for_generation,
    profile_dataframe,
)


def test_adult_column_kinds_and_missingness(adult):
    profile = profile_dataframe(adult)
    kinds = {c.name: c.kind for c in profile.columns}
    assert profile.by_kind("numeric") == ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    assert kinds["income"] == kinds["workclass"] == kinds["sex"] == "categorical"
    workclass = profile.column("workclass")
    assert workclass.missing_fraction == pytest.approx(adult["workclass"].isna().mean())
    assert workclass.missing_fraction > 0.05
    assert workclass.cardinality == adult["workclass"].nunique()
    assert profile.column("age").is_integer and profile.column("age").minimum == adult["age"].min()


def test_identifiers_datetimes_and_flags_are_recognised():
    n = 50
    frame = pd.DataFrame({
        "patient_id": range(1000, 1000 + n),
        "email": [f"p{i}@example.org" for i in range(n)],
        "admitted": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "smoker": [0, 1] * (n // 2),
        "weight": np.linspace(50, 90, n),
    })
    kinds = {c.name: c.kind for c in profile_dataframe(frame).columns}
    assert kinds == {"patient_id": "identifier", "email": "identifier", "admitted": "datetime",
                     "smoker": "categorical", "weight": "numeric"}


def test_encoding_has_no_missing_values_and_records_its_handling(penguins):
    profile = profile_dataframe(penguins)
    encoded = encode_for_generation(penguins, profile)
    assert not encoded.isna().any().any()
    assert f"bill_length_mm{MISSING_INDICATOR_SUFFIX}" in encoded
    assert (encoded["sex"] == MISSING_TOKEN).sum() == penguins["sex"].isna().sum()
    assert "indicator column" in profile.column("bill_length_mm").handling
    assert MISSING_TOKEN in profile.column("sex").handling


def test_decode_inverts_encode_including_missing_values(penguins):
    profile = profile_dataframe(penguins)
    decoded = decode_from_generation(encode_for_generation(penguins, profile), profile)
    expected = penguins.copy()
    for column in decoded.columns:
        pd.testing.assert_series_equal(
            decoded[column].astype(object).where(decoded[column].notna(), None).reset_index(drop=True),
            expected[column].astype(object).where(expected[column].notna(), None).reset_index(drop=True),
            check_names=False,
        ) if profile.column(column).kind == "categorical" else np.testing.assert_allclose(
            decoded[column].astype(float), expected[column].astype(float), equal_nan=True
        )


def test_identifiers_are_replaced_by_surrogates_and_datetimes_come_back():
    frame = pd.DataFrame({
        "record_id": [f"R{i}" for i in range(30)],
        "seen": pd.date_range("2023-05-01", periods=30, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
        "dose": np.arange(30) * 1.5,
    })
    profile = profile_dataframe(frame)
    encoded = encode_for_generation(frame, profile)
    assert "record_id" not in encoded
    decoded = decode_from_generation(encoded, profile)
    assert not set(decoded["record_id"]) & set(frame["record_id"])
    assert decoded["record_id"].is_unique
    pd.testing.assert_series_equal(decoded["seen"], align_for_comparison(frame, profile)["seen"], check_names=False)


def test_generated_values_are_clipped_to_the_source_range_and_rounded(adult_small):
    profile = profile_dataframe(adult_small)
    encoded = encode_for_generation(adult_small, profile).head(3).copy()
    encoded["age"] = [-5.0, 40.4, 500.0]
    decoded = decode_from_generation(encoded, profile)
    assert decoded["age"].tolist() == [adult_small["age"].min(), 40, adult_small["age"].max()]
    assert decoded["age"].dtype == np.int64


def test_profile_round_trips_through_json(adult_small):
    profile = profile_dataframe(adult_small)
    assert DatasetProfile.from_dict(profile.to_dict()) == profile


def test_a_table_of_identifiers_only_is_refused():
    with pytest.raises(ValueError, match="looks like an identifier"):
        profile_dataframe(pd.DataFrame({"id": range(40)}))


def test_credit_data_missing_numbers_are_modelled_and_restored(credit):
    """Real data with missing numeric cells (Income, Assets, Debt) and missing categories (Home, Marital, Job)."""
    profile = profile_dataframe(credit)
    assert profile.by_kind("categorical") == ["Status", "Home", "Marital", "Records", "Job"]
    assert profile.column("Income").missing_fraction == pytest.approx(credit["Income"].isna().mean())
    encoded = encode_for_generation(credit, profile)
    assert not encoded.isna().any().any()
    assert {f"{c}{MISSING_INDICATOR_SUFFIX}" for c in ("Income", "Assets", "Debt")} <= set(encoded.columns)
    decoded = decode_from_generation(encoded, profile)
    pd.testing.assert_series_equal(decoded.isna().sum(), credit.isna().sum())
    np.testing.assert_allclose(decoded["Income"].astype(float), credit["Income"], equal_nan=True)
