"""Each asset invoked directly, with real resources on temporary storage."""

import json

import dagster as dg
import pytest

from synth_platform.assets import (
    GenerationConfig,
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


@pytest.fixture(scope="module")
def chain(storage):
    """The five assets called one after the other, as the job would."""
    ctx = _context(storage)
    sample = _value(source_sample(ctx, SourceSampleConfig(max_rows=500, seed=1)))
    profile = _value(profiled_dataset(dg.build_asset_context(), sample))
    tuned = _value(tuned_hyperparameters(_context(storage), TuningConfig(n_trials=1, trial_steps=10, tuning_rows=200), profile))
    synthetic = _value(synthetic_table(_context(storage), GenerationConfig(training_steps=10, num_rows=200), profile, tuned))
    report = _value(privacy_utility_report(_context(storage), ReportConfig(privacy_rows=100), sample, profile, synthetic))
    return sample, profile, tuned, synthetic, report


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
    assert tuned.params["epsilon"] == 1.0


def test_synthetic_table_has_the_source_columns(chain):
    sample, synthetic = chain[0], chain[3]
    assert list(synthetic.frame.columns) == sample.columns and len(synthetic.frame) == 200


def test_report_is_json_with_every_metric_and_written_to_disk(chain, storage):
    report = chain[4]
    for name in ("ks_mean", "tvd_mean", "correlation_delta", "exact_copy_rate", "dcr_share",
                 "dcr_synthetic_to_holdout_median", "membership_inference_auc", "tstr_score"):
        assert report["metrics"][name] is not None
    assert report["generator"]["plugin"] == "ddpm"
    assert json.loads((storage.reports_dir / "latest.json").read_text())["run_id"] == report["run_id"]


def test_missing_table_fails_clearly(storage):
    with pytest.raises(SourceError, match="Table 'patients' not found"):
        source_sample(_context(storage), SourceSampleConfig(table="patients"))


def test_unknown_plugin_fails_before_any_training(chain, storage):
    with pytest.raises(Exception, match="Unknown generator 'gpt4'"):
        tuned_hyperparameters(_context(storage), TuningConfig(plugin="gpt4"), chain[1])


def test_threshold_out_of_range_fails_before_any_work(chain, storage):
    sample, profile, _, synthetic, _ = chain
    with pytest.raises(ValueError, match="ks_mean_max must lie in"):
        privacy_utility_report(_context(storage), ReportConfig(ks_mean_max=5.0), sample, profile, synthetic)
