"""tables.yaml: what an entry may hold, every problem reported at once with the entry and the fix, and the order
in which a run's settings are taken (run config, then the table's entry, then the default)."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from synth_platform.tables import (
    DEFAULT_TABLES, DEFAULT_TABLES_FILE, TableSpec, TablesFileError, effective_settings, load_tables, parse_tables,
)


def test_the_repository_file_declares_the_embedded_adult_table():
    (adult,) = load_tables(DEFAULT_TABLES_FILE)
    assert adult.name == "adult" and adult.settings_of("source_sample") == {"table": "adult"}
    assert adult.schedule == "0 3 * * *" and not adult.source_url_env


def test_no_file_means_the_embedded_adult_table(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNTH_TABLES_FILE", raising=False)
    assert load_tables(tmp_path / "missing.yaml") == DEFAULT_TABLES
    monkeypatch.setenv("SYNTH_TABLES_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(TablesFileError, match="SYNTH_TABLES_FILE names .*missing.yaml, which does not exist"):
        load_tables()


def test_shorthands_thresholds_and_config_land_on_their_assets():
    (spec,) = parse_tables({"tables": [{
        "name": "patients", "table": "clinic.patients", "generator": "ctgan", "time_budget_minutes": 5,
        "privacy_budget_epsilon": 2.0, "thresholds": {"ks_mean_max": 0.08}, "source_url_env": "SYNTH_PATIENTS_URL",
        "schedule": "30 2 * * 1", "config": {"synthetic_table": {"num_rows": 1000}, "profiled_dataset": {"rare_value_k": 5}},
    }]})
    assert spec.settings == {
        "source_sample": {"table": "clinic.patients", "privacy_budget_epsilon": 2.0},
        "tuned_hyperparameters": {"plugin": "ctgan"},
        "synthetic_table": {"num_rows": 1000, "time_budget_minutes": 5},
        "privacy_utility_report": {"ks_mean_max": 0.08},
        "profiled_dataset": {"rare_value_k": 5},
    }
    assert TableSpec.from_dict(spec.to_dict()) == spec


def test_every_problem_is_reported_at_once_with_its_entry():
    document = {"tables": [
        {"name": "1st", "table": "a"},
        {"name": "ok", "colour": "red", "source_url_env": "postgresql://u:secret@db/x", "schedule": "daily"},
        {"name": "Twin"}, {"name": "twin"},
        {"name": "both", "generator": "ctgan", "config": {"tuned_hyperparameters": {"plugin": "tvae"}, "report": {}}},
        "not a mapping",
    ]}
    with pytest.raises(TablesFileError) as raised:
        parse_tables(document)
    text = str(raised.value)
    assert "8 problem(s)" in text
    assert "entry 1 ('1st'): `name` must start with a letter" in text
    assert "entry 2 ('ok'): unknown key 'colour'" in text
    assert "`source_url_env` must be the name of an environment variable" in text and "secret" not in text
    assert "`schedule` 'daily' is not a cron expression" in text
    assert "two entries are named 'twin'" in text
    assert "`generator` and `config.tuned_hyperparameters.plugin` both set plugin" in text
    assert "`config.report` is not a configurable asset" in text
    assert "entry 6 is not a mapping" in text


@pytest.mark.parametrize("document", [None, {}, {"tables": []}, {"tables": {"adult": {}}}, ["adult"]])
def test_a_document_without_a_list_of_tables_is_refused(document):
    with pytest.raises(TablesFileError, match="must hold `tables:`"):
        parse_tables(document)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "tables.yaml"
    path.write_text("tables:\n  - name: a\n    table: [unclosed\n")
    with pytest.raises(TablesFileError, match=r"is not valid YAML \(line \d+\)"):
        load_tables(path)


settings = st.dictionaries(st.sampled_from(["table", "max_rows", "seed", "holdout_fraction"]),
                           st.one_of(st.integers(0, 9), st.text(max_size=3)), max_size=4)


@hypothesis_settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(entry=settings, run=settings)
def test_run_config_wins_over_the_entry_and_the_entry_over_the_default(entry, run):
    spec = TableSpec(name="t", settings={"source_sample": entry})
    merged = effective_settings(spec, "source_sample", run)
    assert set(merged) == set(entry) | set(run)
    assert all(merged[k] == run[k] for k in run)
    assert all(merged[k] == entry[k] for k in set(entry) - set(run))
    assert effective_settings(None, "source_sample", run) == run  # the template chain: run config only
    assert effective_settings(spec, "synthetic_table", run) == run  # another asset's entry settings stay its own


def test_the_yaml_round_trip_of_a_written_file(tmp_path):
    path = tmp_path / "tables.yaml"
    path.write_text(yaml.safe_dump({"tables": [{"name": "adult", "table": "adult"}, {"name": "penguins", "table": "penguins",
                                                                                      "schedule": None}]}))
    assert [s.name for s in load_tables(path)] == ["adult", "penguins"]
    assert load_tables(path)[1].schedule == ""
