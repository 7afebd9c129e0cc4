"""The privacy ledger on real runs: the assets check a table's budget before they spend, record what they spent,
and show the table's standing in their metadata and the report."""

from __future__ import annotations

import contextlib
import json

import dagster as dg
import pytest
import sqlalchemy as sa

from synth_platform.assets import ALL_ASSETS
from synth_platform.generation import generators
from synth_platform.io_managers import SealedFilesystemIOManager
from synth_platform.privacy_ledger import PrivacyLedger
from synth_platform.resources import PlatformStorage, SourceDatabase
from synth_platform.sampling.audit import read_records
from synth_platform_tests.conftest import fresh_pg_database, tiny_config

NOISE = {"noise_epsilon": 0.6, "noise_bounds": [{"column": "age", "lower": 17, "upper": 90}]}
SPENDING_ASSETS = ("source_sample", "profiled_dataset", "tuned_hyperparameters", "synthetic_table")


def _assets(*names: str) -> list:
    return [a for a in ALL_ASSETS if a.key.to_user_string() in names]


def _config(*names: str, **ops: dict) -> dict:
    """The tiny run config of the `names` assets only (a run may configure only the assets it materializes)."""
    config = tiny_config(**ops)
    config["ops"] = {name: section for name, section in config["ops"].items() if name in names}
    return config


@contextlib.contextmanager
def _platform(kind: str, tmp_path, adult_small):
    """Resources and the table name: the embedded SQLite source with the ledger in SQLite, or a PostgreSQL source
    whose URL holds a password, read by an unqualified name (its schema comes from the search_path, known only
    after the read), with the ledger in another PostgreSQL database."""
    storage = SealedFilesystemIOManager(base_dir=str(tmp_path / "storage"))
    if kind == "sqlite":
        yield {"source_database": SourceDatabase(), "platform_storage": PlatformStorage(root=str(tmp_path / "platform")),
               "io_manager": storage}, "adult"
        return
    with fresh_pg_database() as source_url, fresh_pg_database() as ledger_url:
        adult_small.to_sql("patients", sa.create_engine(source_url), index=False)
        with_password = sa.make_url(source_url).set(password="s3cret-Pa55").render_as_string(hide_password=False)
        yield {"source_database": SourceDatabase(url=with_password),
               "platform_storage": PlatformStorage(root=str(tmp_path / "platform"), tuning_memory_url=ledger_url),
               "io_manager": storage}, "patients"


def _failure(result) -> tuple[str, str]:
    (failure,) = result.get_step_failure_events()
    return failure.step_key, failure.event_specific_data.error.message


def _ledger_metadata(result, asset: str) -> dict:
    return result.asset_materializations_for_node(asset)[0].metadata["privacy_ledger"].data


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_table_with_a_budget_of_1_refuses_a_dp_run_of_0_6_after_a_noised_read_of_0_6(kind, tmp_path, adult_small, monkeypatch):
    fits = []

    def no_fit(*args, **kwargs):
        fits.append(kwargs)
        raise AssertionError("a refused run must not fit anything")

    with _platform(kind, tmp_path, adult_small) as (resources, table), dg.instance_for_test() as instance:
        ledger = PrivacyLedger(resources["platform_storage"].tuning_memory_database_url())
        audit_url = resources["platform_storage"].audit_database_url()
        budget = {"table": table, "privacy_budget_epsilon": 1.0}

        # A noised read of 0.6: within the budget, recorded.
        read = dg.materialize(_assets("source_sample"), instance=instance, resources=resources,
                              run_config=_config("source_sample", source_sample={**budget, **NOISE}))
        (spend,) = ledger.entries(_ledger_metadata(read, "source_sample")["source"])
        source = spend.source
        assert (spend.run_id, spend.step, spend.kind, spend.epsilon) == (read.run_id, "source_sample", "noised_read", 0.6)
        shown = _ledger_metadata(read, "source_sample")
        assert (shown["budget_epsilon"], shown["spent_before_this_run"], shown["this_run"], shown["total"]) == (1.0, 0.0, 0.6, 0.6)
        assert shown["remaining"] == pytest.approx(0.4) and "basic composition" in shown["composition"]
        assert source.endswith("#main.adult" if kind == "sqlite" else "#public.patients")
        assert "s3cret" not in json.dumps(shown) and "s3cret" not in str(ledger.entries(source))

        # A dpgan run at ε = 0.6 on the same table: 0.6 + 0.6 > 1.0, refused before the final fit.
        monkeypatch.setattr(generators, "fit_generator", no_fit)
        dp = {"plugin": "dpgan", "epsilon": 0.6, "n_trials": 0}
        refused = dg.materialize(_assets(*SPENDING_ASSETS), instance=instance, resources=resources, raise_on_error=False,
                                 run_config=_config(*SPENDING_ASSETS, source_sample=budget, tuned_hyperparameters=dp))
        step, message = _failure(refused)
        assert step == "synthetic_table" and fits == []
        assert f"The privacy budget of table {source} refuses the final dpgan fit at ε = 0.6" in message
        assert "0.6 spent + 0.6 planned = 1.2 > the table's budget of ε = 1.0" in message
        assert f"noised_read ε = 0.6 (run {read.run_id})" in message and "s3cret" not in message
        assert "privacy_budget_epsilon" in message and "smaller epsilon" in message

        # With tuning trials, the study is refused first: each trial would fit a DP model on the tuning rows.
        tuned = dg.materialize(_assets(*SPENDING_ASSETS), instance=instance, resources=resources, raise_on_error=False,
                               run_config=_config(*SPENDING_ASSETS, source_sample=budget, tuned_hyperparameters={**dp, "n_trials": 1}))
        step, message = _failure(tuned)
        assert step == "tuned_hyperparameters.open_study_step" and fits == []  # the tuning graph's first step: no trial step ran
        assert "tuning 1 DP trial(s) of dpgan at ε = 0.6 each" in message and "0.6 spent + 0.6 planned = 1.2" in message

        # Another noised read of 0.6 is refused too: before the read where the table is named without connecting
        # (SQLite), right after it (an unqualified PostgreSQL name), before any noised row is used or shown.
        reads_before = len(read_records(audit_url))
        again = dg.materialize(_assets("source_sample"), instance=instance, resources=resources, raise_on_error=False,
                               run_config=_config("source_sample", source_sample={**budget, **NOISE}))
        step, message = _failure(again)
        assert step == "source_sample" and "0.6 spent + 0.6 planned = 1.2" in message
        assert len(read_records(audit_url)) == reads_before + (0 if kind == "sqlite" else 1)

        # Nothing lost, nothing recorded for the refused runs.
        assert ledger.entries(source) == [spend]
        assert ledger.spent(source) == 0.6


def test_a_budget_of_0_records_every_spend_and_never_refuses(tmp_path, adult_small):
    with _platform("sqlite", tmp_path, adult_small) as (resources, table), dg.instance_for_test() as instance:
        runs = [dg.materialize(_assets("source_sample"), instance=instance, resources=resources,
                               run_config=_config("source_sample", source_sample={**NOISE, "noise_epsilon": 5.0}))
                for _ in range(2)]
        shown = _ledger_metadata(runs[1], "source_sample")
        assert (shown["budget_epsilon"], shown["spent_before_this_run"], shown["this_run"], shown["total"]) == (0.0, 5.0, 5.0, 10.0)
        assert shown["remaining"] is None and shown["budget"].startswith("no limit")
        ledger = PrivacyLedger(resources["platform_storage"].tuning_memory_database_url())
        assert [e.run_id for e in ledger.entries(shown["source"])] == [r.run_id for r in runs]


def test_a_dp_run_within_the_budget_records_its_trials_and_its_fit_and_the_report_shows_the_ledger(tmp_path, adult_small):
    """One run spends three ways on a table with a budget of 2.0: a noised read (0.6), one DP tuning trial (0.5)
    and the DP final fit (0.5); each step shows the standing after its spend, and the report all of it."""
    names = (*SPENDING_ASSETS, "privacy_utility_report")
    with _platform("sqlite", tmp_path, adult_small) as (resources, table), dg.instance_for_test() as instance:
        run = dg.materialize(_assets(*names), instance=instance, resources=resources, run_config=_config(
            *names, source_sample={**NOISE, "privacy_budget_epsilon": 2.0},
            tuned_hyperparameters={"plugin": "dpgan", "epsilon": 0.5, "n_trials": 1, "trial_steps": 4},
            synthetic_table={"training_steps": 4}))
        source = _ledger_metadata(run, "source_sample")["source"]
        entries = PrivacyLedger(resources["platform_storage"].tuning_memory_database_url()).entries(source)
        assert [(e.step, e.kind, e.epsilon, e.run_id) for e in entries] == [
            ("source_sample", "noised_read", 0.6, run.run_id),
            ("tuned_hyperparameters", "dp_tuning", 0.5, run.run_id),
            ("synthetic_table", "dp_training", 0.5, run.run_id),
        ]
        assert "1 DP trial(s) of dpgan" in entries[1].detail and "δ = " in entries[2].detail
        assert _ledger_metadata(run, "tuned_hyperparameters")["total"] == pytest.approx(1.1)
        best_params = run.asset_materializations_for_node("tuned_hyperparameters")[0].metadata["best_params"].value
        assert best_params["epsilon"] == 0.5  # a DP plugin's choice carries its policy
        assert _ledger_metadata(run, "synthetic_table")["total"] == pytest.approx(1.6)
        report = run.output_for_node("privacy_utility_report")
        ledger = report["privacy_ledger"]
        assert ledger["source"] == source and ledger["budget_epsilon"] == 2.0
        assert ledger["this_run"] == pytest.approx(1.6) and ledger["spent_before_this_run"] == 0.0
        assert ledger["remaining"] == pytest.approx(0.4)
        assert ledger["by_kind"] == {"noised_read": 0.6, "dp_tuning": 0.5, "dp_training": 0.5}
        assert _ledger_metadata(run, "privacy_utility_report") == ledger
        written = json.loads((resources["platform_storage"].reports_dir / "latest.json").read_text())
        assert written["privacy_ledger"]["total"] == pytest.approx(1.6)


def test_each_table_of_the_tables_file_has_its_own_ledger_and_budget(tmp_path, adult_small, pg_database, monkeypatch):
    """Two tables' chains from one tables file, each with its source and a budget of 1.0 from its entry: a second
    noised read of 0.6 is refused on the table that spent 0.6, while the other table's first read goes through;
    each chain shows only its own table's spends."""
    from synth_platform.table_chains import build_table_chains
    from synth_platform.tables import parse_tables

    engine = sa.create_engine(pg_database)
    adult_small.to_sql("admissions", engine, index=False)
    adult_small.to_sql("billing", engine, index=False)
    engine.dispose()
    monkeypatch.setenv("SYNTH_TEST_HOSPITAL_URL", pg_database)
    chains = {chain.spec.name: chain for chain in build_table_chains(parse_tables({"tables": [
        {"name": name, "table": name, "source_url_env": "SYNTH_TEST_HOSPITAL_URL", "privacy_budget_epsilon": 1.0,
         "config": {"source_sample": NOISE}} for name in ("admissions", "billing")]}))}
    resources = {"source_database": SourceDatabase(), "platform_storage": PlatformStorage(root=str(tmp_path / "platform")),
                 "io_manager": SealedFilesystemIOManager(base_dir=str(tmp_path / "storage"))}

    def read(table: str):
        chain = chains[table]
        with dg.instance_for_test() as instance:
            return dg.materialize(chain.assets, selection=[chain.key("source_sample")], instance=instance,
                                  resources=resources, raise_on_error=False)

    first = read("admissions")
    assert first.success
    shown = _ledger_metadata(first, "source_sample")
    assert (shown["budget_epsilon"], shown["total"]) == (1.0, 0.6)  # the budget from the table's entry
    refused = read("admissions")
    assert not refused.success
    _, message = _failure(refused)
    assert "0.6 spent + 0.6 planned = 1.2 > the table's budget of ε = 1.0" in message
    other = read("billing")
    assert other.success
    shown = _ledger_metadata(other, "source_sample")
    assert (shown["spent_before_this_run"], shown["total"]) == (0.0, 0.6) and "admissions" not in json.dumps(shown)
