import sqlite3

import pandas as pd
import pytest
import sqlalchemy as sa

from synth_platform.sampling.source import (
    EMBEDDED_TABLE,
    SampleRequest,
    SourceError,
    ensure_embedded_source,
    mask_url,
    read_sample,
)


@pytest.fixture(scope="module")
def embedded_url(tmp_path_factory):
    return ensure_embedded_source(tmp_path_factory.mktemp("src") / "embedded.sqlite")


def test_embedded_source_is_built_once_from_the_bundled_adult_data(tmp_path, adult):
    path = tmp_path / "embedded.sqlite"
    url = ensure_embedded_source(path)
    assert url == f"sqlite:///{path}"
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT count(*) FROM {EMBEDDED_TABLE}").fetchone()[0] == len(adult) == 48_842
    mtime = path.stat().st_mtime_ns
    ensure_embedded_source(path)
    assert path.stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".embedded-")]


def test_split_is_seeded_disjoint_and_complete(embedded_url):
    request = SampleRequest(table="adult", max_rows=1000, holdout_fraction=0.25, seed=7)
    first, again = read_sample(embedded_url, request), read_sample(embedded_url, request)
    assert (len(first.training), len(first.holdout)) == (750, 250)
    pd.testing.assert_frame_equal(first.training, again.training)
    pd.testing.assert_frame_equal(first.holdout, again.holdout)
    other = read_sample(embedded_url, SampleRequest(table="adult", max_rows=1000, holdout_fraction=0.25, seed=8))
    assert not first.training.equals(other.training)
    assert first.rows_in_table == 48_842
    assert first.fingerprint.startswith("adult-")


def test_holdout_rows_are_not_in_training(tmp_path):
    frame = pd.DataFrame({"row": range(200), "value": [i % 7 for i in range(200)]})
    url = f"sqlite:///{tmp_path / 'numbers.sqlite'}"
    frame.to_sql("numbers", sa.create_engine(url), index=False)
    sample = read_sample(url, SampleRequest(table="numbers", seed=1))
    assert set(sample.training["row"]).isdisjoint(sample.holdout["row"])
    assert set(sample.training["row"]) | set(sample.holdout["row"]) == set(range(200))


def test_selected_columns_only(embedded_url):
    sample = read_sample(embedded_url, SampleRequest(table="adult", columns=("age", "income"), max_rows=100))
    assert sample.columns == ["age", "income"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (SampleRequest(table="patients"), r"Table 'patients' not found .* Available tables: \['adult'\]"),
        (SampleRequest(table="adult", columns=("age", "salary")), r"Columns \['salary'\] do not exist in table 'adult'"),
        (SampleRequest(table="adult", holdout_fraction=1.5), "holdout_fraction must lie strictly between 0 and 1"),
        (SampleRequest(table="adult", max_rows=5), "max_rows must be at least 20"),
        (SampleRequest(table=""), "No table given"),
    ],
)
def test_bad_requests_fail_with_a_clear_message(embedded_url, request_, message):
    with pytest.raises(SourceError, match=message):
        read_sample(embedded_url, request_)


def test_empty_table_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE visits (id INTEGER, age INTEGER)")
    with pytest.raises(SourceError, match="is empty"):
        read_sample(url, SampleRequest(table="visits"))


def test_password_is_masked():
    assert mask_url("postgresql+psycopg2://alice:s3cret@db.example/h") == "postgresql+psycopg2://alice:***@db.example/h"
    assert "s3cret" not in mask_url("postgresql://alice:s3cret@db/h")


def test_reads_a_schema_qualified_table_from_postgresql(pg_database, adult_small):
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA ward")
    adult_small.to_sql("patients", engine, schema="ward", index=False)
    engine.dispose()
    sample = read_sample(pg_database, SampleRequest(table="ward.patients", columns=("age", "sex", "income"), seed=3))
    assert len(sample.training) + len(sample.holdout) == len(adult_small)
    assert sample.columns == ["age", "sex", "income"]
    assert sorted(pd.concat([sample.training, sample.holdout])["age"]) == sorted(adult_small["age"])
    with pytest.raises(SourceError, match="not found"):
        read_sample(pg_database, SampleRequest(table="ward.missing"))
