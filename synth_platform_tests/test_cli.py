"""The README's main command, `make materialize`, in a temporary DAGSTER_HOME (tiny training through CONFIG)."""

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from synth_platform_tests.conftest import REPO, TINY_RUN_CONFIG


def test_cli_materializes_the_whole_graph(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    config = copy.deepcopy(TINY_RUN_CONFIG)
    # Smoke test of the mechanics: thresholds at 1.0 so that tiny training passes every check and the CLI exits 0.
    config["ops"]["privacy_utility_report"]["config"].update(
        ks_mean_max=1.0, correlation_delta_max=1.0, mia_auc_max=1.0, exact_copy_rate_max=1.0
    )
    completed = subprocess.run(
        ["make", "materialize", f"CONFIG={json.dumps(config)}"],
        cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home), "TQDM_DISABLE": "1"},
        capture_output=True, text=True, timeout=1200,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-5000:]
    assert "RUN_SUCCESS" in output and "== table adult: adult_synthesis_job" in output
    report = json.loads((home / "synth_platform" / "reports" / "latest.json").read_text())
    assert report["all_green"] is True
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        # A run a person can read in the UI: the table's job, with its tags (not __ASSET_JOB).
        assert run.job_name == "adult_synthesis_job" and run.tags["synth_platform/table"] == "adult"
        for key in ("source_sample", "profiled_dataset", "tuned_hyperparameters", "synthetic_table", "privacy_utility_report"):
            assert instance.get_latest_materialization_event(dg.AssetKey(["adult", key])).run_id == run.run_id


def test_workspace_yaml_loads_the_code_location(tmp_path):
    """What `dagster dev -w workspace.yaml` (make ui) loads: the location must validate without errors."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    dagster = Path(sys.executable).with_name("dagster")
    completed = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "synth_platform" in completed.stdout + completed.stderr
