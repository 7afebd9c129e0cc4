"""synth_platform: a Dagster asset graph that turns a sensitive table into a useful, private synthetic table."""

import os

# Idle OpenMP threads sleep instead of spinning, so concurrent torch processes (tuning workers, a test beside a run)
# share the cores; set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
