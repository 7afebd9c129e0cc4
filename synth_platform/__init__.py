"""synth_platform: a Dagster asset graph that turns a sensitive table into a useful, private synthetic table."""

import os

# Idle OpenMP threads sleep instead of spinning, so concurrent torch processes (tuning workers, a test beside a run)
# share the cores; set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# MLflow 3 sends usage telemetry over the network unless told not to (a DNS lookup seen under strace on a local
# SQLite store): nothing here may leave the machine.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
