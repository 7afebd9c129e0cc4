"""Sensor evaluations as the daemon runs them, for tests and benchmarks that drive the auto-optimizer by hand."""

import dagster as dg


def optimizer_tick(instance: dg.DagsterInstance, cursor: str | None = None, definitions: dg.Definitions | None = None,
                   table: str = "adult"):
    """One evaluation of `table`'s auto-optimizer sensor on `instance`, with the resources it needs from
    `definitions` (default: the platform's)."""
    from synth_platform.definitions import defs
    from synth_platform.sensors import auto_optimizer_sensor_name

    definitions = definitions or defs
    auto_optimizer_sensor = definitions.resolve_sensor_def(auto_optimizer_sensor_name(table))
    resources = {key: definitions.resources[key] for key in ("auto_optimizer", "platform_storage")}
    return auto_optimizer_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=definitions, resources=resources))
