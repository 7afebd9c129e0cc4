"""A run that records its worker and then hangs, for the test that kills it with -9 (test_run_workers.py).

python -m synth_platform_tests.helpers.hanging_run <ready file>: DAGSTER_HOME must name the instance. When the run
is executing, its run id is written to the ready file."""

import sys
import time
from pathlib import Path

import dagster as dg

from synth_platform.resources import PlatformStorage


@dg.asset
def hangs(context: dg.AssetExecutionContext, platform_storage: PlatformStorage) -> None:
    platform_storage.workspace(context.run_id).mkdir(parents=True)
    Path(sys.argv[1]).write_text(context.run_id)
    time.sleep(600)


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        dg.materialize([hangs], instance=instance, resources={"platform_storage": PlatformStorage()})
