"""synth_platform: a Dagster asset graph that turns a sensitive table into a useful, private synthetic table."""
