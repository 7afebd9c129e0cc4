"""Tables as real databases return them, each once a failure: time-zone aware timestamps, DATE columns with
sentinels outside pandas' datetime64[ns], names and values that collide with the encoder's own (x__is_missing,
'__missing__', Age / age / AGE), infinities and 1e300, SQL types from the sampler and Python objects pandas leaves
alone (Decimal, UUID, timedelta, bytes, dicts, lists)."""

import datetime as dt
import decimal
import json
import uuid

import numpy as np
import pandas as pd
import pytest

from synth_platform.profiling.contract import (
    check_suite_on_source, expectation_suite, row_violations, validate_contract,
)
from synth_platform.profiling.profile import (
    MISSING_INDICATOR_SUFFIX, MISSING_TOKEN, DatasetProfile, ProfileError, align_for_comparison,
    apply_disclosure_control, decode_from_generation, encode_for_generation, profile_dataframe,
)

FLOAT32_SAFE = 1e30  # encoded magnitudes generators may square and standardise in float32 (max 3.4e38)


def _round_trip(frame, profile):
    """What a perfect generator gives back: the source rows through the encoder and the decoder."""
    return decode_from_generation(encode_for_generation(frame, profile), profile)


def _contract_holds(frame, profile, name="contract"):
    """The source meets its own suite (warnings included) and its round trip meets it without any failure."""
    suite = expectation_suite(profile, name)
    check_suite_on_source(frame, profile, suite)  # raises ContractError on any failure
    decoded = _round_trip(frame, profile)
    validation = validate_contract(decoded, suite)
    assert validation.failed == [], [f.summary() for f in validation.failed]
    assert not row_violations(decoded, profile).any().any()
    return suite, decoded


# --- 1. time-zone aware datetimes (PostgreSQL timestamptz) --------------------------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_time_zone_aware_datetimes_meet_their_suite_and_come_back_in_their_zone(zone):
    rng = np.random.default_rng(0)
    seen = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 200 * 86_400, 120), unit="s")
    frame = pd.DataFrame({"seen_at": seen.tz_convert(zone), "dose": rng.normal(5, 1, 120)})
    profile = profile_dataframe(frame)
    assert profile.column("seen_at").datetime_timezone == zone
    suite, decoded = _contract_holds(frame, profile)
    assert str(decoded["seen_at"].dtype) == f"datetime64[ns, {zone}]"
    aligned = align_for_comparison(apply_disclosure_control(frame, profile), profile)
    pd.testing.assert_series_equal(decoded["seen_at"], aligned["seen_at"], check_names=False)
    naive = decoded.assign(seen_at=decoded["seen_at"].dt.tz_localize(None))  # the zone lost: a broken type
    assert ("type", ["seen_at"]) in [(f.rule, f.columns) for f in validate_contract(naive, suite).critical_failures]


# --- 2. DATE columns with sentinels --------------------------------------------------------------------------------


def _ends(n=300, seed=0, sentinel_share=0.2, legacy_share=0.05):
    rng = np.random.default_rng(seed)
    dates = [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, n)]
    draw = rng.random(n)
    values = [dt.date(9999, 12, 31) if r < sentinel_share else dt.date(1, 1, 1) if r < sentinel_share + legacy_share else d
              for r, d in zip(draw, dates)]
    return pd.DataFrame({"valid_to": pd.Series(values, dtype=object), "score": rng.normal(0, 1, n)})


def test_a_date_column_with_sentinels_is_modelled_as_dates_not_phone_numbers():
    frame = _ends()
    profile = profile_dataframe(frame)
    column = profile.column("valid_to")
    assert column.semantic_type == "datetime" and column.treatment == "model" and column.identifier_reason == ""
    assert column.datetime_form == "date" and column.datetime_resolution == "day"
    assert [(s["value"], s["rows"]) for s in column.special_values] == [
        ("0001-01-01", int((frame["valid_to"] == dt.date(1, 1, 1)).sum())),
        ("9999-12-31", int((frame["valid_to"] == dt.date(9999, 12, 31)).sum())),
    ]
    assert "9999-12-31" in column.handling and "restored as themselves" in column.handling
    assert pd.Timestamp(column.maximum, unit="s") < pd.Timestamp("2024-01-01")  # the range is the real dates'
    encoded = encode_for_generation(frame, profile)
    assert {profile.indicator("valid_to", "sentinel1"), profile.indicator("valid_to", "sentinel2")} <= set(encoded)
    assert np.isfinite(encoded["valid_to"]).all() and encoded["valid_to"].abs().max() < 2e9  # 2023's seconds, not 9999's
    _, decoded = _contract_holds(frame, profile)
    assert decoded["valid_to"].dtype == object and decoded["valid_to"].map(type).eq(dt.date).all()  # dates, as read
    for sentinel in (dt.date(9999, 12, 31), dt.date(1, 1, 1)):
        assert (decoded["valid_to"] == sentinel).sum() == (frame["valid_to"] == sentinel).sum()


def test_a_sentinel_seen_in_fewer_than_k_rows_becomes_missing_and_the_count_is_stated():
    frame = _ends(sentinel_share=0.0, legacy_share=0.0)
    frame.loc[[3, 8], "valid_to"] = dt.date(9999, 12, 31)  # two rows: fewer than k = 5
    profile = profile_dataframe(frame)
    column = profile.column("valid_to")
    assert column.semantic_type == "datetime" and column.special_values == []
    assert column.rows_special_to_missing == 2 and "2 row(s) of sentinel dates" in column.handling
    assert column.missing_fraction == pytest.approx(2 / len(frame))
    controlled = apply_disclosure_control(frame, profile)
    assert controlled["valid_to"].isna().sum() == 2 and "9999" not in json.dumps(profile.to_dict(), default=str)
    _contract_holds(frame, profile)


def test_a_sentinel_in_iso_text_and_in_a_datetime64_column_are_modelled_too():
    frame = _ends()
    frame["valid_to_text"] = frame["valid_to"].astype(str)
    frame["stamped"] = pd.Series(pd.to_datetime(np.where(frame["valid_to"] == dt.date(1, 1, 1), pd.Timestamp.max, pd.Timestamp("2024-05-01"))))
    frame["stamped"] += pd.to_timedelta(np.arange(len(frame)) % 97, unit="h").where(frame["stamped"] < pd.Timestamp("2030-01-01"), pd.Timedelta(0))
    profile = profile_dataframe(frame, detect_orderings=False)
    assert profile.column("valid_to_text").semantic_type == "datetime" and len(profile.column("valid_to_text").special_values) == 2
    assert profile.column("stamped").datetime_form is None and len(profile.column("stamped").special_values) == 1
    _, decoded = _contract_holds(frame, profile)
    assert (decoded["stamped"] > pd.Timestamp("2262-01-01")).sum() == (frame["stamped"] == pd.Timestamp.max).sum()


# --- 3. the encoder's names and tokens never collide with the source's ----------------------------------------


def test_a_column_named_like_a_missing_indicator_keeps_its_values_and_the_other_its_gaps():
    rng = np.random.default_rng(1)
    x = rng.normal(50, 10, 200)
    x[rng.random(200) < 0.2] = np.nan
    frame = pd.DataFrame({"x": x, f"x{MISSING_INDICATOR_SUFFIX}": rng.integers(0, 4, 200)})
    profile = profile_dataframe(frame)
    encoded = encode_for_generation(frame, profile)
    assert encoded.columns.is_unique and profile.indicator("x") not in frame.columns
    decoded = _round_trip(frame, profile)
    assert decoded["x"].isna().tolist() == frame["x"].isna().tolist()  # not 100 % missing
    assert decoded[f"x{MISSING_INDICATOR_SUFFIX}"].tolist() == frame[f"x{MISSING_INDICATOR_SUFFIX}"].tolist()
    assert profile.indicator("x") in profile.column("x").handling
    assert DatasetProfile.from_dict(json.loads(json.dumps(profile.to_dict()))).indicator("x") == profile.indicator("x")


def test_text_equal_to_the_missing_token_stays_text_and_missing_values_stay_missing():
    values = (["red", "green", MISSING_TOKEN, None] * 40)
    frame = pd.DataFrame({"colour": pd.Series(values, dtype=object), "n": np.arange(160) % 7})
    profile = profile_dataframe(frame)
    column = profile.column("colour")
    assert column.missing_token != MISSING_TOKEN and column.missing_token in column.handling
    assert MISSING_TOKEN in column.allowed_values
    decoded = _round_trip(frame, profile)
    assert decoded["colour"].isna().sum() == 40 and (decoded["colour"] == MISSING_TOKEN).sum() == 40
    _contract_holds(frame, profile)


def test_columns_whose_names_differ_only_by_case_meet_their_contract_and_failures_name_the_right_one():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"Age": rng.integers(0, 10, 200), "age": rng.integers(20, 40, 200), "AGE": rng.choice(["p", "q"], 200)})
    profile = profile_dataframe(frame)
    suite, decoded = _contract_holds(frame, profile)
    bad = decoded.copy()
    bad.loc[0, "age"] = 99
    failed = validate_contract(bad, suite).critical_failures
    assert [(f.rule, f.columns, f.examples) for f in failed] == [("range", ["age"], [99])]


# --- 5. infinities and numbers too large for float32 --------------------------------------------------------------


def _extremes(n=300, seed=3):
    rng = np.random.default_rng(seed)
    reading = rng.normal(0, 1, n)
    kind = rng.random(n)
    reading = np.where(kind < 0.06, np.inf, np.where(kind < 0.1, -np.inf, np.where(kind < 0.16, 1e300, reading)))
    reading[(kind >= 0.16) & (kind < 0.2)] = np.nan
    reading[(kind >= 0.2) & (kind < 0.26)] = -3e299
    return pd.DataFrame({"reading": reading, "other": rng.normal(10, 2, n)})


def test_infinities_and_huge_values_encode_to_finite_float32_safe_numbers_and_decode_back():
    frame = _extremes()
    profile = profile_dataframe(frame)
    column = profile.column("reading")
    assert [(s["state"], s["rows"]) for s in column.special_values] == [
        ("posinf", int(np.isposinf(frame["reading"]).sum())), ("neginf", int(np.isneginf(frame["reading"]).sum())),
    ]
    assert column.transform == "asinh" and "asinh" in column.handling and "inf" in column.handling
    encoded = encode_for_generation(frame, profile)
    numbers = encoded.to_numpy(dtype=float)
    assert np.isfinite(numbers).all() and np.abs(numbers).max() < FLOAT32_SAFE
    as_float32 = encoded.astype(np.float32)  # what a torch generator holds
    assert np.isfinite(as_float32.to_numpy()).all() and np.isfinite(as_float32.to_numpy().astype(np.float32) ** 2).all()
    decoded = decode_from_generation(as_float32, profile)
    source = frame["reading"]
    assert np.isposinf(decoded["reading"]).tolist() == np.isposinf(source).tolist()
    assert np.isneginf(decoded["reading"]).tolist() == np.isneginf(source).tolist()
    assert decoded["reading"].isna().tolist() == source.isna().tolist()
    finite = np.isfinite(source)
    np.testing.assert_allclose(decoded["reading"][finite], source[finite], rtol=1e-4, atol=1e-6)
    _contract_holds(frame, profile)


def test_infinities_seen_in_fewer_than_k_rows_become_missing_with_the_count_stated():
    frame = _extremes()
    frame["reading"] = frame["reading"].replace([np.inf, -np.inf, 1e300, -3e299], 0.5)
    frame.loc[[1, 2], "reading"] = np.inf
    profile = profile_dataframe(frame)
    column = profile.column("reading")
    assert column.special_values == [] and column.rows_special_to_missing == 2 and column.transform is None
    assert "2 row(s) of non-finite values" in column.handling
    encoded = encode_for_generation(frame, profile)
    assert np.isfinite(encoded.to_numpy(dtype=float)).all()
    _contract_holds(frame, profile)


# --- 6. SQL types from the sampler, Python objects, columns left out ------------------------------------------------


def _typed(n=120, seed=4):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "ref": [uuid.UUID(int=int(v)) for v in rng.integers(0, 2**62, n)],
        "ward": rng.choice([f"ward {i} east wing" for i in range(60)], n),  # an enum, though it reads like prose
        "price": [decimal.Decimal(f"{v:.2f}") for v in rng.uniform(1, 100, n)],
        "active": rng.choice(["t", "f"], n).astype(object),
        "stay": pd.to_timedelta(rng.integers(1, 72, n), unit="h"),
        "photo": [bytes([i % 256]) for i in range(n)],
        "attributes": [{"k": int(i)} for i in range(n)],
        "tags": [["a", "b"][: i % 3] for i in range(n)],
        "score": rng.normal(0, 1, n),
    })


def test_sql_types_decide_identifiers_categories_decimals_and_booleans_and_odd_values_are_left_out():
    frame = _typed()
    types = {"ref": "uuid", "ward": "enum", "price": "numeric(10,2)", "active": "boolean", "stay": "interval"}
    profile = profile_dataframe(frame, source_types=types, left_out_columns={"raw_log": "SQL type jsonb: not read"})
    ref = profile.column("ref")
    assert ref.semantic_type == "identifier" and ref.treatment == "surrogate" and "UUIDs (SQL type uuid)" in ref.identifier_reason
    assert profile.column("ward").semantic_type == "categorical" and profile.column("ward").treatment == "model"
    assert profile.column("price").decimals == 2 and profile.column("price").conversion == "decimal"
    assert profile.column("active").semantic_type == "boolean" and profile.column("active").allowed_values == [False, True]
    assert profile.column("stay").conversion == "timedelta" and profile.column("stay").kind == "numeric"
    assert set(profile.left_out_columns) == {"raw_log", "photo", "attributes", "tags"}
    assert profile.left_out_columns["raw_log"] == "SQL type jsonb: not read"
    assert "bytes" in profile.left_out_columns["photo"] and "dict" in profile.left_out_columns["attributes"]
    assert profile.to_dict()["left_out_columns"] == profile.left_out_columns
    assert profile.output_columns() == ["ref", "ward", "price", "active", "stay", "score"]
    encoded = encode_for_generation(frame, profile)
    encoded["price"] += 0.001234  # a generator's numbers are not at the source's scale
    decoded = decode_from_generation(encoded, profile)
    assert (decoded["price"] == decoded["price"].round(2)).all()
    assert decoded["active"].dtype == bool and decoded["active"].tolist() == (frame["active"] == "t").tolist()
    assert pd.api.types.is_timedelta64_dtype(decoded["stay"].dtype)
    assert decoded["stay"].tolist() == frame["stay"].clip(*apply_disclosure_control(frame, profile)["stay"].agg(["min", "max"])).tolist()
    assert decoded["ref"].str.startswith("SYN-").all()
    _contract_holds(frame.drop(columns=["photo", "attributes", "tags"]), profile)


def test_python_objects_pandas_leaves_alone_are_read_or_left_out_never_a_crash():
    rng = np.random.default_rng(5)
    n = 60
    frame = pd.DataFrame({
        "amount": pd.Series([decimal.Decimal(f"{v:.3f}") if i % 7 else None for i, v in enumerate(rng.uniform(0, 9, n))], dtype=object),
        "key": [uuid.uuid5(uuid.NAMESPACE_OID, str(i)) for i in range(n)],
        "wait": pd.Series([dt.timedelta(minutes=int(m)) for m in rng.integers(0, 300, n)], dtype=object),
        "at": pd.Series([dt.time(int(h), 0) for h in rng.integers(0, 24, n)], dtype=object),
        "payload": [bytearray(b"x")] * n,
        "nested": [[1, 2]] * n,
        "complex": np.full(n, 1 + 2j),
        "level": pd.Categorical(rng.choice(["low", "high"], n)),
    })
    profile = profile_dataframe(frame)
    assert profile.column("amount").kind == "numeric" and profile.column("amount").missing_fraction > 0
    assert profile.column("key").semantic_type == "identifier"  # every value a distinct UUID
    assert profile.column("wait").conversion == "timedelta"
    assert profile.column("level").semantic_type == "categorical"
    assert set(profile.left_out_columns) == {"at", "payload", "nested", "complex"}
    decoded = _round_trip(frame, profile)
    assert list(decoded.columns) == ["amount", "key", "wait", "level"]
    assert pd.api.types.is_timedelta64_dtype(decoded["wait"].dtype)
    _contract_holds(frame[["amount", "key", "wait", "level"]], profile)


def test_a_boolean_column_holding_other_values_is_refused_naming_it_without_its_values():
    frame = pd.DataFrame({"active": ["t", "f", "maybe-secret-7"] * 10, "n": range(30)})
    with pytest.raises(ProfileError, match=r"Column 'active' has SQL type boolean .* shaped 'aaaaa-aaaaaa-9'") as raised:
        profile_dataframe(frame, source_types={"active": "boolean"})
    assert "maybe-secret-7" not in str(raised.value)


def test_a_column_both_read_and_left_out_repeated_or_typed_though_left_out_is_refused_with_what_to_do():
    frame = pd.DataFrame({"a": range(30), "b": range(30)})
    with pytest.raises(ProfileError, match=r"left_out_columns names column\(s\) \['a'\] that the table has"):
        profile_dataframe(frame, left_out_columns={"a": "not read"})
    with pytest.raises(ProfileError, match=r"more than one column named \['a'\]"):
        profile_dataframe(pd.concat([frame, frame[["a"]]], axis=1))
    with pytest.raises(ProfileError, match=r"column_types sets the type of column\(s\) \['blob'\].*binary data"):
        profile_dataframe(frame.assign(blob=[b"x"] * 30), column_types={"blob": "categorical"})
    data = pd.DataFrame({"n": np.arange(30) % 4, "blob": [b"x"] * 30})
    assert "blob" in profile_dataframe(data, column_treatments={"blob": "drop"}).left_out_columns


def test_sensitive_special_values_are_withheld_from_the_published_profile():
    frame = _ends()
    profile = profile_dataframe(frame, sensitive_columns=["valid_to"])
    published = json.dumps(profile.to_dict(), default=str)
    assert "9999" not in published and "0001-01-01" not in published and "9999" not in profile.column("valid_to").handling
    assert "9999-12-31" in json.dumps(profile.to_dict(published=False), default=str)
    assert DatasetProfile.from_dict(profile.to_dict(published=False)) == profile


def test_the_samplers_microsecond_timestamps_and_nullable_booleans_come_back_as_read():
    """PostgreSQL timestamps read as datetime64[us] (9999-12-31 23:59:59.999999 fits), timestamptz as
    datetime64[us, UTC], booleans as pandas' nullable "boolean"."""
    rng = np.random.default_rng(6)
    n = 200
    stamps = pd.Series((pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s")).as_unit("us"))
    open_ended = stamps.where(rng.random(n) >= 0.2, pd.Timestamp("9999-12-31 23:59:59.999999").as_unit("us"))
    frame = pd.DataFrame({
        "valid_to": open_ended, "seen_at": stamps.dt.tz_localize("UTC"),
        "flag": pd.array(rng.choice([True, False, None], n), dtype="boolean"), "score": rng.normal(0, 1, n),
    })
    profile = profile_dataframe(frame, source_types={"valid_to": "timestamp", "seen_at": "timestamptz", "flag": "boolean"})
    assert profile.column("valid_to").special_values[0]["value"] == "9999-12-31T23:59:59.999999"
    _, decoded = _contract_holds(frame, profile)
    assert decoded.dtypes.astype(str).tolist() == frame.dtypes.astype(str).tolist()
    assert (decoded["valid_to"] == pd.Timestamp("9999-12-31 23:59:59.999999")).sum() == (frame["valid_to"].dt.year == 9999).sum()
    assert decoded["flag"].isna().sum() == frame["flag"].isna().sum()


def test_modelled_special_values_are_no_disclosure_but_values_beyond_the_range_still_are():
    from synth_platform.profiling.disclosure import find_disclosures

    frame = pd.concat([_ends(), _extremes()["reading"]], axis=1)
    profile = profile_dataframe(frame)
    synthetic = _round_trip(frame, profile)  # sentinel dates and ±inf, each shared by at least k source rows
    assert find_disclosures(synthetic, frame, profile).beyond_coded_range == {}
    synthetic.loc[0, "valid_to"] = dt.date(2030, 6, 1)  # a date beyond the coded range is still found
    assert find_disclosures(synthetic, frame, profile).beyond_coded_range == {"valid_to": 1}


@pytest.mark.parametrize("names", [("age", "AGE"), ("x#2", "y"), ("temp⟨c⟩", "z")])
def test_special_values_of_columns_a_pandas_query_cannot_name_as_given_still_meet_their_suite(names):
    """Found by the any-table property test: columns `age` and `AGE` (validated under stand-in names), with -inf in
    `age`, made the source fail its own suite ("please report it"): the stand-in `age ⟨1⟩` cannot be named in the
    pandas row condition that sets -inf aside. Names a pandas query cannot hold fall back to the row rules."""
    rng = np.random.default_rng(0)
    values = rng.normal(50, 10, 200)
    values[:6] = -np.inf
    frame = pd.DataFrame({names[0]: values, names[1]: rng.integers(18, 90, 200)})
    profile = profile_dataframe(frame)
    training = apply_disclosure_control(frame, profile)
    check_suite_on_source(training, profile, expectation_suite(profile, "t_contract"))  # no ContractError
