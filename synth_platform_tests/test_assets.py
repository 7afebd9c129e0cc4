"""Each asset invoked directly, with real resources on temporary storage."""

import copy
import json
import re
from pathlib import Path

import dagster as dg
import pytest

from synth_platform.assets import (
    GenerationConfig,
    ProfileConfig,
    ReportConfig,
    SourceSampleConfig,
    TuningConfig,
    privacy_utility_report,
    profiled_dataset,
    source_sample,
    synthetic_table,
    tuned_hyperparameters,
)
from synth_platform.resources import PlatformStorage, SourceDatabase
from synth_platform.sampling.source import SourceError


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return PlatformStorage(root=str(tmp_path_factory.mktemp("platform")))


def _context(storage, **more):
    return dg.build_asset_context(resources={"platform_storage": storage, "source_database": SourceDatabase(), **more})


def _value(output):
    return output.value if isinstance(output, dg.Output) else output


def _tune(storage, config: TuningConfig, profile, **materialize):
    """tuned_hyperparameters is a graph of steps (open, trials fanned out, choice): it is materialized, not invoked,
    on the given profiled dataset (an asset that returns it)."""

    @dg.asset(name="profiled_dataset")
    def given_profile():
        return profile

    result = dg.materialize([given_profile, tuned_hyperparameters], resources={"platform_storage": storage},
                            run_config={"ops": {"tuned_hyperparameters": {"config": config.model_dump()}}}, **materialize)
    return result.output_for_node("tuned_hyperparameters") if result.success else result


@pytest.fixture(scope="module")
def chain(storage):
    """The five assets called one after the other, as the job would."""
    ctx = _context(storage)
    sample = _value(source_sample(ctx, SourceSampleConfig(max_rows=500, seed=1)))
    profile = _value(profiled_dataset(_context(storage), ProfileConfig(), sample))
    tuned = _tune(storage, TuningConfig(n_trials=1, trial_steps=10, tuning_rows=200), profile)
    synthetic = _value(synthetic_table(_context(storage), GenerationConfig(training_steps=10, num_rows=200), profile, tuned))
    # As under `make ui`, whose file server shows the report pages: the report links to its page.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNTH_FILES_URL", "http://127.0.0.1:3001")
        report = privacy_utility_report(_context(storage), ReportConfig(privacy_rows=100), sample, profile, synthetic)
    return sample, profile, tuned, synthetic, report  # the report's dg.Output: its value and its metadata


def test_source_sample_reads_the_embedded_adult_table(chain, storage):
    sample = chain[0]
    assert (len(sample.training), len(sample.holdout)) == (400, 100)
    assert (storage.root_path / "embedded_source.sqlite").exists()


def test_profiled_dataset_holds_no_holdout_rows(chain):
    sample, profile = chain[0], chain[1]
    assert not hasattr(profile, "holdout")
    assert len(profile.encoded_training) == len(sample.training)
    assert not profile.encoded_training.isna().any().any()


def test_tuned_hyperparameters_records_the_study(chain, storage):
    tuned = chain[2]
    assert tuned.plugin == "ddpm" and tuned.trials_this_run == 1
    assert tuned.storage == f"sqlite:///{storage.root_path / 'optuna.sqlite3'}"
    assert "epsilon" not in tuned.params  # ddpm is not differentially private: no epsilon in its parameters


def test_synthetic_table_has_the_source_columns(chain):
    sample, synthetic = chain[0], chain[3]
    assert list(synthetic.frame.columns) == sample.columns and len(synthetic.frame) == 200


def test_report_is_json_with_every_metric_and_written_to_disk(chain, storage):
    report, metadata = chain[4].value, chain[4].metadata
    for name in ("ks_mean", "tvd_mean", "correlation_delta", "exact_copy_rate", "dcr_share",
                 "dcr_synthetic_to_holdout_median", "membership_inference_auc", "tstr_score"):
        assert report["metrics"][name] is not None
    assert report["generator"]["plugin"] == "ddpm"
    assert json.loads((storage.reports_dir / "latest.json").read_text())["run_id"] == report["run_id"]
    assert {"verdicts", "headline_plot", "report_html", "report_path"} <= set(metadata)
    assert len(metadata["verdicts"].records) == 6  # the four "all green" thresholds and the two fidelity checks
    assert report["metrics"]["tstr_ratio"] is not None and isinstance(report["fidelity_green"], bool)
    # Under the file server the headline plot is a short image link to its PNG beside the page, under the 1,000
    # characters below which Dagster shows a markdown entry inline (else behind a "[Show Markdown]" click).
    headline_url = f"http://127.0.0.1:3001/runs/{report['run_id']}/privacy_utility_report_headline.png"
    assert metadata["headline_plot"].value == f"![Checks: value, 95% interval and threshold]({headline_url})"
    assert len(metadata["headline_plot"].value) < 1000
    png = storage.run_dir(report["run_id"]) / "privacy_utility_report_headline.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_mode & 0o777 == 0o600
    html_path = Path(metadata["report_html"].value)
    assert html_path == Path(report["html_path"]) and html_path.name == "privacy_utility_report.html"
    assert html_path.read_text() == (storage.reports_dir / "latest.html").read_text()
    assert 'data-plot="marginals"' in html_path.read_text()
    # A link that opens from the UI (a URL on make ui's file server), beside the path to copy.
    assert metadata["report_page"].value == f"http://127.0.0.1:3001/runs/{report['run_id']}/privacy_utility_report.html"


def test_without_the_file_server_the_headline_plot_is_embedded(chain, tmp_path, monkeypatch):
    """`dagster asset materialize` alone: no server to show a PNG file, so none is written and the entry embeds the
    plot as a data: URL (Dagster shows it behind "[Show Markdown]")."""
    sample, profile, _, synthetic, computed = chain
    alone = PlatformStorage(root=str(tmp_path))
    monkeypatch.delenv("SYNTH_FILES_URL", raising=False)
    output = privacy_utility_report(_context(alone), ReportConfig(privacy_rows=100), sample, profile, synthetic)
    headline = output.metadata["headline_plot"].value
    assert headline.startswith("![Checks: value, 95% interval and threshold](data:image/png;base64,")
    assert "report_page" not in output.metadata
    assert not list((tmp_path / "runs").rglob("*.png"))


def test_a_report_that_cannot_be_rendered_leaves_no_file(chain, tmp_path, monkeypatch):
    sample, profile, _, synthetic, computed = chain
    empty = PlatformStorage(root=str(tmp_path))

    def broken(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr("synth_platform.evaluation.report.build_report", lambda *args, **kwargs: copy.deepcopy(computed.value))
    monkeypatch.setattr("synth_platform.evaluation.html_report.render_html_report", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        privacy_utility_report(_context(empty), ReportConfig(privacy_rows=100), sample, profile, synthetic)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_missing_table_fails_clearly(storage):
    with pytest.raises(SourceError, match="Table 'patients' not found"):
        source_sample(_context(storage), SourceSampleConfig(table="patients"))


def test_unknown_plugin_fails_before_any_training(chain, storage):
    failed = _tune(storage, TuningConfig(plugin="gpt4"), chain[1], raise_on_error=False)
    (failure,) = failed.get_step_failure_events()
    assert failure.step_key == "tuned_hyperparameters.open_study_step"
    assert re.search(r"ops.tuned_hyperparameters.config.plugin: must be one of \['ddpm'.*got 'gpt4'", failure.event_specific_data.error.message)
    assert not any(e.step_key and "run_trials" in e.step_key for e in failed.all_events)  # no trial started


def test_trials_fanned_out_over_steps_on_one_sqlite_study_are_refused_before_any_trial(chain, storage):
    failed = _tune(storage, TuningConfig(n_trials=2, fan_out=2), chain[1], raise_on_error=False)
    (failure,) = failed.get_step_failure_events()
    assert failure.step_key == "tuned_hyperparameters.open_study_step"
    message = failure.event_specific_data.error.message
    assert "ops.tuned_hyperparameters.config.fan_out" in message and "SYNTH_OPTUNA_STORAGE" in message
    assert not any(e.step_key and "run_trials" in e.step_key for e in failed.all_events)


def test_threshold_out_of_range_fails_before_any_work(chain, storage):
    sample, profile, _, synthetic, _ = chain
    with pytest.raises(dg.Failure, match=r"ops.privacy_utility_report.config.ks_mean_max: must lie in \[0, 1\], got 5.0"):
        privacy_utility_report(_context(storage), ReportConfig(ks_mean_max=5.0), sample, profile, synthetic)


def test_source_sample_metadata_shows_the_query_shape_and_its_audit_record(tmp_path, pg_database, adult_small, monkeypatch):
    import sqlalchemy as sa

    from synth_platform.sampling.audit import read_records

    adult_small.to_sql("patients", sa.create_engine(pg_database), index=False)
    source_url = sa.make_url(pg_database).set(password="s3cret").render_as_string(hide_password=False)
    storage = PlatformStorage(root=str(tmp_path))
    ctx = dg.build_asset_context(
        resources={"platform_storage": storage, "source_database": SourceDatabase(url=source_url)}
    )
    config = SourceSampleConfig(
        table="patients", max_rows=200, seed=2, stratify_by="sex", sensitive_columns=["race"],
        filters=[{"column": "race", "op": "in", "value_env": "SYNTH_TEST_RACES"}, {"column": "age", "op": ">=", "value": 18}],
    )
    monkeypatch.setenv("SYNTH_TEST_RACES", '["White", "Black"]')  # JSON: a list for `in`
    output = source_sample(ctx, config)
    assert "race" not in output.value.columns and output.value.withheld_columns == ["race"]
    metadata = output.metadata
    assert output.value.rows_returned == metadata["rows_returned"].value == 200
    assert metadata["rows_in_table"].value == len(adult_small)
    assert "LIMIT" in metadata["query_shape"].value and "%(f0)s" not in metadata["query_shape"].value  # expanding IN
    assert metadata["query_parameters"].data["f0"] == "<redacted>" and metadata["query_parameters"].data["f1"] == 18
    assert metadata["audit_database"].value == f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    (record,) = read_records(storage.audit_database_url())
    assert record["id"] == metadata["audit_record_id"].value and record["outcome"] == "ok" and record["rows_returned"] == 200
    shown = " ".join(str(value.value) for value in metadata.values()) + str(record)
    assert "s3cret" not in shown and "White" not in shown and "Black" not in shown

    with pytest.raises(SourceError, match="do not exist") as refused:
        source_sample(ctx, SourceSampleConfig(table="patients", columns=["age", "password"]))
    assert "s3cret" not in str(refused.value)
    assert [r["outcome"] for r in read_records(storage.audit_database_url())] == ["ok", "refused"]


def test_a_sensitive_filter_value_written_into_the_run_config_is_refused(monkeypatch):
    """Dagster stores the run config in its run storage: a sensitive value there is already disclosed. The value
    must come by name, from the environment, and a missing variable is named."""
    literal = SourceSampleConfig(sensitive_columns=["race"], filters=[{"column": "race", "op": "=", "value": "White"}])
    with pytest.raises(ValueError, match=r"sensitive column 'race' has its value in the run config.*value_env") as refused:
        literal.to_request()
    assert "White" not in str(refused.value)
    by_name = SourceSampleConfig(sensitive_columns=["race"], filters=[{"column": "race", "op": "=", "value_env": "SYNTH_TEST_RACE"}])
    monkeypatch.delenv("SYNTH_TEST_RACE", raising=False)
    with pytest.raises(ValueError, match="environment variable 'SYNTH_TEST_RACE', which is not set"):
        by_name.to_request()
    monkeypatch.setenv("SYNTH_TEST_RACE", "White")
    assert by_name.to_request().filters[0].value == "White"
    monkeypatch.setenv("SYNTH_TEST_RACE", "42")
    assert by_name.to_request().filters[0].value == 42  # JSON when it parses


def test_workspaces_left_by_ended_runs_are_removed_and_active_ones_kept(tmp_path):
    """A run that fails or is killed leaves its workspace (generator files, the sealed trial setup with training
    rows); the next tuning removes those of runs that have ended, never of runs still going."""
    from synth_platform.assets import _run_is_active

    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        @dg.asset
        def tiny() -> int:
            return 1

        finished = dg.materialize([tiny], instance=instance).run_id
        started = instance.add_run(dg.DagsterRun(job_name="j", run_id="b" * 36, status=dg.DagsterRunStatus.STARTED)).run_id
        storage = PlatformStorage(root=str(tmp_path / "platform"))
        for run_id in (finished, started, "unknown-run", "this-run"):
            (storage.workspace(run_id)).mkdir(parents=True)
            (storage.workspace(run_id) / "trial_setup.pkl").write_bytes(b"sealed rows")
        removed = storage.remove_stale_workspaces(lambda run_id: _run_is_active(instance, run_id, "this-run", unknown_is_active=False))
        assert sorted(removed) == sorted([finished, "unknown-run"])
        assert storage.workspace(started).exists() and storage.workspace("this-run").exists()
        shared = storage.remove_stale_workspaces(lambda run_id: _run_is_active(instance, run_id, "x", unknown_is_active=True))
        assert shared == []  # unknown ids are kept when the root may be shared


def test_a_fit_that_keeps_diverging_ends_the_step_with_its_diagnosis(chain, storage):
    """A learning rate no halving rescues (ddpm at 1e30: the loss is not finite from the first steps) used to end in
    `ValueError: found NaNs in sample` after the whole fit; the step now ends with the generator's diagnosis, as the
    failure's message and metadata and as diagnosis.json in the run's directory."""
    import dataclasses
    import json

    profile, tuned = chain[1], chain[2]
    diverging = dataclasses.replace(tuned, plugin="ddpm", params={**tuned.params, "lr": 1e30})
    ctx = _context(storage)
    with pytest.raises(dg.Failure) as failed:
        synthetic_table(ctx, GenerationConfig(training_steps=20, num_rows=100), profile, diverging)
    diagnosis = failed.value.metadata["diagnosis"].data
    assert (diagnosis["stage"], diagnosis["reason"]) in {("training", "nan_loss"), ("sampling", "nan_draws")}
    assert diagnosis["plugin"] == "ddpm" and diagnosis["suggestion"].lower() in str(failed.value).lower()
    written = json.loads((storage.run_dir(ctx.run_id) / "diagnosis.json").read_text())
    assert written["reason"] == diagnosis["reason"]
