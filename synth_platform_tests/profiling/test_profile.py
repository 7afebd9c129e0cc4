import numpy as np
import pandas as pd
import pytest

from synth_platform_tests.profiling.built_tables import patients
from synth_platform.profiling.profile import (
    MISSING_INDICATOR_SUFFIX,
    MISSING_TOKEN,
    DatasetProfile,
    apply_disclosure_control,
    Ordering,
    ProfileError,
    align_for_comparison,
    decode_from_generation,
    encode_for_generation,
    profile_dataframe,
    renumber_surrogate_keys,
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
    expected = apply_disclosure_control(penguins, profile)  # what generators see: extremes coded
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
    controlled = align_for_comparison(apply_disclosure_control(frame, profile), profile)
    pd.testing.assert_series_equal(decoded["seen"], controlled["seen"], check_names=False)


def test_generated_values_are_clipped_to_the_source_range_and_rounded(adult_small):
    profile = profile_dataframe(adult_small)
    encoded = encode_for_generation(adult_small, profile).head(3).copy()
    encoded["age"] = [-5.0, 40.4, 500.0]
    decoded = decode_from_generation(encoded, profile)
    ages = sorted(adult_small["age"])  # the published range stops at the 5th smallest / largest age
    assert decoded["age"].tolist() == [ages[4], 40, ages[-5]]
    assert decoded["age"].dtype == np.int64


def test_profile_round_trips_through_json(adult_small):
    profile = profile_dataframe(adult_small)
    assert DatasetProfile.from_dict(profile.to_dict()) == profile


def test_a_table_of_identifiers_only_is_refused():
    with pytest.raises(ProfileError, match="No column of the table is left for a generator"):
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
    controlled = apply_disclosure_control(credit, profile)
    np.testing.assert_allclose(decoded["Income"].astype(float), controlled["Income"], equal_nan=True)


def test_semantic_types_of_the_real_datasets(adult, penguins, credit):
    adult_types = {c.name: c.semantic_type for c in profile_dataframe(adult).columns}
    assert adult_types["age"] == adult_types["capital_gain"] == "numeric_discrete"
    assert adult_types["workclass"] == adult_types["income"] == "categorical"
    penguin = profile_dataframe(penguins)
    assert penguin.column("bill_length_mm").semantic_type == "numeric_continuous"
    assert penguin.column("year").semantic_type == "numeric_discrete"
    credit_profile = profile_dataframe(credit)
    assert credit_profile.column("Records").semantic_type == "boolean"  # yes / no
    assert credit_profile.column("Records").allowed_values == ["no", "yes"]
    for profile in (profile_dataframe(adult), penguin, credit_profile):
        assert profile.identifiers() == []  # none of them has a direct identifier
        assert all(c.treatment == "model" for c in profile.columns)


def test_quasi_identifiers_are_flagged_and_their_uniqueness_measured(adult):
    profile = profile_dataframe(adult)
    assert profile.quasi_identifiers() == ["age", "marital_status", "occupation", "race", "sex", "native_country"]
    unique = (~adult[profile.quasi_identifiers()].duplicated(keep=False)).mean()
    assert profile.rows_unique_on_quasi_identifiers == pytest.approx(unique)
    assert 0 < unique < 1


def test_orderings_that_hold_on_credit_data_are_found(credit):
    profile = profile_dataframe(credit)
    orderings = profile.orderings
    assert Ordering("Amount", "Price") in orderings  # a loan never exceeds the price of what it buys
    assert Ordering("Seniority", "Age") in orderings  # nobody has worked longer than they have lived
    controlled = apply_disclosure_control(credit, profile)  # orderings hold on the rows generators learn from
    for ordering in orderings:
        both = controlled[[ordering.low, ordering.high]].dropna()
        assert (both[ordering.low] <= both[ordering.high]).all()
    assert profile_dataframe(credit, detect_orderings=False).orderings == []


def test_built_patient_table_identifiers_free_text_and_datetimes():
    frame = patients()
    with pytest.raises(ProfileError, match=r"Free-text column\(s\) refused: 'notes'.*column_treatments: \{notes: drop\}"):
        profile_dataframe(frame)
    profile = profile_dataframe(frame, column_treatments={"notes": "drop"})
    reasons = {c.name: c.identifier_reason for c in profile.columns if c.semantic_type == "identifier"}
    assert reasons == {
        "patient_id": "a unique key", "mrn": "record numbers (letters then 4 or more digits, 100% distinct values)",
        "email": "e-mail addresses",
        "phone": "phone numbers", "full_name": "personal names (by its column name: full name)",
        "sequence": "a unique key (distinct integers in a dense run, like row numbers)",
    }
    treatments = {c.name: c.treatment for c in profile.columns}
    assert treatments["patient_id"] == treatments["mrn"] == treatments["sequence"] == "surrogate"
    assert treatments["email"] == treatments["phone"] == treatments["full_name"] == treatments["notes"] == "drop"
    assert profile.column("admitted").semantic_type == "datetime" and profile.column("admitted").datetime_resolution == "day"
    assert profile.column("seen_at").datetime_resolution == "minute"
    assert profile.column("diagnosis").semantic_type == "categorical"
    assert profile.column("smoker").semantic_type == "boolean"
    assert profile.column("zip_code").quasi_identifier and profile.column("age").quasi_identifier
    assert Ordering("admitted", "discharged") in profile.orderings
    encoded = encode_for_generation(frame, profile)
    assert not set(encoded.columns) & {"patient_id", "mrn", "email", "phone", "full_name", "sequence", "notes"}
    assert profile.output_columns() == [c for c in frame.columns if c not in ("email", "phone", "full_name", "notes")]


def test_overrides_change_types_and_treatments_and_bad_ones_say_what_to_do():
    frame = patients()
    profile = profile_dataframe(frame, column_types={"age": "categorical", "notes": "categorical"},
                                column_treatments={"email": "surrogate", "diagnosis": "drop"})
    assert profile.column("age").semantic_type == "categorical" and profile.column("age").overridden
    assert profile.column("notes").treatment == "model"
    assert profile.column("email").treatment == "surrogate" and "diagnosis" not in profile.output_columns()
    decoded = decode_from_generation(encode_for_generation(frame, profile), profile)
    assert decoded["email"].str.endswith("@synthetic.invalid").all()
    with pytest.raises(ProfileError, match="identifiers never go into a generator"):
        profile_dataframe(frame, column_treatments={"notes": "drop", "patient_id": "model"})
    with pytest.raises(ProfileError, match=r"names column\(s\) \['nope'\]"):
        profile_dataframe(frame, column_types={"nope": "categorical"})
    with pytest.raises(ProfileError, match="choose one of"):
        profile_dataframe(frame, column_treatments={"notes": "hide"})
    with pytest.raises(ProfileError, match="cannot be read as numbers"):
        profile_dataframe(frame, column_types={"diagnosis": "numeric_continuous"}, column_treatments={"notes": "drop"})


def test_datetimes_round_trip_at_their_resolution_and_time_zone():
    frame = patients()
    frame["seen_utc"] = pd.to_datetime(frame["seen_at"]).dt.tz_localize("Europe/Berlin")
    profile = profile_dataframe(frame, column_treatments={"notes": "drop"})
    assert profile.column("seen_utc").datetime_timezone == "Europe/Berlin"
    decoded = decode_from_generation(encode_for_generation(frame, profile), profile)
    aligned = align_for_comparison(apply_disclosure_control(frame, profile), profile)
    for name in ("admitted", "discharged", "seen_at", "seen_utc"):
        assert pd.api.types.is_datetime64_any_dtype(decoded[name].dtype)
        pd.testing.assert_series_equal(decoded[name], aligned[name], check_names=False)
    encoded = encode_for_generation(frame, profile)
    encoded["admitted"] += 3_600 * 5  # five hours off: comes back at day resolution
    assert (decode_from_generation(encoded, profile)["admitted"].dt.floor("D") == decode_from_generation(encoded, profile)["admitted"]).all()


def test_surrogate_keys_are_fresh_unique_and_renumbered_over_draws():
    frame = patients()
    profile = profile_dataframe(frame, column_treatments={"notes": "drop"})
    encoded = encode_for_generation(frame, profile)
    two_draws = pd.concat([decode_from_generation(encoded.head(30), profile), decode_from_generation(encoded.tail(30), profile)])
    assert two_draws["patient_id"].duplicated().any()  # each draw numbers from 1
    renumbered = renumber_surrogate_keys(two_draws, profile)
    assert renumbered["patient_id"].is_unique and renumbered["patient_id"].iloc[-1] == "SYN-00000060"
    assert not set(renumbered["patient_id"]) & set(frame["patient_id"].astype(str))


def test_datetimes_with_mixed_utc_offsets_are_read_as_utc():
    frame = pd.DataFrame({"seen": ["2024-01-01T09:00:00+01:00", "2024-06-01T09:00:00+02:00"] * 15, "dose": np.arange(30) * 0.5})
    profile = profile_dataframe(frame)
    assert profile.column("seen").semantic_type == "datetime" and profile.column("seen").datetime_timezone == "UTC"
    decoded = decode_from_generation(encode_for_generation(frame, profile), profile)
    assert decoded["seen"].iloc[:2].tolist() == [pd.Timestamp("2024-01-01T08:00:00Z"), pd.Timestamp("2024-06-01T07:00:00Z")]
