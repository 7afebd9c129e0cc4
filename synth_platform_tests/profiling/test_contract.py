"""The Great Expectations suite made from a profile: met by its own source, broken by corrupted tables, and the
pandas row rules (used to reject generated rows) agreeing with GE's own verdicts."""

import json

import great_expectations as gx
import numpy as np
import pandas as pd
import pytest

from synth_platform.profiling.contract import (
    MISSING_RATE_TOLERANCE,
    check_suite_on_source,
    expectation_suite,
    row_violations,
    validate_contract,
)
from synth_platform.profiling.profile import align_for_comparison, apply_disclosure_control, decode_from_generation, encode_for_generation, profile_dataframe
from synth_platform_tests.profiling.built_tables import patients

BUILT = {"column_treatments": {"notes": "drop"}}


@pytest.fixture(scope="module")
def built():
    frame = patients()
    profile = profile_dataframe(frame, **BUILT)
    return frame, profile, expectation_suite(profile, "patients_contract")


@pytest.mark.parametrize("dataset", ["adult", "penguins", "credit", "patients"])
def test_every_source_meets_its_own_suite(dataset, request):
    frame = patients() if dataset == "patients" else request.getfixturevalue(dataset)
    profile = profile_dataframe(frame, **(BUILT if dataset == "patients" else {}))
    suite = expectation_suite(profile, f"{dataset}_contract")
    validation = check_suite_on_source(frame, profile, suite)  # raises on any failure, warnings included
    assert validation.success and validation.failed == []
    rules = {e["meta"]["rule"] for e in suite["expectations"]}
    assert {"columns", "type", "range", "allowed_values"} <= rules
    assert not row_violations(apply_disclosure_control(frame, profile), profile).any().any()


def test_suite_is_great_expectations_json_with_each_rule(built):
    frame, profile, suite = built
    loaded = gx.ExpectationSuite(**json.loads(json.dumps(suite)))  # GE loads what we save
    assert len(loaded.expectations) == len(suite["expectations"])
    by_type = {}
    for e in suite["expectations"]:
        by_type.setdefault(e["type"], []).append(e["kwargs"])
    ages = sorted(frame["age"])  # coded at the 5th smallest and largest value (rare_value_k = 5)
    assert {"column": "age", "min_value": float(ages[4]), "max_value": float(ages[-5])} in by_type["expect_column_values_to_be_between"]
    assert {"column": "diagnosis", "value_set": ["E11", "I10", "J45", "K35"]} in by_type["expect_column_values_to_be_in_set"]
    assert {"column_A": "discharged", "column_B": "admitted", "or_equal": True, "ignore_row_if": "either_value_is_missing"} in by_type["expect_column_pair_values_a_to_be_greater_than_b"]
    assert {"column": "patient_id"} in by_type["expect_column_values_to_be_unique"]
    assert {"column": "age"} in by_type["expect_column_values_to_not_be_null"]
    assert by_type["expect_table_columns_to_match_ordered_list"] == [{"column_list": profile.output_columns()}]
    serialized = json.dumps(suite)
    for value in frame["patient_id"].astype(str).tolist() + frame["email"].tolist():
        assert value not in serialized  # the suite never carries a source identifier
    weight_rate = frame["weight"].isna().mean()
    missing = [e for e in suite["expectations"] if e["meta"]["rule"] == "missing_rate"]
    assert {e["severity"] for e in missing} == {"warning"}
    assert sorted(e["kwargs"]["mostly"] for e in missing) == pytest.approx(
        sorted([1 - (weight_rate + MISSING_RATE_TOLERANCE), weight_rate - MISSING_RATE_TOLERANCE]), abs=1e-6)


def _synthetic_like(frame, profile):
    """What a perfect generator would give back: the source rows through the encoder and decoder."""
    return decode_from_generation(encode_for_generation(frame, profile), profile)


def test_a_corrupted_table_fails_and_the_check_names_each_expectation_with_examples(built):
    frame, profile, suite = built
    bad = _synthetic_like(frame, profile)
    bad.loc[[0, 1], "age"] = [-4, 140]  # negative and impossible ages
    bad.loc[2, "diagnosis"] = "Z99"  # an invented code
    bad.loc[3, "discharged"] = bad.loc[3, "admitted"] - pd.Timedelta(days=2)  # discharged before admission
    bad.loc[4, "smoker"] = None  # missing where the source never is
    validation = validate_contract(bad, suite)
    assert not validation.success
    failed = {(f.rule, tuple(f.columns)): f for f in validation.critical_failures}
    assert set(failed) == {("range", ("age",)), ("allowed_values", ("diagnosis",)),
                           ("ordering", ("discharged", "admitted")), ("not_null", ("smoker",))}
    assert sorted(failed[("range", ("age",))].examples) == [-4, 140]
    assert failed[("allowed_values", ("diagnosis",))].examples == ["Z99"]
    assert failed[("ordering", ("discharged", "admitted"))].unexpected_count == 1
    assert "admitted ≤ discharged" in failed[("ordering", ("discharged", "admitted"))].summary()
    wrong_columns = validate_contract(bad.drop(columns="zip_code"), suite)
    assert ("columns", ()) in {(f.rule, tuple(f.columns)) for f in wrong_columns.critical_failures}


def test_row_rules_flag_exactly_the_rows_great_expectations_rejects(credit):
    """Rejection uses the pandas rules; the check uses GE: on a table with scattered defects they must agree."""
    profile = profile_dataframe(credit)
    suite = expectation_suite(profile, "credit_contract")
    rng = np.random.default_rng(1)
    bad = align_for_comparison(credit, profile).reset_index(drop=True)
    rows = rng.choice(len(bad), 60, replace=False)
    bad.loc[rows[:20], "Amount"] = bad.loc[rows[:20], "Price"] + 100  # Amount ≤ Price broken (and maybe the range)
    bad.loc[rows[20:40], "Age"] = 200
    bad.loc[rows[40:], "Home"] = "castle"
    broken = row_violations(bad, profile)
    validation = validate_contract(bad, suite)
    ge_counts = {f"{f.rule}: {f.columns[0]}" if f.rule != "ordering" else f"ordering: {f.columns[1]} ≤ {f.columns[0]}": f.unexpected_count
                 for f in validation.critical_failures}
    pandas_counts = {rule: int(n) for rule, n in broken.sum().items() if n}
    assert pandas_counts == ge_counts
    assert pandas_counts["allowed_values: Home"] == 20 and pandas_counts["ordering: Amount ≤ Price"] >= 20


def test_missing_rates_outside_the_tolerance_only_warn(credit):
    profile = profile_dataframe(credit)
    suite = expectation_suite(profile, "credit_contract")
    table = _synthetic_like(credit, profile)
    table["Income"] = table["Income"].fillna(table["Income"].median())  # the generator forgot Income's gaps
    validation = validate_contract(table, suite)
    assert validation.success  # warnings do not fail the contract
    assert [(f.rule, f.columns, f.severity) for f in validation.failed] == [("missing_rate", ["Income"], "warning")]
    rate = credit["Income"].isna().mean()
    assert abs(table["Income"].isna().mean() - rate) > MISSING_RATE_TOLERANCE


def test_data_docs_are_written(built, tmp_path):
    frame, profile, suite = built
    bad = _synthetic_like(frame, profile)
    bad.loc[0, "age"] = 500
    validation = validate_contract(bad, suite, data_docs_dir=tmp_path / "gx")
    assert validation.data_docs_index.exists() and validation.data_docs_index.name == "index.html"
    pages = list(validation.data_docs_index.parent.rglob("*.html"))
    validation_pages = [p for p in pages if "validations" in p.parts]
    assert len(validation_pages) == 1
    assert "expect_column_values_to_be_between" in validation_pages[0].read_text() or "500" in validation_pages[0].read_text()


def test_booleans_with_gaps_and_numbers_stored_as_text_keep_their_contract():
    frame = pd.DataFrame({
        "flag": [True, False, None, True] * 15,
        "dose": ["1.5", "2.0", "3.25", "0.5"] * 15,
        "ward": ["A", "B", "C", None] * 15,
    })
    profile = profile_dataframe(frame, column_types={"dose": "numeric_continuous"})
    assert profile.column("flag").semantic_type == "boolean" and profile.column("flag").allowed_values == [False, True]
    suite = expectation_suite(profile, "edge_contract")
    check_suite_on_source(frame, profile, suite)
    decoded = _synthetic_like(frame, profile)
    assert decoded["flag"].tolist()[:4] == [True, False, None, True]
    assert decoded["dose"].tolist()[:4] == [1.5, 2.0, 3.25, 0.5]
    assert decoded["ward"].isna().sum() == 15
    assert validate_contract(decoded, suite).failed == []
