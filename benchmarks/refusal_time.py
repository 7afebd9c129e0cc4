"""How long a user waits to learn that a run's settings are wrong: `dagster asset materialize` with a bad config,
from the command to the message, against the same command with good settings up to the moment tuning starts
(what the old, late refusals cost at the least: they came after tuning, minutes later).

Both arms run the real CLI in a fresh DAGSTER_HOME on the embedded Adult source, as the README's command does.
The bad config carries the late refusals seen on real runs (a seed of 2^32, privacy_rows 0, training_steps -100,
an unknown target column, holdout_fraction 0.99 is left out so the read happens and the target column is checked
against the rows read).

    .venv/bin/python benchmarks/refusal_time.py

Prints, per arm: wall seconds from the command to its exit (bad) or to the first STEP_START of
tuned_hyperparameters (good), whether any tuning or training step started, and the ratio.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAGSTER = Path(sys.executable).with_name("dagster")
BAD = {"ops": {
    "tuned_hyperparameters": {"config": {"seed": 2**32}},
    "synthetic_table": {"config": {"training_steps": -100}},
    "privacy_utility_report": {"config": {"privacy_rows": 0, "target_column": "salary"}},
}}
EXPENSIVE = ("tuned_hyperparameters", "synthetic_table")


def run(config: dict, stop_at_tuning: bool) -> tuple[float, str, int | None]:
    home = Path(tempfile.mkdtemp(prefix="refusal_time_"))
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    command = [str(DAGSTER), "asset", "materialize", "-m", "synth_platform.definitions", "--select", "*", "--config-json", json.dumps(config)]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home), "TQDM_DISABLE": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if stop_at_tuning and 'STEP_START - Started execution of step "tuned_hyperparameters"' in line:
            elapsed = time.perf_counter() - start
            process.kill()
            process.wait()
            shutil.rmtree(home, ignore_errors=True)
            return elapsed, "".join(lines), None
    code = process.wait()
    elapsed = time.perf_counter() - start
    shutil.rmtree(home, ignore_errors=True)
    return elapsed, "".join(lines), code


def main() -> None:
    bad_seconds, output, code = run(BAD, stop_at_tuning=False)
    started = [step for step in EXPENSIVE if f'Started execution of step "{step}"' in output]
    message = output[output.find("The run was refused"):].split("\n\n")[0] if "The run was refused" in output else "(no refusal message)"
    good_seconds, _, _ = run({}, stop_at_tuning=True)
    print(f"bad config: {bad_seconds:.1f} s from the command to the message (exit code {code}); expensive steps started: {started or 'none'}")
    print(message.splitlines()[0] if message else "")
    for line in message.splitlines()[1:]:
        if line.startswith("- "):
            print("  " + line)
    print(f"good config: {good_seconds:.1f} s from the command to the start of tuning (the earliest the old refusals could come)")
    print(f"ratio: the refusal arrives in {bad_seconds / good_seconds:.2f}× the time it takes just to reach tuning")


if __name__ == "__main__":
    main()
