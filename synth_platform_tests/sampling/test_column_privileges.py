"""A PostgreSQL role granted SELECT on some columns only (`GRANT SELECT (age, ward) ON t TO r`) reads those: the
others are left out with the reason and the GRANT that would add them, a request naming one is refused with that
GRANT, and the seeded hash names rows by readable columns only. Before, every read failed with "permission denied
for table" (the query hashed the primary key or ctid, or selected every column)."""

import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from synth_platform.sampling import audit
from synth_platform.sampling.source import Filter, SampleRequest, SourceError, read_sample

from ..conftest import admin_url_of, fresh_pg_database

ROWS = 1_000


@pytest.fixture(scope="module")
def column_grants():
    """Table `admissions` (id primary key, mrn, age, ward, charge) and view `admissions_view` over it; a login role
    with SELECT on (age, ward, charge) of the table and (age, ward) of the view, and a role with no grant at all.
    Yields (URL as the column reader, URL as the role without grants, the table as a DataFrame)."""
    reader, nobody = f"synth_test_cols_{uuid.uuid4().hex[:8]}", f"synth_test_none_{uuid.uuid4().hex[:8]}"
    frame = pd.DataFrame({
        "id": range(1, ROWS + 1),
        "mrn": [f"MRN{i:06d}" for i in range(ROWS)],
        "age": [18 + (i * 37) % 70 for i in range(ROWS)],
        "ward": [("cardiology", "oncology", "maternity")[i % 3] for i in range(ROWS)],
        "charge": [round(100 + (i * 7919) % 5000 / 3, 2) for i in range(ROWS)],
    })
    with fresh_pg_database() as url:
        engine = sa.create_engine(url)
        frame.to_sql("admissions", engine, index=False)
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE admissions ADD PRIMARY KEY (id)")
            conn.exec_driver_sql("CREATE VIEW admissions_view AS SELECT id, mrn, age, ward FROM admissions")
        engine.dispose()
        admin = sa.create_engine(admin_url_of(url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for role in (reader, nobody):
                conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
            conn.exec_driver_sql(f'GRANT SELECT (age, ward, charge) ON admissions TO "{reader}"')
            conn.exec_driver_sql(f'GRANT SELECT (age, ward) ON admissions_view TO "{reader}"')
        try:
            yield (sa.make_url(url).set(username=reader).render_as_string(hide_password=False),
                   sa.make_url(url).set(username=nobody).render_as_string(hide_password=False), frame)
        finally:
            with admin.connect() as conn:
                for role in (reader, nobody):
                    conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
                    conn.exec_driver_sql(f'DROP ROLE "{role}"')
            admin.dispose()


def _rows(sample):
    return pd.concat([sample.training, sample.holdout]).reset_index(drop=True)


def test_a_role_with_column_grants_reads_those_columns_seeded(column_grants, audit_url):
    url, _, frame = column_grants
    role = sa.make_url(url).username

    def read(seed, table="admissions", **more):
        return read_sample(url, SampleRequest(table=table, max_rows=100, seed=seed, **more), audit_url=audit_url)

    first = read(1)
    assert first.columns == ["age", "ward", "charge"] and first.rows_returned == 100
    assert set(first.left_out_columns) == {"id", "mrn"}
    for column in ("id", "mrn"):
        assert f"GRANT SELECT ({column}) ON public.admissions TO {role}" in first.left_out_columns[column]
        assert "no SELECT privilege" in first.left_out_columns[column]
    assert "thin_pct" in first.parameters  # thinned (TABLESAMPLE: 100 of 1,000), ordered by a hash of readable columns
    assert "CAST(row(" in first.query_shape and "ctid" not in first.query_shape and "admissions.id" not in first.query_shape
    pd.testing.assert_frame_equal(_rows(first), _rows(read(1)))
    assert not _rows(first).equals(_rows(read(2)))
    assert first.source_types == {"age": "bigint", "ward": "text", "charge": "double precision"}

    fraction = read_sample(url, SampleRequest(table="admissions", sample_fraction=0.3, seed=3), audit_url=audit_url)
    assert 200 < fraction.rows_returned < 400 and "TABLESAMPLE" in fraction.query_shape
    strat = read(4, stratify_by="ward", filters=(Filter("age", ">=", 30),))
    assert (_rows(strat)["age"] >= 30).all()
    got = _rows(strat)["ward"].value_counts()
    assert got.sum() == 100 and got.max() - got.min() <= 1  # three equal wards

    view = read(5, table="admissions_view")
    assert view.columns == ["age", "ward"] and set(view.left_out_columns) == {"id", "mrn"}
    assert not _rows(view).equals(_rows(read(6, table="admissions_view")))
    # every row read matches a real (age, ward) of the table: the values are the role's, not mixed up
    real = set(map(tuple, frame[["age", "ward"]].values))
    assert set(map(tuple, _rows(view)[["age", "ward"]].values)) <= real
    assert all(r["outcome"] == "ok" for r in audit.read_records(audit_url))


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"columns": ("age", "mrn")}, "columns"),
        ({"filters": (Filter("id", "<", 10),)}, "filters"),
        ({"filters": (Filter("mrn", "is not null"),)}, "filters"),
        ({"stratify_by": "id"}, "stratify_by"),
    ],
)
def test_naming_a_column_the_role_may_not_read_is_refused_with_the_grant(column_grants, audit_url, fields, where):
    url, _, _ = column_grants
    role = sa.make_url(url).username
    with pytest.raises(SourceError, match=rf"may not read \(no SELECT privilege on them\): \['(id|mrn)'\], in {where}") as refused:
        read_sample(url, SampleRequest(table="admissions", max_rows=50, **fields), audit_url=audit_url)
    assert f"GRANT SELECT (" in str(refused.value) and f"ON public.admissions TO {role};" in str(refused.value)
    assert "permission denied" not in str(refused.value)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused"


def test_a_role_without_any_grant_is_told_what_to_grant(column_grants, audit_url):
    _, url, _ = column_grants
    with pytest.raises(SourceError, match=r"No column of 'admissions' can be read.*no SELECT privilege"):
        read_sample(url, SampleRequest(table="admissions", max_rows=50), audit_url=audit_url)
