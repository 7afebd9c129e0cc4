"""Rare values and extremes never leave the profiler, and the disclosure search finds every value that must not be
released: identifiers, rare categories, values beyond the coded range, sensitive filter values."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from synth_platform.profiling.contract import expectation_suite
from synth_platform.profiling.disclosure import SecretDigests, find_disclosures
from synth_platform.profiling.profile import (
    OTHER_VALUE, ProfileError, apply_disclosure_control, decode_from_generation, encode_for_generation, profile_dataframe,
)
from synth_platform_tests.profiling.built_tables import patients

BUILT = {"column_treatments": {"notes": "drop"}}


def _probe(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A table with a category seen once, one seen four times, and a one-row numeric outlier."""
    rng = np.random.default_rng(seed)
    ward = rng.choice(["north", "south", "east"], n).astype(object)
    ward[7] = "Zanzibar Annex"  # seen once
    ward[[11, 12, 13, 14]] = "quarantine"  # seen four times: below k = 5
    income = rng.normal(40_000, 8_000, n).round(2)
    income[3] = 987_654_321.5  # one row's outlier
    return pd.DataFrame({"ward": ward, "income": income, "age": rng.integers(18, 90, n)})


def test_rare_categories_are_generalised_and_extremes_coded_before_anything_else():
    frame = _probe()
    profile = profile_dataframe(frame)
    ward, income = profile.column("ward"), profile.column("income")
    assert set(ward.allowed_values) == {"north", "south", "east", OTHER_VALUE}
    assert (ward.rare_values_generalised, ward.rows_generalised) == (2, 5)
    ranked = np.sort(frame["income"])
    assert (income.minimum, income.maximum) == (ranked[4], ranked[-5])  # the 5th smallest and largest values
    assert income.rows_top_coded == 4 and income.rows_bottom_coded == 4
    controlled = apply_disclosure_control(frame, profile)
    assert (controlled["ward"] == OTHER_VALUE).sum() == 5
    assert controlled["income"].max() == ranked[-5] and 987_654_321.5 not in controlled["income"].values
    published = json.dumps(profile.to_dict()) + json.dumps(expectation_suite(profile, "probe"))
    for canary in ("Zanzibar", "quarantine", "987654321"):
        assert canary not in published
    encoded = encode_for_generation(frame, profile)  # generators never see the raw values, whatever they are given
    assert "Zanzibar Annex" not in set(encoded["ward"]) and encoded["income"].max() == ranked[-5]


def test_turning_the_rule_off_publishes_the_rare_values():
    """The mutation the end-to-end canary test relies on: with k = 1 every canary is published again."""
    profile = profile_dataframe(_probe(), rare_value_k=1)
    published = json.dumps(profile.to_dict())
    assert "Zanzibar Annex" in published and "987654321" in published


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    values=st.lists(st.integers(-10**9, 10**9), min_size=12, max_size=120),
    k=st.integers(1, 6),
)
def test_every_published_bound_is_shared_by_at_least_k_rows(values, k):
    assume(len(set(values)) >= 3)  # fewer distinct integers are profiled as a category
    frame = pd.DataFrame({"x": values, "y": np.arange(len(values)) % 3})
    column = profile_dataframe(frame, rare_value_k=k, detect_orderings=False).column("x")
    raw = np.array(values)
    assert (raw <= column.minimum).sum() >= min(k, len(raw) // 2)
    assert (raw >= column.maximum).sum() >= min(k, len(raw) // 2)
    controlled = apply_disclosure_control(frame, profile_dataframe(frame, rare_value_k=k, detect_orderings=False))["x"]
    assert controlled.min() >= column.minimum and controlled.max() <= column.maximum


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    categories=st.lists(st.sampled_from(list("abcdefgh")), min_size=20, max_size=150),
    k=st.integers(2, 8),
    handling=st.sampled_from(["other", "missing"]),
)
def test_no_published_or_generated_category_is_seen_in_fewer_than_k_rows(categories, k, handling):
    frame = pd.DataFrame({"c": categories, "n": np.arange(len(categories), dtype=float)})
    profile = profile_dataframe(frame, rare_value_k=k, rare_category_handling=handling, detect_orderings=False)
    counts = pd.Series(categories).value_counts()
    published = [v for v in profile.column("c").allowed_values or [] if v != OTHER_VALUE]
    assert all(counts[v] >= k for v in published)
    encoded = encode_for_generation(frame, profile)
    decoded = decode_from_generation(encoded, profile)  # whatever a generator emits maps back into the published set
    assert set(decoded["c"].dropna()) <= set(published) | {OTHER_VALUE}
    if handling == "missing":
        assert OTHER_VALUE not in (profile.column("c").allowed_values or [])


def test_bad_disclosure_settings_are_refused_with_the_fix():
    frame = _probe()
    with pytest.raises(ProfileError, match="rare_value_k must be a whole number of at least 1"):
        profile_dataframe(frame, rare_value_k=0)
    with pytest.raises(ProfileError, match="rare_category_handling"):
        profile_dataframe(frame, rare_category_handling="drop")
    with pytest.raises(ProfileError, match=r"sensitive_columns names column\(s\) \['nope'\]"):
        profile_dataframe(frame, sensitive_columns=["nope"])


def test_sensitive_columns_are_modelled_but_their_values_never_published():
    frame = _probe()
    profile = profile_dataframe(frame, sensitive_columns=["ward", "income"])
    assert profile.column("ward").modelled and profile.column("ward").allowed_values  # kept for generation
    published = json.dumps(profile.to_dict()) + json.dumps(expectation_suite(profile, "probe"))
    for value in ("north", "south", "east", str(profile.column("income").maximum)):
        assert value not in published
    private = profile.to_dict(published=False)
    assert "north" in json.dumps(private)


def _synthetic_like(frame, profile):
    return decode_from_generation(encode_for_generation(frame, profile), profile)


def test_the_platforms_own_coding_discloses_nothing_and_copies_are_found():
    frame = patients()
    frame.loc[5, "diagnosis"] = "X99"  # a category seen once
    profile = profile_dataframe(frame, **BUILT)
    clean = _synthetic_like(frame, profile)
    assert find_disclosures(clean, frame, profile).passed
    leaky = clean.copy()
    leaky.loc[0, "diagnosis"] = frame.loc[7, "email"]  # an e-mail of a dropped column, in another column
    leaky.loc[1, "diagnosis"] = "x99 "  # the singleton, as a generator without the rule would emit it
    leaky.loc[2, "smoker"] = frame.loc[3, "full_name"].upper()  # a dropped name, case changed
    leaky.loc[3, "age"] = int(frame["age"].max()) + 1  # beyond the coded range
    found = find_disclosures(leaky, frame, profile)
    assert found.identifier_values == {"diagnosis": 1, "smoker": 1}
    assert found.rare_values == {"diagnosis": 1}
    assert found.beyond_coded_range == {"age": 1}
    assert not found.passed and found.cells == 4
    shown = found.summary() + json.dumps(found.to_dict())
    assert frame.loc[7, "email"] not in shown and "x99" not in shown.lower() and frame.loc[3, "full_name"] not in shown


def test_a_category_shared_with_an_identifier_is_not_a_leak():
    """A surname "White" (a dropped identifier) and the race "White" (a common category): race's own value."""
    n = 200
    frame = pd.DataFrame({
        "last_name": ["White", "Black", "Smith", "Jones"] * (n // 4),
        "race": ["White", "Black"] * (n // 2),
        "age": np.arange(n) % 70 + 18,
    })
    profile = profile_dataframe(frame)
    assert profile.column("last_name").semantic_type == "identifier"
    synthetic = _synthetic_like(frame, profile)
    assert find_disclosures(synthetic, frame, profile).passed
    synthetic.loc[0, "race"] = "Smith"
    assert find_disclosures(synthetic, frame, profile).identifier_values == {"race": 1}


def test_sensitive_filter_values_are_found_by_digest_only():
    secrets = SecretDigests.of(["HIV positive", 250])
    # Only salted SHA-256 digests are kept (hex text: "250" can occur inside one by chance, the value itself not).
    assert "HIV positive" not in repr(secrets) and not {"250", "hiv positive"} & set(secrets.digests)
    assert all(len(d) == 64 and set(d) <= set("0123456789abcdef") for d in secrets.digests)
    table = pd.DataFrame({"a": ["hiv positive ", "negative", None], "b": [250, 1, 2]})
    assert find_disclosures(table, table.assign(a="x"), profile_dataframe(table.fillna("n")), secret_values=secrets).sensitive_filter_values == {"a": 1, "b": 1}
    assert SecretDigests.of(["x"]).salt != SecretDigests.of(["x"]).salt  # fresh salt: digests of two reads differ


def test_an_identifier_is_modelled_only_with_an_explicit_acknowledgement():
    n = 300
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"last_name": rng.choice(["Fitzgerald", "Blankenship", "Castaneda", "Whitehead", "Mcconnell"], n),
                          "age": rng.integers(18, 90, n)})
    profile = profile_dataframe(frame)
    column = profile.column("last_name")
    assert column.semantic_type == "identifier" and column.treatment == "drop"
    assert column.identifier_reason.startswith("personal names (by its column name")  # the reason, in words
    with pytest.raises(ProfileError, match=r"looks like a direct identifier.*acknowledge_identifiers: \[last_name\]"):
        profile_dataframe(frame, column_types={"last_name": "categorical"})
    with pytest.raises(ProfileError, match="list it in acknowledge_identifiers"):
        profile_dataframe(frame, column_treatments={"last_name": "model"})
    acknowledged = profile_dataframe(frame, column_types={"last_name": "categorical"}, acknowledge_identifiers=["last_name"])
    column = acknowledged.column("last_name")
    assert column.modelled and column.acknowledged_identifier.startswith("personal names")
    assert "modelled as acknowledged in config" in column.handling


def test_a_wide_short_text_column_keeps_only_values_shared_by_k_rows():
    """Job titles: thousands of distinct values, most seen once. Every once-seen title would be a possible verbatim
    output (and makes the one-hot encoding as wide as the column); only titles at least k rows share are kept."""
    rng = np.random.default_rng(2)
    common = [f"title {i}" for i in range(40)]
    once = [f"unique title {i}" for i in range(3000)]
    titles = np.concatenate([rng.choice(common, 5000), once])
    frame = pd.DataFrame({"job": titles, "income": rng.normal(50, 10, len(titles))})
    profile = profile_dataframe(frame)
    job = profile.column("job")
    assert job.semantic_type == "categorical" and job.rare_values_generalised == 3000 and job.rows_generalised == 3000
    assert set(job.allowed_values) == set(common) | {OTHER_VALUE}
    assert encode_for_generation(frame, profile)["job"].nunique() == 41


def test_errors_show_a_bad_value_by_its_shape_only():
    frame = pd.DataFrame({"dose": ["1.5", "2.0", "Smith-42"] * 10})
    with pytest.raises(ProfileError, match=r"shaped 'Aaaaa-99'") as refused:
        profile_dataframe(frame, column_types={"dose": "numeric_continuous"})
    assert "Smith" not in str(refused.value)
