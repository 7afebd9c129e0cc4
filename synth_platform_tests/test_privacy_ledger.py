"""The privacy ledger on its own (no Dagster): which table a spend is on, how spends sum, when a step is refused,
on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from synth_platform import privacy_ledger
from synth_platform.privacy_ledger import LEDGER_TABLE, LedgerRefusal, PrivacyLedger, Spend, source_id, source_id_before_read
from synth_platform.sampling.credentials import mask_url
from synth_platform_tests.conftest import fresh_pg_database

TABLE = "postgresql://db.hospital.internal:5432/ehr#ward.admissions"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        yield PrivacyLedger(f"sqlite:///{tmp_path / 'tuning_memory.sqlite3'}")
    else:
        with fresh_pg_database() as url:
            yield PrivacyLedger(url)


# --- which table ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "postgresql+psycopg2://reader:s3cret-Pa55@DB.Hospital.Internal/ehr?sslmode=require&sslpassword=k3y-pass",
    "postgresql://reader:s3cret-Pa55@db.hospital.internal:5432/ehr?password=s3cret-Pa55",
    "postgres://reader:s3cret@Pa55@db.hospital.internal/ehr",  # a raw `@` in the password
    "postgresql+psycopg2://db.hospital.internal/ehr?passfile=/home/reader/.pgpass-s3cret",
])
def test_the_source_id_names_database_and_table_and_never_a_credential(url):
    named = source_id(url, "ward.admissions")
    assert named == TABLE
    assert "reader" not in named and "s3cret" not in named and "Pa55" not in named and "?" not in named
    assert source_id_before_read(url, "ward.admissions") == TABLE  # qualified: known without connecting


def test_spellings_of_one_table_agree_and_other_tables_differ(tmp_path):
    assert source_id("postgresql://h/db", "public.t") == source_id("postgresql+psycopg2://u:p@H:5432/db", "public.t")
    assert source_id("postgresql://h/db", "public.t") != source_id("postgresql://h:5433/db", "public.t")
    assert source_id("postgresql://h/db", "public.t") != source_id("postgresql://h/db2", "public.t")
    assert source_id("postgresql://h/db", "public.t") != source_id("postgresql://h/db", "other.t")
    path = tmp_path / "source.sqlite"
    assert source_id(f"sqlite:///{path}", "main.adult") == f"sqlite:///{path}#main.adult"
    assert source_id(mask_url("postgresql://u:longer-secret@h/db"), "public.t") == source_id("postgresql://h/db", "public.t")


def test_an_unqualified_name_is_known_before_the_read_only_where_no_search_path_decides(tmp_path):
    assert source_id_before_read(f"sqlite:///{tmp_path}/s.sqlite", "adult") == f"sqlite:///{tmp_path}/s.sqlite#main.adult"
    assert source_id_before_read("postgresql://h/db", "admissions") is None  # the search_path decides: after the read
    assert source_id_before_read("not a database url", "adult") is None  # the read refuses it on its own
    with pytest.raises(ValueError, match="cannot be parsed") as refused:
        source_id("postgresql://u:s3cret@[::1/db", "t")
    assert "s3cret" not in str(refused.value)


# --- sums and refusals ------------------------------------------------------------------------------------------


def test_the_ledger_sums_and_refuses_past_a_budget_of_1_after_a_noised_read_and_a_dp_run_of_0_6(ledger):
    """The issue's example: a table with a budget of 1.0, a noised read of 0.6, then a DP run of 0.6."""
    ledger.check(TABLE, 0.6, 1.0, "a noised read")
    first = ledger.record(Spend(TABLE, "run-1", "source_sample", "noised_read", 0.6, "bounded Laplace noise on ['age']"))
    assert ledger.spent(TABLE) == 0.6
    with pytest.raises(LedgerRefusal) as refused:
        ledger.check(TABLE, 0.6, 1.0, "the final dpgan fit at ε = 0.6")
    message = str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert TABLE in message and "the final dpgan fit" in message
    assert "0.6 spent + 0.6 planned = 1.2 > the table's budget of ε = 1.0" in message
    assert "noised_read ε = 0.6 (run run-1)" in message  # what was spent, by kind, with its runs
    assert "privacy_budget_epsilon" in message and "ops.tuned_hyperparameters.config.epsilon" in message
    assert "stop spending on this table" in message
    (entry,) = ledger.entries(TABLE)  # the refused step recorded nothing
    assert (entry.id, entry.run_id, entry.kind, entry.epsilon) == (first, "run-1", "noised_read", 0.6) and entry.created_at
    ledger.check(TABLE, 0.4, 1.0)  # exactly up to the budget is allowed (0.6 + 0.4 sums to 1.0 within rounding)


def test_spends_of_every_kind_and_run_add_up_per_table(ledger):
    spends = [Spend(TABLE, "run-1", "source_sample", "noised_read", 0.1),
              Spend(TABLE, "run-2", "tuned_hyperparameters", "dp_tuning", 0.2),
              Spend(TABLE, "run-2", "synthetic_table", "dp_training", 0.1),
              Spend("sqlite:////elsewhere.sqlite#main.adult", "run-3", "source_sample", "noised_read", 5.0)]
    for spend in spends:
        ledger.record(spend)
    assert ledger.spent(TABLE) == pytest.approx(0.4) and ledger.spent("postgresql://h:5432/db#public.none") == 0.0
    assert [e.kind for e in ledger.entries(TABLE)] == ["noised_read", "dp_tuning", "dp_training"]
    standing = ledger.standing(TABLE, 0.5, "run-2").to_dict()
    assert standing["spent_before_this_run"] == pytest.approx(0.1) and standing["this_run"] == pytest.approx(0.3)
    assert standing["total"] == pytest.approx(0.4) and standing["remaining"] == pytest.approx(0.1)
    assert standing["by_kind"] == {"noised_read": 0.1, "dp_tuning": 0.2, "dp_training": 0.1}
    assert standing["runs"] == 2 and len(standing["entries"]) == 3
    assert "Σ" in standing["composition"] and "basic composition" in standing["composition"]


def test_a_budget_of_0_never_refuses_but_every_spend_is_recorded(ledger):
    for run in range(3):
        ledger.check(TABLE, 10.0, 0.0)
        ledger.record(Spend(TABLE, f"run-{run}", "synthetic_table", "dp_training", 10.0))
    assert ledger.spent(TABLE) == 30.0
    standing = ledger.standing(TABLE, 0.0).to_dict()
    assert standing["remaining"] is None and standing["budget"].startswith("no limit")


def test_a_step_that_spends_nothing_is_never_refused_even_over_budget(ledger):
    ledger.record(Spend(TABLE, "run-1", "source_sample", "noised_read", 2.0))
    ledger.check(TABLE, 0.0, 1.0)  # a budget lowered below what was spent does not stop steps without DP
    assert ledger.standing(TABLE, 1.0).remaining == pytest.approx(-1.0)  # shown as over
    with pytest.raises(LedgerRefusal):
        ledger.check(TABLE, 0.1, 1.0)


@pytest.mark.parametrize("spend, message", [
    (Spend(TABLE, "r", "s", "dp_magic", 0.1), "kind must be one of"),
    (Spend(TABLE, "r", "s", "noised_read", -0.1), "finite number ≥ 0"),
    (Spend(TABLE, "r", "s", "noised_read", math.nan), "finite number ≥ 0"),
    (Spend(TABLE, "r", "s", "noised_read", math.inf), "finite number ≥ 0"),
    (Spend("", "r", "s", "noised_read", 0.1), "names its source table"),
])
def test_a_malformed_spend_is_refused_before_it_is_stored(tmp_path, spend, message):
    ledger = PrivacyLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    with pytest.raises(ValueError, match=message):
        ledger.record(spend)
    assert ledger.entries(TABLE) == []


@pytest.mark.parametrize("planned, budget", [(-1.0, 1.0), (math.nan, 1.0), (0.5, -1.0), (0.5, math.inf)])
def test_a_malformed_plan_or_budget_is_refused(tmp_path, planned, budget):
    with pytest.raises(ValueError, match="must be a finite number"):
        PrivacyLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}").check(TABLE, planned, budget)


def test_no_credential_reaches_the_stored_rows(ledger):
    url = "postgresql+psycopg2://reader:s3cret-Pa55@db.hospital.internal/ehr?sslmode=require&password=s3cret-Pa55"
    ledger.record(Spend(source_id(url, "ward.admissions"), "run-1", "source_sample", "noised_read", 0.5))
    engine = sa.create_engine(ledger.url)
    try:
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {LEDGER_TABLE}"))]
    finally:
        engine.dispose()
    assert len(rows) == 1 and rows[0]["source"] == TABLE
    assert "s3cret" not in str(rows) and "reader" not in str(rows)


def test_the_ledger_repr_masks_its_database_password():
    assert "s3cret" not in repr(PrivacyLedger("postgresql://u:s3cret@h/db"))


def test_a_refusal_lists_at_most_some_runs_per_kind():
    entries = [Spend(TABLE, f"run-{i}", "source_sample", "noised_read", 0.1) for i in range(privacy_ledger.SHOWN_RUNS + 3)]
    refused = privacy_ledger.refusal(TABLE, 0.5, 1.0, entries, "a read")
    assert refused is not None and "and 3 more" in str(refused) and "ε = 1.3 is spent already" in str(refused)
