"""One asset chain per tables.yaml entry: the template chain (`assets.ALL_ASSETS`, `checks.ALL_CHECKS`) copied under
the table's key prefix and group, with the table's jobs, schedule and auto-optimizer sensor.

Why an asset factory over prefixed copies, not partitions: Dagster 1.13 evaluates asset checks per partition, but a
partitioned chain is one chain in the asset graph, with one "latest" report and one check history shared by every
table, and one run config schema. A prefixed copy gives each table its own lineage, check history, report, best
attempt and launchpad, and keeps the op names (`source_sample`, ...), so a table's run config reads the same for
every table. The copies are `AssetsDefinition.with_attributes` of the template, not new code.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from synth_platform.assets import ALL_ASSETS, TABLE_ENTRY_METADATA
from synth_platform.checks import ALL_CHECKS
from synth_platform.jobs import table_jobs
from synth_platform.schedules import synthesis_schedule_for
from synth_platform.sensors import auto_optimizer_sensor_for
from synth_platform.tables import TableSpec, TablesFileError


@dataclass(frozen=True)
class TableChain:
    """A table's definitions: its assets and checks (keys `<table>/<asset>`), jobs, schedule and sensor."""

    spec: TableSpec
    assets: list[dg.AssetsDefinition]
    checks: list[dg.AssetChecksDefinition]
    jobs: tuple[UnresolvedAssetJobDefinition, ...]  # synthesis, resynthesis, best attempt
    schedule: dg.ScheduleDefinition | None
    sensor: dg.SensorDefinition

    def key(self, asset: str) -> dg.AssetKey:
        return chain_key(self.spec.name, asset)


def chain_key(table: str, asset: str) -> dg.AssetKey:
    return dg.AssetKey([table, asset])


def build_table_chain(spec: TableSpec) -> TableChain:
    template_keys = {key for asset in ALL_ASSETS for key in asset.keys}
    renamed = {key: chain_key(spec.name, key.path[-1]) for key in template_keys}
    entry = dg.MetadataValue.json(spec.to_dict())  # env var names and settings, never a URL or password
    assets = [
        asset.with_attributes(
            asset_key_replacements=renamed,
            group_names_by_key={key: spec.name for key in asset.keys},  # keyed by the template's keys
            metadata_by_key={key: {**asset.specs_by_key[key].metadata, TABLE_ENTRY_METADATA: entry} for key in asset.keys},
        )
        for asset in ALL_ASSETS
    ]
    checks = [check.with_attributes(asset_key_replacements=renamed) for check in ALL_CHECKS]
    jobs = table_jobs(spec.name, lambda asset: chain_key(spec.name, asset))
    synthesis, resynthesis, best_attempt = jobs
    schedule = synthesis_schedule_for(spec, synthesis) if spec.schedule else None
    sensor = auto_optimizer_sensor_for(spec, chain_key(spec.name, "privacy_utility_report"), [resynthesis, best_attempt])
    return TableChain(spec, assets, checks, jobs, schedule, sensor)


def chain_named(chains: list[TableChain], table: str) -> TableChain | None:
    """The chain of the table called `table` (a run's table: `attempt_chain.table_of_run`), or None."""
    return next((chain for chain in chains if chain.spec.name == table), None)


def build_table_chains(specs: list[TableSpec]) -> list[TableChain]:
    """The chains of every entry, after checking each entry's settings against its assets' config (a wrong name or
    type fails the code location's load with the entry and the setting named, before any run)."""
    problems = [problem for spec in specs for problem in settings_problems(spec)]
    if problems:
        raise TablesFileError(f"tables.yaml has {len(problems)} problem(s):\n- " + "\n- ".join(problems))
    return [build_table_chain(spec) for spec in specs]


def settings_problems(spec: TableSpec) -> list[str]:
    """What is wrong with an entry's asset settings: unknown names, wrong types, values preflight refuses."""
    from pydantic import ValidationError

    from synth_platform import preflight
    from synth_platform.assets import SourceSampleConfig, _config_classes

    problems, configs = [], {}
    for asset, cls in _config_classes().items():
        settings = spec.settings_of(asset)
        unknown = sorted(set(settings) - set(cls.model_fields))
        for name in unknown:
            problems.append(f"table {spec.name!r}: {asset} has no setting {name!r}; its settings are {sorted(cls.model_fields)}")
        try:
            configs[asset] = cls(**{k: v for k, v in settings.items() if k not in unknown}).model_dump()
        except ValidationError as error:
            for item in error.errors():
                where = ".".join(str(part) for part in item["loc"])
                problems.append(f"table {spec.name!r}: {asset}.{where}: {item['msg']} (got a {type(item.get('input')).__name__})")
    source = SourceSampleConfig(**configs["source_sample"]) if "source_sample" in configs else None
    for item in source.filters if source is not None else []:
        if item.writes_sensitive_value(source.all_sensitive_columns()):  # the value itself is never repeated here
            problems.append(f"table {spec.name!r}: the filter on sensitive column {item.column!r} has its value in "
                            "tables.yaml, which the UI shows as the chain's settings; give the name of an environment "
                            "variable holding it instead (value_env)")
    if not problems:
        problems += [f"table {spec.name!r}: {p.setting.removeprefix('ops.').replace('.config.', '.')}: {p.message}"
                     for p in preflight.config_problems(configs)]
    return problems
