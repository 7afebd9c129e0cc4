"""End to end, through PostgreSQL, real (tiny) ddpm training and a real Dagster instance: canary values planted in a
hospital-style table (real first and last names under `fake_*` names and under an innocent name, a 10-value surname
column, a category seen once, a one-row outlier, a sensitive filter value) are searched for in every file under the
Dagster home (run and event storage, compute logs, sealed asset values, the synthetic table, profile, suite, Data
Docs, reports, audit log, MLflow and Optuna stores) and in every event's metadata: none may be found."""

import json
import struct
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from synth_platform.assets import ALL_ASSETS
from synth_platform.checks import ALL_CHECKS
from synth_platform.definitions import defs
from synth_platform.resources import SourceDatabase

FILTER_ENV = "SYNTH_TEST_CANARY_FILTER"
SECRET_FILTER_VALUE = "Canarypositive-7f3e"
RARE_CATEGORY = "Zzcanary Diagnosis"
OUTLIER = 987_654_321.5
RELIGIONS = ["Religionalpha", "Religionbeta", "Religiongamma"]  # a sensitive column: modelled, never published


def _faker_names(kind: str, count: int, min_length: int) -> list[str]:
    """Real names from Faker's en_US lists, long enough that finding one in a file cannot be a coincidence."""
    from faker.providers.person.en_US import Provider

    names = getattr(Provider, kind)
    names = sorted(names.keys() if isinstance(names, dict) else names)
    long = [name for name in names if len(name) >= min_length and name.isalpha()]
    return long[:: max(1, len(long) // count)][:count]


FIRST_NAMES = _faker_names("first_names", 60, 8)
COL_A_NAMES, FAKE_FIRST_NAMES = FIRST_NAMES[::2], FIRST_NAMES[1::2]
SURNAMES = _faker_names("last_names", 10, 9)
NAME_CANARIES = COL_A_NAMES + FAKE_FIRST_NAMES + SURNAMES


def canary_table(n: int = 900, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    frame = pd.DataFrame({
        "patient_id": rng.permutation(np.arange(500_000, 500_000 + 2 * n))[:n],
        "fake_first_name": rng.choice(FAKE_FIRST_NAMES, n),
        "fake_last_name": rng.choice(SURNAMES, n),
        "col_a": rng.choice(COL_A_NAMES, n),
        "age": age,
        "diagnosis": rng.choice(["I10", "E11", "J45", "K35"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "income": (20_000 + 500 * age + rng.normal(0, 5_000, n)).round(2),
        "religion": rng.choice(RELIGIONS, n),
        "hiv_status": np.where(rng.random(n) < 0.9, SECRET_FILTER_VALUE, "negative"),
    })
    frame.loc[17, "diagnosis"] = RARE_CATEGORY  # seen once
    frame.loc[23, "income"] = OUTLIER  # one row's outlier
    frame.loc[[17, 23], "hiv_status"] = SECRET_FILTER_VALUE  # both rows pass the filter
    return frame


def _run_config(rare_value_k: int = 5) -> dict:
    return {"ops": {
        "source_sample": {"config": {
            "table": "ward.canary_patients", "seed": 1, "sensitive_columns": ["hiv_status", "religion"],
            "filters": [{"column": "hiv_status", "op": "=", "value_env": FILTER_ENV}],
        }},
        "profiled_dataset": {"config": {"rare_value_k": rare_value_k}},
        "tuned_hyperparameters": {"config": {"n_trials": 1, "trial_steps": 20, "tuning_rows": 300}},
        "synthetic_table": {"config": {"training_steps": 30, "num_rows": 400}},
        "privacy_utility_report": {"config": {
            "privacy_rows": 200, "bootstrap_resamples": 20,
            "ks_mean_max": 1.0, "correlation_delta_max": 1.0, "mia_auc_max": 1.0, "exact_copy_rate_max": 1.0,
        }},
    }}


def _needles() -> dict[str, list[bytes]]:
    """Every form a canary can take in a file: its text, and the outlier's float64 / text forms."""
    needles = {name: [name.encode()] for name in NAME_CANARIES}
    needles[RARE_CATEGORY] = [RARE_CATEGORY.encode()]
    needles[SECRET_FILTER_VALUE] = [SECRET_FILTER_VALUE.encode()]
    needles["outlier"] = [b"987654321", struct.pack("<d", OUTLIER), struct.pack(">d", OUTLIER)]
    return needles


def found_in_files(root: Path, needles: dict[str, list[bytes]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for canary, forms in needles.items():
            if any(form in data for form in forms):
                found.setdefault(canary, []).append(str(path.relative_to(root)))
    return found


@pytest.fixture(scope="module")
def canary_source(pg_database_for_module):
    frame = canary_table()
    engine = sa.create_engine(pg_database_for_module)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA ward")
    frame.to_sql("canary_patients", engine, schema="ward", index=False)
    engine.dispose()
    return pg_database_for_module, frame


@pytest.fixture(scope="module")
def canary_run(canary_source, tmp_path_factory):
    url, frame = canary_source
    root = tmp_path_factory.mktemp("dagster_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FILTER_ENV, SECRET_FILTER_VALUE)
        with dg.instance_for_test(temp_dir=str(root)) as instance:
            result = dg.materialize(
                ALL_ASSETS + ALL_CHECKS, instance=instance, run_config=_run_config(), raise_on_error=False,
                resources={**defs.resources, "source_database": SourceDatabase(url=url)},
            )
            events = [record.event_log_entry for record in instance.get_records_for_run(result.run_id, limit=100_000).records]
            run_config = instance.get_run_by_id(result.run_id).run_config
    return result, Path(root), events, run_config, frame


def test_the_probe_plants_its_canaries_where_a_generator_would_see_them(canary_run):
    """Not vacuous: the rare category, the outlier and the names are in the training rows source_sample read."""
    result, *_ = canary_run
    sample = result.output_for_node("source_sample")
    training = sample.training
    assert RARE_CATEGORY in set(training["diagnosis"]) and OUTLIER in set(training["income"])
    assert set(training["col_a"]) <= set(COL_A_NAMES) and training["fake_last_name"].nunique() == 10
    assert "hiv_status" not in training and sample.withheld_columns == ["hiv_status"]


def test_names_are_identifiers_whatever_their_column_name_or_cardinality(canary_run):
    result, *_ = canary_run
    profile = result.output_for_node("profiled_dataset").profile
    identifiers = set(profile.identifiers())
    assert {"fake_first_name", "fake_last_name", "col_a", "patient_id"} <= identifiers
    for name in ("fake_first_name", "fake_last_name", "col_a"):
        assert "personal names" in profile.column(name).identifier_reason  # the reason, in words
        assert profile.column(name).treatment == "drop"


def test_no_canary_is_anywhere_under_the_dagster_home(canary_run):
    result, root, events, run_config, _ = canary_run
    assert result.get_asset_materialization_events(), "the run must have produced something to search"
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["synthetic_table_discloses_no_source_values"].passed
    assert evaluations["synthetic_table_meets_source_contract"].metadata["failed_critical"].value == 0
    assert {"privacy_utility_report", "best_synthetic_table"} <= {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    # The stores the issue names are under the home: run/event storage, MLflow, Optuna, audit log, run folders.
    stores = {p.name for p in root.rglob("*") if p.is_file()}
    assert {"runs.db", "mlflow.db", "optuna.sqlite3", "audit.sqlite3", "profile.json", "expectation_suite.json",
            "synthetic_table.parquet", "privacy_utility_report.html", "index.html"} <= stores
    assert found_in_files(root, _needles()) == {}
    shown = json.dumps([str(event) for event in events]) + json.dumps(run_config)
    assert not [canary for canary, forms in _needles().items() if any(f.decode(errors="ignore") in shown for f in forms[:1])]
    assert FILTER_ENV in json.dumps(run_config)  # the run config names the variable, not the value


def test_sensitive_column_values_are_never_published(canary_run):
    result, root, events, *_ = canary_run
    published = [p for p in root.rglob("*") if p.is_file() and (
        p.suffix in (".json", ".html", ".css", ".js") or "great_expectations" in p.parts)]
    published_text = "".join(p.read_text(errors="ignore") for p in published) + json.dumps([str(e) for e in events])
    assert [value for value in RELIGIONS if value in published_text] == []
    synthetic = result.output_for_node("synthetic_table").frame
    assert set(synthetic["religion"].dropna()) <= set(RELIGIONS)  # modelled: the synthetic table has the column


def test_turning_the_rare_value_rule_off_is_caught_by_the_same_search(canary_source, tmp_path, monkeypatch):
    """The mutation: with rare_value_k = 1 the rare category and the outlier reach profile.json and the suite, and
    the search above finds them (the profiler alone shows it; no generator needed)."""
    url, _ = canary_source
    monkeypatch.setenv(FILTER_ENV, SECRET_FILTER_VALUE)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            ALL_ASSETS[:2], instance=instance, run_config={"ops": {
                key: value for key, value in _run_config(rare_value_k=1)["ops"].items() if key in ("source_sample", "profiled_dataset")}},
            resources={**defs.resources, "source_database": SourceDatabase(url=url)},
        )
    assert result.success
    found = found_in_files(tmp_path, _needles())
    assert any(path.endswith("profile.json") for path in found[RARE_CATEGORY])
    assert any(path.endswith("expectation_suite.json") for path in found["outlier"])
