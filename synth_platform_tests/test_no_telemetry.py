"""Nothing leaves the machine: the libraries' usage telemetry is off wherever the platform runs (the main job, the
CLI, the MLflow UI), not only under pytest (MLflow turns its own off when it sees a test or CI variable, which hid this)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CI_VARIABLES = ("PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CI", "CIRCLECI", "GITLAB_CI", "JENKINS_URL", "TRAVIS",
                "TF_BUILD", "BITBUCKET_BUILD_NUMBER", "CODEBUILD_BUILD_ID", "BUILDKITE", "MLFLOW_DISABLE_TELEMETRY",
                "DO_NOT_TRACK")


def test_importing_the_platform_turns_mlflow_telemetry_off_outside_tests():
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    code = "import synth_platform; from mlflow.telemetry.utils import is_telemetry_disabled; print(is_telemetry_disabled())"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_the_makefile_and_both_dagster_instances_turn_telemetry_off():
    makefile = (REPO / "Makefile").read_text()
    assert "export MLFLOW_DISABLE_TELEMETRY := true" in makefile and "export DO_NOT_TRACK := true" in makefile
    for name in ("dagster.yaml", "dagster.postgres.yaml"):
        assert yaml.safe_load((REPO / name).read_text())["telemetry"] == {"enabled": False}, name
