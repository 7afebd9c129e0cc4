"""The asset chain: source_sample → profiled_dataset → tuned_hyperparameters → synthetic_table → privacy_utility_report.

These are the template: `table_chains.py` copies them under each tables.yaml entry's key prefix and group.

Thin wrappers: each asset turns its config into a call to the pure modules and shows the result as metadata.
"""


import base64
import datetime as dt
import json
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
from dagster._core.errors import DagsterInvalidPropertyError  # what a directly invoked asset raises for context.run
from dagster._core.errors import DagsterInvariantViolationError
import pandas as pd
from pydantic import Field

from synth_platform.evaluation.thresholds import AT_LEAST, RISK_ATTACKS, Thresholds
from synth_platform.generation import generators
from synth_platform.generation.encoder_cache import EncoderCache
from synth_platform.generation.rejection import DEFAULT_MAX_ROUNDS
from synth_platform.generation.table import TRAINING_COPY_RULE, generate_table
from synth_platform.generation.time_budget import DEFAULT_BUDGET_MINUTES, TimeBudget
from synth_platform.profiling.contract import MISSING_RATE_TOLERANCE, check_suite_on_source, expectation_suite
from synth_platform.profiling.profile import (
    OTHER_VALUE, RARE_CATEGORY_HANDLINGS, RARE_VALUE_K, SEMANTIC_TYPES, TREATMENTS, DatasetProfile,
    apply_disclosure_control, encode_for_generation, profile_dataframe,
)
from synth_platform.resources import PlatformStorage, SourceDatabase
from synth_platform.sealed_storage import write_private_text
from synth_platform.sampling.source import (
    DEFAULT_ROW_CAP,
    DEFAULT_STATEMENT_TIMEOUT_S,
    OPERATORS,
    Filter,
    SampleRequest,
    SourceSample,
    mask_url,
    read_sample,
)
from synth_platform.sampling import audit
from synth_platform.sampling.noise import MECHANISM, NoiseBound
from synth_platform.tuning import memory as tuning_memory
from synth_platform.tuning.strategy import OBJECTIVES, PRUNERS, SAMPLERS
from synth_platform import attempt_chain, file_server, preflight, privacy_ledger, tables, ui_links
from synth_platform.tables import TableSpec
from synth_platform.optimizer.attempts import HISTORY_COLUMNS, SCORE_RULE, choose
from synth_platform.optimizer.policy import MODEL_WIDTH_PARAMETER, policy_markdown
from synth_platform.tuning.study import (
    OpenedStudy, PrivacyConstraints, SearchSettings, TuningBudget, TuningResult, abandon_study, close_study, open_study,
    reopened_trials, run_trials,
)
from synth_platform.tuning.workers import WorkerSummary, WorkersFailedError, is_sqlite

ConfigT = TypeVar("ConfigT", bound=dg.Config)


class FilterConfig(dg.Config):
    column: str = Field(description="Column the condition is on (checked against the table's schema).")
    op: str = Field(default="=", description=f"One of {list(OPERATORS)}.")
    value: Any = Field(default=None, description="A value; a list for in / not in; [low, high] for between; none for is (not) null. Never for a sensitive column: use value_env.")
    value_env: str = Field(default="", description="Name of an environment variable holding the value (read as JSON when it parses, else as text), so the value never enters the run config Dagster stores. Required for filters on sensitive columns.")

    def writes_sensitive_value(self, sensitive: set[str]) -> bool:
        """Whether the filter's value is written out (run config, tables.yaml) though its column is sensitive."""
        return not self.value_env and self.column in sensitive and self.value is not None

    def resolve(self, sensitive: set[str]) -> Filter:
        """The filter with its value; refuses a sensitive value written into the run config."""
        if self.value_env and self.value is not None:
            raise ValueError(f"Filter on {self.column!r} gives both value and value_env; give one.")
        if self.value_env:
            return Filter(self.column, self.op, value_from_environment(self.value_env, self.column))
        if self.writes_sensitive_value(sensitive):
            raise ValueError(
                f"The filter on sensitive column {self.column!r} has its value in the run config, which Dagster keeps "
                f"in its run storage. Put the value in an environment variable and give its name instead: "
                f'{{"column": "{self.column}", "op": "{self.op}", "value_env": "SYNTH_FILTER_{_env_name(self.column)}"}}.'
            )
        return Filter(self.column, self.op, self.value)


def _env_name(column: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in column).upper()


def value_from_environment(variable: str, column: str) -> Any:
    """A filter value from the environment: JSON when it parses (numbers, lists, quoted text), else the text."""
    if variable not in os.environ:
        raise ValueError(
            f"The filter on {column!r} takes its value from the environment variable {variable!r}, which is not set "
            "in the environment of the process running the run: set it there (the value itself is never logged)."
        )
    text = os.environ[variable]
    try:
        return json.loads(text)
    except ValueError:
        return text


class NoiseBoundConfig(dg.Config):
    column: str = Field(description="A sensitive numeric column to noise.")
    lower: float = Field(description="Stated lower bound: smaller values are clipped to it before noise is added.")
    upper: float = Field(description="Stated upper bound: larger values are clipped to it before noise is added.")


class SourceSampleConfig(dg.Config):
    table: str = Field(default="adult", description="Table to sample, optionally schema-qualified (schema.table).")
    columns: list[str] = Field(default=[], description="Columns to read; empty means all.")
    max_rows: int = Field(default=0, description="Rows to sample in the database; 0 means all matching rows (up to row_cap).")
    holdout_fraction: float = Field(default=0.2, description="Share of sampled rows kept as the holdout.")
    seed: int = Field(default=0, description="Seed of the database-side sample and of the training/holdout split.")
    filters: list[FilterConfig] = Field(default=[], description="Structured conditions {column, op, value}, all ANDed; values are bound parameters.")
    sample_fraction: float = Field(default=0.0, description="Bernoulli row fraction taken before max_rows (TABLESAMPLE on PostgreSQL); 0 means off.")
    stratify_by: str = Field(default="", description="Column whose value shares the sample keeps (proportional allocation); empty means none.")
    sensitive_columns: list[str] = Field(default=[], description="Columns whose values are secret: filters on them take their value from value_env and leave the column out of the sample; the others are modelled but their values are never shown (previews, profile, suite, Data Docs, report).")
    statement_timeout_s: float = Field(default=DEFAULT_STATEMENT_TIMEOUT_S, description="Statement timeout of the read (seconds).")
    row_cap: int = Field(default=DEFAULT_ROW_CAP, description="Hard cap on rows read; larger requests are refused.")
    noise_epsilon: float = Field(default=0.0, description="Epsilon of the bounded Laplace noise added to the noise_bounds columns as they are read; 0 means no noise.")
    noise_bounds: list[NoiseBoundConfig] = Field(default=[], description="Sensitive numeric columns to noise, each with its stated [lower, upper] bound.")
    privacy_budget_epsilon: float = Field(default=0.0, description="Total epsilon this table may spend over all runs (noised reads, DP tuning trials, DP training), summed in the privacy ledger; a run that would exceed it is refused before it spends. 0 means no limit (spends are still recorded).")
    allowed_schemas: list[str] = Field(default=[], description="Schemas the table may be read from (an unqualified name is resolved through the database's search_path first); empty means any.")
    allow_privileged_role: bool = Field(default=False, description="Read even when the database role is privileged (a superuser, CREATEROLE, or a member of pg_execute_server_program / pg_write_server_files / pg_read_server_files), which could run shell commands from inside the read. Off by default; the audit records the role and its privileges when on.")
    allow_side_effect_functions: bool = Field(default=False, description="Read a view (or a table with row-level-security policies) that calls user-defined VOLATILE, SECURITY DEFINER or untrusted-language functions. Off by default; the audit records the functions when on.")

    def all_sensitive_columns(self) -> set[str]:
        """The declared sensitive columns and the noised ones (as `SampleRequest.all_sensitive_columns`)."""
        return set(self.sensitive_columns) | {b.column for b in self.noise_bounds}

    def to_request(self) -> SampleRequest:
        sensitive = self.all_sensitive_columns()
        return SampleRequest(
            table=self.table,
            columns=tuple(self.columns),
            max_rows=self.max_rows or None,
            holdout_fraction=self.holdout_fraction,
            seed=self.seed,
            filters=tuple(f.resolve(sensitive) for f in self.filters),
            sample_fraction=self.sample_fraction or None,
            stratify_by=self.stratify_by or None,
            sensitive_columns=tuple(self.sensitive_columns),
            statement_timeout_s=self.statement_timeout_s,
            row_cap=self.row_cap,
            noise_epsilon=self.noise_epsilon or None,
            noise_bounds=tuple(NoiseBound(b.column, b.lower, b.upper) for b in self.noise_bounds),
            allowed_schemas=tuple(self.allowed_schemas),
            allow_privileged_role=self.allow_privileged_role,
            allow_side_effect_functions=self.allow_side_effect_functions,
        )


class TuningConfig(dg.Config):
    plugin: str = Field(default="ddpm", description=f"synthcity generator: one of {list(generators.SUPPORTED_PLUGINS)}.")
    n_trials: int = Field(default=TuningBudget.n_trials, description="Trials added to the persisted study by this run; 0 chooses from its existing trials (the auto-optimizer uses it for changes to the final fit only).")
    trial_steps: int = Field(default=TuningBudget.trial_steps, description="Optimizer steps per trial.")
    tuning_rows: int = Field(default=TuningBudget.tuning_rows, description="Training rows a trial uses (fit + validation).")
    validation_fraction: float = Field(default=TuningBudget.validation_fraction, description="Share of the tuning rows a trial is scored on.")
    timeout_s: float = Field(default=TuningBudget.timeout_s, description="No new trial starts after this many seconds.")
    trial_timeout_s: float = Field(default=TuningBudget.trial_timeout_s, description="A trial still running after this many seconds is stopped and recorded as failed.")
    sampler: str = Field(default="tpe", description=f"Optuna sampler: one of {list(SAMPLERS)}.")
    pruner: str = Field(default="median", description=f"Optuna pruner (ddpm reports its loss per epoch): one of {list(PRUNERS)}.")
    objective: str = Field(default="single", description=f"One of {list(OBJECTIVES)}: utility only; utility plus detection AUC − 0.5 (how far a classifier tells synthetic from real rows, one value); or utility and MIA AUC (Pareto front).")
    mia_auc_max: float = Field(default=PrivacyConstraints.mia_auc_max, description="Privacy constraint on every trial: membership-inference AUC (use the report's threshold).")
    exact_copy_rate_max: float = Field(default=PrivacyConstraints.exact_copy_rate_max, description="Privacy constraint on every trial: share of synthetic rows copying a fit row.")
    epsilon: float = Field(default=1.0, description="Differential-privacy epsilon for DP generators (policy, never tuned).")
    workers: int = Field(default=1, description="Worker processes of each trial step sharing the study (more than 1 needs a PostgreSQL Optuna storage).")
    fan_out: int = Field(default=1, description="Dagster steps the trials fan out over (tuned_hyperparameters.run_trials_step[share_i], each a share of n_trials against the shared study): at once under the multiprocess executor's or k8s_job_executor's concurrency. More than 1 needs a PostgreSQL Optuna storage.")
    warm_start: bool = Field(default=True, description="Start a new study with the best parameters of the most similar past datasets.")
    track_in_mlflow: bool = Field(default=True, description="Log the study and every trial to MLflow.")
    reopen_study: str = Field(default="", description="A study whose trials that meet this run's (stricter) privacy constraints start a new study (set by the auto-optimizer).")
    threads: int = Field(default=0, description="Torch threads per trial process; 0 means the available cores shared among the workers.")
    device: str = Field(default="auto", description=f"One of {list(generators.DEVICES)}: auto uses a GPU when torch sees one.")
    seed: int = 0


class GenerationConfig(dg.Config):
    time_budget_minutes: float = Field(default=DEFAULT_BUDGET_MINUTES, description="The run's time budget on this machine (minutes), split between tuning and the final fit by time_budget.SPLIT_RULE; 0 turns it off (step counts only).")
    training_steps: int = Field(default=0, description="Optimizer steps of the final fit; 0 means the time budget decides on tables of 10,000+ training rows (at most 40,000 steps), the plugin default otherwise. Never more than the time budget allows.")
    num_rows: int = Field(default=0, description="Synthetic rows to generate; 0 (the default) means as many as training rows: a downstream model trained on fewer rows than the real one scores lower for the size alone (Adult: 10,000 of 39,842 real rows cost 1 to 2 points of TSTR/TRTR ratio).")
    batch_size: int = Field(default=0, description="Batch size of the final fit; 0 means the tuned value.")
    model_width: int = Field(default=0, description="Embedding / hidden units of the final fit (dim_embed, n_units_embedding or generator_n_units_hidden by plugin); 0 means the tuned value.")
    enforce_contract: bool = Field(default=True, description="Reject generated rows that break the source's row rules (ranges, allowed values, required values, orderings) and generate replacements (counted in metadata).")
    drop_training_copies: bool = Field(default=False, description="Remove generated rows that copy a training row and generate replacements (counted in metadata).")
    max_regeneration_rounds: int = Field(default=DEFAULT_MAX_ROUNDS, description="Draws at most, when rows are removed and replaced.")
    sampling_steps: int = Field(default=generators.DEFAULT_SAMPLING_STEPS, description="ddpm: diffusion timesteps visited when sampling (a respaced chain); the model's own count (100 by default) or more is synthcity's ancestral sampler.")
    chunk_rows: int = Field(default=generators.SAMPLE_CHUNK_ROWS, description="Rows generated per chunk (memory and progress are per chunk).")
    threads: int = Field(default=0, description="Torch threads; 0 means the available cores.")
    device: str = Field(default="auto", description=f"One of {list(generators.DEVICES)}: auto uses a GPU when torch sees one.")
    seed: int = 0


class ReportConfig(dg.Config):
    target_column: str = Field(default="", description="Target of train-on-synthetic/test-on-real; empty: 'income' or the last categorical column.")
    ks_mean_max: float = Field(default=0.10, description="Threshold: mean KS statistic over numeric columns.")
    correlation_delta_max: float = Field(default=0.10, description="Threshold: mean |Δρ| over numeric pairs.")
    mia_auc_max: float = Field(default=0.60, description="Threshold: membership-inference AUC.")
    exact_copy_rate_max: float = Field(default=0.05, description="Threshold: share of synthetic rows copying a training row.")
    detection_auc_max: float = Field(default=0.75, description="Fidelity threshold: AUC of a classifier telling synthetic from real rows (0.5 = indistinguishable); at most this.")
    tstr_ratio_min: float = Field(default=0.96, description="Fidelity threshold: TSTR / TRTR score ratio on the holdout (1 = as useful as the real rows); at least this.")
    fidelity_checks_blocking: bool = Field(default=False, description="Whether the two fidelity checks (detection AUC, TSTR ratio) fail with ERROR and block downstream like the four thresholds, and count towards all green; off: they warn.")
    privacy_rows: int = Field(default=2000, description="Query rows per side for distance metrics (references are never subsampled).")
    bootstrap_resamples: int = Field(default=200, description="Bootstrap resamples behind the 95% intervals of the judged metrics.")
    risk_attacks: int = Field(default=RISK_ATTACKS, description="Attacks per re-identification risk (singling out, linkability, inference; capped at the holdout's rows).")
    risk_secret: str = Field(default="", description="The column the inference attack guesses; empty: the target column.")
    seed: int = 0

    def thresholds(self) -> Thresholds:
        return Thresholds(
            ks_mean_max=self.ks_mean_max, correlation_delta_max=self.correlation_delta_max, mia_auc_max=self.mia_auc_max,
            exact_copy_rate_max=self.exact_copy_rate_max, detection_auc_max=self.detection_auc_max,
            tstr_ratio_min=self.tstr_ratio_min, fidelity_checks_blocking=self.fidelity_checks_blocking,
        )


@dataclass
class ProfiledDataset:
    """The profile and the encoded training rows generators learn from. Deliberately holds no holdout rows."""

    profile: DatasetProfile
    training: pd.DataFrame  # source-shaped training rows (for scoring tuning trials)
    encoded_training: pd.DataFrame  # NaN-free, identifiers dropped: what a generator sees
    fingerprint: str
    expectation_suite: dict = field(default_factory=dict)  # the contract, as Great Expectations' suite JSON
    expectation_suite_path: str = ""
    source_id: str = ""  # privacy_ledger.source_id of the table the rows came from (no credential)
    privacy_budget_epsilon: float = 0.0  # that table's budget, as set by the run that read it (0: no limit)


@dataclass
class SyntheticTable:
    frame: pd.DataFrame
    plugin: str
    params: dict[str, Any]
    privacy_budget: dict[str, float] | None
    fit_seconds: float
    study_name: str
    trial_number: int | None = None  # the study's trial whose parameters were used
    training_copies: dict[str, Any] = field(default_factory=dict)  # the de-duplication step: on/off, rows removed
    contract_rejections: dict[str, int] = field(default_factory=dict)  # rows rejected and regenerated, per rule
    training_steps: int = 0  # optimizer steps the final fit trained (a time budget may end it before the steps asked for)


TIME_DECIDES_ROWS = 10_000  # from this many training rows the time budget decides the final fit's steps
TIME_DECIDED_MAX_STEPS = 40_000  # and at most this many (policy.MAX_TRAINING_STEPS)


def _run_start(context: dg.AssetExecutionContext) -> float:
    """When this run started (wall clock): the time budget's origin, shared by every asset of the run. A directly
    invoked asset, or a run without a start time, starts now."""
    try:
        record = context.instance.get_run_record_by_id(context.run_id) if context.run is not None else None
    except DagsterInvalidPropertyError:
        record = None
    start = record.start_time if record is not None else None
    return float(start) if start else time.time()


def _time_budget(context: dg.AssetExecutionContext, generation: dict[str, Any] | None, rows: int) -> TimeBudget | None:
    """The run's time budget (from synthetic_table's config), or None when it is off."""
    minutes = float((generation or {}).get("time_budget_minutes") or 0)
    return TimeBudget.from_minutes(minutes, start=_run_start(context), num_rows=rows) if minutes > 0 else None


def _frame_preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))


@dg.asset(
    description="Seeded sample of the source table, drawn in the database in a read-only transaction, audited, "
    "and split into training and holdout parts.",
)
def source_sample(
    context: dg.AssetExecutionContext, config: SourceSampleConfig, source_database: SourceDatabase, platform_storage: PlatformStorage
) -> dg.Output[SourceSample]:
    config = _table_config(context, "source_sample", config)
    try:
        source_database = source_database.for_table(table_spec_of(context))
    except ValueError as error:  # the entry's URL variable is not set: nothing is read
        raise dg.Failure(description=str(error), allow_retries=False) from None
    configs = _run_configs(context, "source_sample", config)
    problems = preflight.config_problems(configs)  # every step's settings
    if any(p.setting.startswith("ops.source_sample.") for p in problems):
        _refuse(problems)  # the read itself is mis-set: nothing is read
    request = config.to_request()
    audit_url = platform_storage.audit_database_url()
    url, ledger = source_database.resolve_url(platform_storage), _privacy_ledger(platform_storage)
    reading = f"a read of {config.table!r} with query-level noise"
    known = privacy_ledger.source_id_before_read(url, config.table)
    if known is not None:  # the table is named without connecting: its budget is checked before anything is read
        _check_privacy_budget(ledger, known, config.noise_epsilon, config.privacy_budget_epsilon, reading)
    sample = read_sample(
        url, request, audit_url=audit_url, run_id=context.run_id,
        require_tls=source_database.require_tls,
    )
    source = privacy_ledger.source_id(url, sample.resolved_table or sample.table)
    if source != known:  # named by the database's search_path: checked before the noised rows are used or shown
        _check_privacy_budget(ledger, source, config.noise_epsilon, config.privacy_budget_epsilon, reading)
    _refuse(problems + preflight.sample_problems(configs, sample.columns, len(sample.training), len(sample.holdout)))
    if sample.epsilon_spent:
        ledger.record(privacy_ledger.Spend(
            source, context.run_id, "source_sample", "noised_read", float(sample.epsilon_spent),
            detail=f"bounded Laplace noise on {[n.get('column') for n in sample.noise]} (audit record {sample.audit_id})"))
    context.log.info(
        f"read {sample.rows_returned} of {sample.rows_in_table} rows of {sample.table!r} "
        f"from {sample.source}: {len(sample.training)} training, {len(sample.holdout)} holdout "
        f"(audit record {sample.audit_id} in {sample.audit_database})"
    )
    return dg.Output(
        sample,
        metadata={
            "source": sample.source,
            "table": sample.table,
            "resolved_table": sample.resolved_table,
            "read_as": sample.read_as,
            "rows_in_table": sample.rows_in_table,
            "rows_matched": sample.rows_matched,
            "rows_returned": sample.rows_returned,
            "query_shape": dg.MetadataValue.md(f"```sql\n{sample.query_shape}\n```"),
            "query_parameters": dg.MetadataValue.json(sample.parameters),
            "query_hash": sample.query_hash,
            "filters": dg.MetadataValue.json(request.filters_for_audit()),
            "audit_record_id": sample.audit_id,
            "audit_database": mask_url(audit_url),
            "audit_record": dg.MetadataValue.json(_audit_record(audit_url, sample.audit_id)),
            "audit_lookup": dg.MetadataValue.md(
                f"Audit record **{sample.audit_id}** in `{mask_url(audit_url)}`:\n\n"
                f"```sql\nSELECT * FROM {audit.AUDIT_TABLE} WHERE id = {sample.audit_id};\n```"
            ),
            "epsilon_spent": sample.epsilon_spent if sample.epsilon_spent is not None else 0.0,
            "noise": dg.MetadataValue.json({"mechanism": MECHANISM if sample.noise else "none", "columns": sample.noise}),
            "privacy_ledger": _ledger_metadata(ledger, source, config.privacy_budget_epsilon, context.run_id),
            "training_rows": len(sample.training),
            "holdout_rows": len(sample.holdout),
            "columns": sample.columns,
            "seed": sample.seed,
            "dataset_fingerprint": sample.fingerprint,
            "sensitive_columns": sample.sensitive_columns,
            "left_out_columns": dg.MetadataValue.json(sample.left_out_columns),  # column -> why it was not read
            "source_types": dg.MetadataValue.json(sample.source_types),
            "conversions": dg.MetadataValue.json(sample.conversions),
            "withheld_columns": dg.MetadataValue.md(
                f"Left out of the sample, because a filter on a sensitive column is on them: {sample.withheld_columns}"
                if sample.withheld_columns else "none"),
            # No preview of source rows: before profiling, nothing says which values are rare or identifying.
            "schema": _schema_table(sample.training),
        },
    )


# The config class of each asset that takes config, for reading a whole run's settings (see `_run_configs`).
def _config_classes() -> dict[str, type[dg.Config]]:
    return {"source_sample": SourceSampleConfig, "profiled_dataset": ProfileConfig, "tuned_hyperparameters": TuningConfig,
            "synthetic_table": GenerationConfig, "privacy_utility_report": ReportConfig}


TABLE_ENTRY_METADATA = "table_entry"  # definition metadata of a table's chain: its tables.yaml entry (table_chains.py)


def table_spec_of(context: dg.AssetExecutionContext) -> TableSpec | None:
    """The tables.yaml entry of the chain this asset (or a step of a graph-backed asset: every asset here has one
    key) belongs to; None for the template assets (`ALL_ASSETS`, which run with their run config and defaults only)."""
    try:
        (spec,) = context.assets_def.specs
        metadata = spec.metadata
    except (DagsterInvalidPropertyError, DagsterInvariantViolationError, KeyError, AttributeError, ValueError):
        return None
    entry = metadata.get(TABLE_ENTRY_METADATA)
    entry = getattr(entry, "value", entry)
    return TableSpec.from_dict(entry) if isinstance(entry, dict) else None


def _given_ops(context: dg.AssetExecutionContext) -> dict[str, Any] | None:
    """The run config's `ops` section as the run was given it (no defaults), or None outside a run."""
    try:
        return dict((context.run.run_config or {}).get("ops", {}))
    except DagsterInvalidPropertyError:
        return None


def _given(ops: dict[str, Any], node: str) -> dict[str, Any]:
    return dict((ops.get(node) or {}).get("config") or {})


def _table_config(context: dg.AssetExecutionContext, asset: str, config: ConfigT) -> ConfigT:
    """This asset's config as the run uses it: the run config's settings over the table's tables.yaml entry (a
    setting the run config leaves out comes from the entry, then from the default)."""
    spec = table_spec_of(context)
    settings = spec.settings_of(asset) if spec else {}
    if not settings:
        return config
    ops = _given_ops(context)
    given = _given(ops, context.op_execution_context.node_handle.root.name) if ops is not None else {}  # a graph step: its asset's node
    return type(config)(**{**config.model_dump(), **tables.effective_settings(spec, asset, given)})


def _run_configs(context: dg.AssetExecutionContext, asset: str, own: dg.Config) -> dict[str, dict[str, Any]]:
    """Every asset's config in this run, over the table's tables.yaml entry, defaults filled in (an asset not in
    the run: what a later run of it would use, unless configured). A directly invoked asset has no run: its own
    config only."""
    configs = {asset: own.model_dump()}
    ops = _given_ops(context)
    if ops is None:
        return configs
    spec = table_spec_of(context)
    for name, cls in _config_classes().items():
        if name != asset:
            try:
                configs[name] = cls(**tables.effective_settings(spec, name, _given(ops, name))).model_dump()
            except Exception:  # noqa: BLE001 - Dagster validated the types already; a section it cannot build is its asset's own error
                continue
    return configs


def _refuse(problems: list[preflight.Problem]) -> None:
    """Stop the step with every problem listed, as a Dagster Failure: the UI and the CLI show the message."""
    if problems:
        raise dg.Failure(description=str(preflight.PreflightError(problems)), allow_retries=False)


def _privacy_ledger(platform_storage: PlatformStorage) -> privacy_ledger.PrivacyLedger:
    """The privacy ledger, in the tuning memory's database."""
    return privacy_ledger.PrivacyLedger(platform_storage.tuning_memory_database_url())


def _check_privacy_budget(ledger: privacy_ledger.PrivacyLedger, source: str, planned: float, budget: float, what: str) -> None:
    """Stop the step, before it spends, when `planned` would take the table past its budget (the refusal says what
    was spent, by which runs, and what to change)."""
    try:
        ledger.check(source, planned, budget, what)
    except privacy_ledger.LedgerRefusal as refusal:
        raise dg.Failure(description=str(refusal), allow_retries=False) from None


def _table_ledger(
    context: dg.AssetExecutionContext, platform_storage: PlatformStorage, profiled: ProfiledDataset
) -> tuple[privacy_ledger.PrivacyLedger, str, float]:
    """The ledger, the table the profiled rows came from (a profiled dataset stored before the ledger existed: named
    by its dataset fingerprint) and that table's budget for this run."""
    source = getattr(profiled, "source_id", "") or f"unknown-source#dataset-{profiled.fingerprint}"
    return _privacy_ledger(platform_storage), source, _ledger_budget(context, getattr(profiled, "privacy_budget_epsilon", 0.0))


def _ledger_budget(context: dg.AssetExecutionContext, carried: float) -> float:
    """The table's privacy budget for this run: source_sample's setting when this run configures source_sample or
    the table's tables.yaml entry sets it, else `carried` (the budget the profiled dataset came with: runs starting
    further down the chain, as the auto-optimizer's re-runs do, keep the budget of the run that read the rows)."""
    ops, spec = _given_ops(context) or {}, table_spec_of(context)
    given = _given(ops, "source_sample")
    if "source_sample" in ops or (spec and "privacy_budget_epsilon" in spec.settings_of("source_sample")):
        return float(SourceSampleConfig(**tables.effective_settings(spec, "source_sample", given)).privacy_budget_epsilon)
    return float(carried)


def _ledger_metadata(ledger: privacy_ledger.PrivacyLedger, source: str, budget: float, run_id: str) -> dg.MetadataValue:
    return dg.MetadataValue.json(ledger.standing(source, budget, run_id).to_dict())


def _fail_with_diagnosis(error: generators.GenerationError, run_dir: Path) -> None:
    """End the step with the generator's own diagnosis (stage, reason, what was tried, what to change), shown as
    the failure's message and metadata and written to `diagnosis.json` in the run's directory."""
    diagnosis = error.diagnosis or {"stage": "generation", "reason": "error", "detail": str(error)}
    text = json.dumps(diagnosis, indent=2, default=str)
    write_private_text(run_dir / "diagnosis.json", text)
    raise dg.Failure(
        description=str(error), allow_retries=False,
        metadata={"diagnosis": dg.MetadataValue.json(json.loads(text)),
                  "diagnosis_path": dg.MetadataValue.path(str(run_dir / "diagnosis.json"))},
    ) from error


def _schema_table(frame: pd.DataFrame) -> dg.MetadataValue:
    """Column names, types and missing shares: the shape of the rows read, without any of their values."""
    records = [
        dg.TableRecord({"column": str(name), "dtype": str(frame[name].dtype), "missing": round(float(frame[name].isna().mean()), 4)})
        for name in frame.columns
    ]
    return dg.MetadataValue.table(records, dg.TableSchema(columns=[
        dg.TableColumn("column", "string"), dg.TableColumn("dtype", "string"), dg.TableColumn("missing", "float")]))


def _audit_record(audit_url: str, record_id: int | None) -> dict[str, Any]:
    """The audit row of this read, as stored (it holds no password and no sensitive filter value)."""
    if record_id is None:
        return {}
    (record,) = audit.read_records(audit_url, record_id)
    return {key: (value.isoformat() if hasattr(value, "isoformat") else value) for key, value in record.items()}


class ProfileConfig(dg.Config):
    column_types: dict[str, str] = Field(default={}, description=f"Override inferred semantic types, e.g. {{zip: categorical}}; one of {list(SEMANTIC_TYPES)}.")
    column_treatments: dict[str, str] = Field(default={}, description=f"Override how columns are handled, e.g. {{notes: drop}}; one of {list(TREATMENTS)}.")
    detect_orderings: bool = Field(default=True, description="Find column pairs with low ≤ high on every source row and hold the synthetic table to them.")
    missing_rate_tolerance: float = Field(default=MISSING_RATE_TOLERANCE, description="Allowed |synthetic − source| share of missing values per column (a warning when exceeded).")
    rare_value_k: int = Field(default=RARE_VALUE_K, description="A value must occur in at least k source rows to be learnt, published or generated: rarer categories are generalised, numbers and datetimes coded at the k-th smallest / largest value; 1 turns this off.")
    rare_category_handling: str = Field(default="other", description=f"What rare categories of text columns become: one of {list(RARE_CATEGORY_HANDLINGS)} ('other' = the value {OTHER_VALUE!r}); other columns' rare values become missing.")
    acknowledge_identifiers: list[str] = Field(default=[], description="Columns detected as direct identifiers that column_types sets to another type anyway: listing them here acknowledges that their (common) values can appear in the synthetic table.")


@dg.asset(
    description="The source's data contract: semantic types, identifiers and quasi-identifiers, missingness, ranges, "
    "allowed values and orderings, as a profile and a Great Expectations suite; the NaN-free encoding generators train on.",
)
def profiled_dataset(
    context: dg.AssetExecutionContext, config: ProfileConfig, source_sample: SourceSample, platform_storage: PlatformStorage,
    source_database: SourceDatabase,
) -> dg.Output[ProfiledDataset]:
    config = _table_config(context, "profiled_dataset", config)
    configs = _run_configs(context, "profiled_dataset", config)
    _refuse(preflight.config_problems({"profiled_dataset": configs["profiled_dataset"]}))
    profile = profile_dataframe(
        source_sample.training, column_types=config.column_types, column_treatments=config.column_treatments,
        detect_orderings=config.detect_orderings, rare_value_k=config.rare_value_k,
        rare_category_handling=config.rare_category_handling, sensitive_columns=source_sample.sensitive_columns,
        acknowledge_identifiers=config.acknowledge_identifiers,
        source_types=source_sample.source_types,
        left_out_columns=source_sample.left_out_columns,
    )
    _refuse(preflight.profile_problems(configs, profile))
    training = apply_disclosure_control(source_sample.training, profile)  # all later steps see these rows only
    suite = expectation_suite(profile, f"{source_sample.table}_contract", config.missing_rate_tolerance)
    on_source = check_suite_on_source(training, profile, suite)
    encoded = encode_for_generation(training, profile)
    run_dir = platform_storage.run_dir(context.run_id)
    profile_path, suite_path = run_dir / "profile.json", run_dir / "expectation_suite.json"
    write_private_text(profile_path, json.dumps(profile.to_dict(), indent=2, default=str))
    write_private_text(suite_path, json.dumps(suite, indent=2, default=str))
    identifiers = profile.identifiers()
    coded = {c.name: c.rare_values_generalised for c in profile.columns if c.rare_values_generalised}
    context.log.info(
        f"profiled {len(profile.columns)} columns: identifiers {identifiers or 'none'}, quasi-identifiers "
        f"{profile.quasi_identifiers() or 'none'}, orderings {[str(o) for o in profile.orderings] or 'none'}; "
        f"values seen in fewer than {profile.rare_value_k} rows generalised (distinct values per column) {coded or 'none'}; "
        f"{len(suite['expectations'])} expectations (all met by the source); generators see {encoded.shape[1]} encoded columns"
    )
    return dg.Output(
        ProfiledDataset(
            profile, training, encoded, source_sample.fingerprint, suite, str(suite_path),
            source_id=privacy_ledger.source_id(source_database.resolve_url(platform_storage), source_sample.resolved_table or source_sample.table),
            privacy_budget_epsilon=_ledger_budget(context, 0.0),
        ),
        metadata={
            "profile": _profile_table(profile),
            "profile_json": dg.MetadataValue.json(profile.to_dict()),
            "rare_value_k": profile.rare_value_k,
            "rare_values_generalised": dg.MetadataValue.json(coded),
            "sensitive_columns": profile.sensitive_columns(),
            "profile_path": dg.MetadataValue.path(str(profile_path)),
            "expectation_suite_path": dg.MetadataValue.path(str(suite_path)),
            "expectations": len(suite["expectations"]),
            "expectations_met_by_source": on_source.evaluated,
            "encoded_columns": encoded.shape[1],
            "identifier_columns": identifiers,
            "dropped_columns": profile.by_treatment("drop"),
            "left_out_columns": dg.MetadataValue.json(profile.left_out_columns),  # not read or not modelled, and why
            "quasi_identifiers": profile.quasi_identifiers(),
            "rows_unique_on_quasi_identifiers": (
                profile.rows_unique_on_quasi_identifiers if profile.rows_unique_on_quasi_identifiers is not None else float("nan")
            ),
            "orderings": [str(o) for o in profile.orderings],
        },
    )


def _profile_table(profile: DatasetProfile) -> dg.MetadataValue:
    def bounds(c) -> str:
        if c.sensitive:
            return "(withheld: sensitive)"
        if c.allowed_values is not None:
            shown = ", ".join(map(str, c.allowed_values[:6]))
            return f"{{{shown}{', …' if len(c.allowed_values) > 6 else ''}}}"
        if c.minimum is None:
            return ""
        if c.kind == "datetime":  # seconds since the epoch; any year (pd.Timestamp stops at 1677 and 2262)
            def shown(seconds: float) -> str:
                return (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=float(seconds))).isoformat(sep=" ")
            return f"{shown(c.minimum)} – {shown(c.maximum)}"
        return f"{c.minimum:g} – {c.maximum:g}"

    records = [
        dg.TableRecord({
            "column": c.name, "semantic_type": c.semantic_type, "treatment": c.treatment, "dtype": c.dtype,
            "missing": round(c.missing_fraction, 4), "cardinality": c.cardinality, "range_or_values": bounds(c),
            "identifier": c.identifier_reason, "quasi_identifier": c.quasi_identifier, "handling": c.handling,
        })
        for c in profile.columns
    ]
    schema = dg.TableSchema(columns=[
        dg.TableColumn("column", "string"), dg.TableColumn("semantic_type", "string"), dg.TableColumn("treatment", "string"),
        dg.TableColumn("dtype", "string"), dg.TableColumn("missing", "float"), dg.TableColumn("cardinality", "int"),
        dg.TableColumn("range_or_values", "string"), dg.TableColumn("identifier", "string"),
        dg.TableColumn("quasi_identifier", "bool"), dg.TableColumn("handling", "string"),
    ])
    return dg.MetadataValue.table(records, schema)


@dataclass
class TrialShare:
    """One `run_trials` step's part of a tuning session: the `index`-th of `count` shares of its trials, and once
    run, what its workers did."""

    study: OpenedStudy
    index: int
    count: int
    summaries: list[WorkerSummary] = field(default_factory=list)


def _tuning_setup(context: dg.OpExecutionContext, config: TuningConfig) -> TuningConfig:
    """This run's tuning config (run config over the table's entry), every step of the tuning graph alike."""
    config = _table_config(context, "tuned_hyperparameters", config)
    _refuse(preflight.config_problems({"tuned_hyperparameters": config.model_dump()}))
    return config


def _tracking_uri(config: TuningConfig, platform_storage: PlatformStorage) -> str | None:
    return platform_storage.mlflow_uri() if config.track_in_mlflow else None


def _run_owner_pid() -> int:
    """A process on this machine that outlives every step of the run, owning the study's MLflow run for the orphan
    sweep: the parent of a step process the multiprocess executor started (its forkserver or the run worker), the
    run worker itself when steps run in process."""
    import multiprocessing

    return os.getppid() if multiprocessing.parent_process() is not None else os.getpid()


@dg.op(out=dg.DynamicOut(TrialShare), description="Open the tuning session: study, warm starts, sealed trial setup, MLflow run; one share of the trials per fan-out step.")
def open_study_step(
    context: dg.OpExecutionContext, config: TuningConfig, profiled_dataset: ProfiledDataset, platform_storage: PlatformStorage
) -> Iterator[dg.DynamicOutput[TrialShare]]:
    config = _tuning_setup(context, config)
    generators.check_plugin(config.plugin)
    storage = platform_storage.optuna_url()
    if config.fan_out > 1 and is_sqlite(storage):
        _refuse([preflight.Problem(
            "ops.tuned_hyperparameters.config.fan_out",
            f"{config.fan_out} steps would write one SQLite Optuna study at once ('database is locked'); use 1, or a "
            "PostgreSQL Optuna storage (SYNTH_OPTUNA_STORAGE, or optuna_storage of the platform_storage resource).")])
    # Runs unknown to this instance count as stale only when the storage is this instance's own (a root set in
    # config may be shared by other instances, whose runs this one cannot see).
    instance = _instance_of_run(context)
    stale = [] if instance is None else platform_storage.remove_stale_workspaces(
        lambda run_id: _run_is_active(instance, run_id, context.run_id, unknown_is_active=bool(platform_storage.root)))
    if stale:
        context.log.info(f"removed the workspaces (training rows) left by {len(stale)} run(s) that ended without cleaning up: {stale}")
    device = generators.resolve_device(config.device)
    budget = TuningBudget(
        config.n_trials, config.trial_steps, config.tuning_rows, config.validation_fraction, config.timeout_s, config.trial_timeout_s
    )
    generation = _run_configs(context, "tuned_hyperparameters", config).get("synthetic_table")
    clock = _time_budget(context, generation, int((generation or {}).get("num_rows") or len(profiled_dataset.encoded_training)))
    if clock is not None:
        budget = clock.tuning_budget(budget)  # no trial starts (or is expected to end) after the tuning share
        context.log.info(f"time budget: {clock.progress_line('tuning')}; tuning may run {clock.tuning_seconds_left():.0f} s more")
    constraints = PrivacyConstraints(config.mia_auc_max, config.exact_copy_rate_max)
    carried = reopened_trials(storage, config.reopen_study, constraints) if config.reopen_study else []
    if config.reopen_study:
        context.log.info(f"re-opening study {config.reopen_study!r} under {constraints}: {len(carried)} of its trials meet them")
    # An earlier attempt of this chain that fitted the same final-fit config: its parameters would repeat its fit.
    avoid = [] if instance is None or generation is None else attempt_chain.parameters_fitted_before(instance, context.run, generation, table_spec_of(context))
    if avoid:
        context.log.info(f"{len(avoid)} parameter set(s) an earlier attempt of this chain fitted with the same final-fit config are not chosen again")
    if config.plugin in generators.DP_PLUGINS:  # every trial fits a DP model on the tuning rows: n_trials × epsilon
        ledger, source, table_budget = _table_ledger(context, platform_storage, profiled_dataset)
        _check_privacy_budget(ledger, source, budget.n_trials * config.epsilon, table_budget,
                              f"tuning {budget.n_trials} DP trial(s) of {config.plugin} at ε = {config.epsilon:g} each")
    opened = open_study(
        profiled_dataset.encoded_training, profiled_dataset.training, profiled_dataset.profile,
        plugin=config.plugin, fingerprint=profiled_dataset.fingerprint, storage=storage, budget=budget,
        search=SearchSettings(config.sampler, config.pruner, config.objective), seed=config.seed,
        workspace=platform_storage.workspace(context.run_id), privacy=generators.PrivacyPolicy(epsilon=config.epsilon),
        constraints=constraints, warm_start=carried, avoid_params=avoid,
        memory_url=platform_storage.tuning_memory_database_url() if config.warm_start else None,
        tracking_uri=_tracking_uri(config, platform_storage), run_id=context.run_id, device=device,
        encoder_cache_dir=platform_storage.encoders_dir, tracker_owner_pid=_run_owner_pid(),
        session_settings={"workers": config.workers, "fan_out": config.fan_out}, log=context.log.info,
    )
    shares = max(1, min(config.fan_out, budget.n_trials))  # at least one step, so the choice always runs
    context.log.info(f"{budget.n_trials} trial(s) over {shares} step(s) × {config.workers} worker(s) on {device}")
    for index in range(shares):
        yield dg.DynamicOutput(TrialShare(opened, index, shares), mapping_key=f"share_{index}")


@dg.op(description="Run one share of the session's trials against the shared Optuna study (any machine that reaches it).")
def run_trials_step(
    context: dg.OpExecutionContext, config: TuningConfig, share: TrialShare, platform_storage: PlatformStorage
) -> TrialShare:
    config = _tuning_setup(context, config)
    # the cores of this machine shared among every worker of every share (set `threads` where each step has a machine)
    threads = config.threads or generators.threads_for(config.workers * share.count)
    generators.configure_compute(threads)
    context.log.info(f"share {share.index + 1} of {share.count}: {share.study.trials_of_share(share.index, share.count)} "
                     f"trial(s), {config.workers} worker(s) × {threads} torch thread(s)")
    try:
        summaries = run_trials(share.study, platform_storage.optuna_url(), share=share.index, shares=share.count,
                               n_workers=config.workers, threads=threads,
                               tracking_uri=_tracking_uri(config, platform_storage), log=context.log.info)
    except WorkersFailedError as error:  # the choice step decides with what the other shares did
        context.log.warning(f"share {share.index + 1} of {share.count}: {error}")
        summaries = [WorkerSummary(None, os.getpid(), socket.gethostname(), None,
                                   share.study.trials_of_share(share.index, share.count), error=str(error))]
    return replace(share, summaries=summaries)


@dg.op(description="Choose the best trial of the study under this budget, log the choice, spend the privacy ledger.")
def choose_parameters_step(
    context: dg.OpExecutionContext, config: TuningConfig, profiled_dataset: ProfiledDataset,
    shares: list[TrialShare], platform_storage: PlatformStorage,
) -> dg.Output[TuningResult]:
    config = _tuning_setup(context, config)
    summaries = [summary for share in sorted(shares, key=lambda s: s.index) for summary in share.summaries]
    opened = shares[0].study  # every share carries the same session
    tracking_uri = _tracking_uri(config, platform_storage)
    if summaries and not any(s.ok for s in summaries):
        error = WorkersFailedError("No tuning worker finished: " + "; ".join(str(s.error) for s in summaries))
        abandon_study(opened, tracking_uri, error)
        raise error
    result = close_study(opened, platform_storage.optuna_url(), summaries,
                         memory_url=platform_storage.tuning_memory_database_url() if config.warm_start else None,
                         tracking_uri=tracking_uri, run_id=context.run_id, log=context.log.info)
    ledger, source, table_budget = _table_ledger(context, platform_storage, profiled_dataset)
    dp = config.plugin in generators.DP_PLUGINS
    trained = [t["state"] for t in result.trials if t["state"] != "WAITING"]  # started: complete, pruned, failed
    if dp and trained:
        ledger.record(privacy_ledger.Spend(
            source, context.run_id, "tuned_hyperparameters", "dp_tuning", len(trained) * config.epsilon,
            detail=f"{len(trained)} DP trial(s) of {config.plugin} at ε = {config.epsilon:g} each (δ = 1/(10 n) each) in "
                   f"study {result.study_name}: " + ", ".join(f"{trained.count(s)} {s}" for s in sorted(set(trained)))))
    for problem in result.tracking_problems:
        context.log.warning(f"MLflow tracking: {problem}")
    if result.fallback:
        context.log.warning(f"no trial of study {result.study_name!r} completed under this budget: {result.fallback}")
    elif not result.feasible:
        context.log.warning(
            f"no trial of study {result.study_name!r} met the privacy constraints; trial {result.best_trial_number} "
            f"misses them least ({result.best_scores}). Expect the privacy checks to fail."
        )
    if dp:  # the policy travels with the choice; a non-DP plugin's parameters say nothing of epsilon (there is none)
        result.params["epsilon"] = config.epsilon
    return dg.Output(result, metadata=_tuning_metadata(result, ledger, source, table_budget, context.run_id))


def _tuning_metadata(
    result: TuningResult, ledger: privacy_ledger.PrivacyLedger, source: str, table_budget: float, run_id: str
) -> dict[str, Any]:
    trials = [
        dg.TableRecord({
            "trial": t["number"], "state": t["state"], "origin": t["origin"], "feasible": t["feasible"],
            "utility_distance": t.get("utility_distance", float("nan")), "mia_auc": t.get("membership_inference_auc", float("nan")),
            "exact_copy_rate": t.get("exact_copy_rate", float("nan")), "params": json.dumps(t["params"]),
        })
        for t in result.trials
    ]
    return {
        "plugin": result.plugin,
        "study_name": result.study_name,
        "optuna_storage": result.storage.split("://")[0] + "://…",
        "best_value": result.best_value,
        "best_trial": result.best_trial_number,
        "best_trial_feasible": result.feasible,
        "fallback": result.fallback or "none: chosen from the study's trials",
        "avoided_parameter_sets": result.avoided,
        "best_scores": dg.MetadataValue.json(result.best_scores),
        "selection_rule": result.selection_rule,
        "privacy_policy": result.policy,
        "search": dg.MetadataValue.json(result.search),
        "pareto_front": dg.MetadataValue.json(result.pareto_front),
        "timed_out": result.timed_out,
        "warm_start": dg.MetadataValue.json(result.warm_start),
        "tuning_memory_record": result.memory_record_id if result.memory_record_id is not None else -1,
        "mlflow_run_id": result.mlflow_run_id or "",
        **{name: dg.MetadataValue.url(link) for name, link in (
            ("mlflow_run", ui_links.mlflow_run_link(result.mlflow_experiment_id, result.mlflow_run_id)),
            ("optuna_study", ui_links.optuna_study_link(result.optuna_study_id))) if link},
        "workers": dg.MetadataValue.json(result.workers),
        "best_params": dg.MetadataValue.json(result.params),
        "privacy_ledger": _ledger_metadata(ledger, source, table_budget, run_id),
        "trials_this_run": result.trials_this_run,
        "trials_in_study": result.trials_in_study,
        "failed_trials_this_run": result.failed_trials_this_run,
        "trials": dg.MetadataValue.table(trials, dg.TableSchema(columns=[
            dg.TableColumn("trial", "int"), dg.TableColumn("state", "string"), dg.TableColumn("origin", "string"),
            dg.TableColumn("feasible", "bool"), dg.TableColumn("utility_distance", "float"), dg.TableColumn("mia_auc", "float"),
            dg.TableColumn("exact_copy_rate", "float"), dg.TableColumn("params", "string")])),
    }


@dg.config_mapping
def _every_tuning_step(config: TuningConfig) -> dict[str, Any]:
    """`ops.tuned_hyperparameters.config` (one TuningConfig, as for a one-step asset) to each step of the graph."""
    given = {"config": config.model_dump() if isinstance(config, dg.Config) else dict(config)}
    return {"open_study_step": given, "run_trials_step": given, "choose_parameters_step": given}


@dg.graph_asset(
    config=_every_tuning_step,
    description="Best hyperparameters from a persisted Optuna study over the generator's space: the trials fan out "
                "over `fan_out` steps (run_trials_step[share_i]) sharing the study.",
)
def tuned_hyperparameters(profiled_dataset: ProfiledDataset) -> TuningResult:
    shares = open_study_step(profiled_dataset)
    return choose_parameters_step(profiled_dataset, shares.map(run_trials_step).collect())


@dg.asset(description="Synthetic rows from the tuned generator, fitted on the whole training part.")
def synthetic_table(
    context: dg.AssetExecutionContext,
    config: GenerationConfig,
    profiled_dataset: ProfiledDataset,
    tuned_hyperparameters: TuningResult,
    platform_storage: PlatformStorage,
) -> dg.Output[SyntheticTable]:
    config = _table_config(context, "synthetic_table", config)
    _refuse(preflight.config_problems({"synthetic_table": config.model_dump()}))
    device = generators.resolve_device(config.device)
    threads = generators.configure_compute(config.threads)
    plugin = tuned_hyperparameters.plugin
    training = profiled_dataset.encoded_training
    params = {k: v for k, v in tuned_hyperparameters.params.items() if k not in generators.PRIVACY_PARAMETERS}
    if config.batch_size:
        params["batch_size"] = config.batch_size
    if config.model_width:
        params[MODEL_WIDTH_PARAMETER[plugin][0]] = config.model_width
    count = config.num_rows or len(training)
    clock = _time_budget(context, config.model_dump(), count)
    # The time budget decides the steps of a large table's non-DP fit when none are set (a DP fit's noise is
    # calibrated to its steps; more epochs over a small table is memorisation); it caps every fit.
    time_decides = (clock is not None and not config.training_steps and plugin not in generators.DP_PLUGINS
                    and len(training) >= TIME_DECIDES_ROWS)
    steps = TIME_DECIDED_MAX_STEPS if time_decides else (config.training_steps or generators.DEFAULT_TRAINING_STEPS[plugin])
    params["n_iter"] = generators.epochs_for_steps(plugin, steps, len(training), params.get("batch_size"))
    policy = generators.PrivacyPolicy(epsilon=tuned_hyperparameters.params.get("epsilon", 1.0))
    ledger, source, table_budget = _table_ledger(context, platform_storage, profiled_dataset)
    dp = plugin in generators.DP_PLUGINS
    if dp:
        _check_privacy_budget(ledger, source, policy.epsilon, table_budget, f"the final {plugin} fit at ε = {policy.epsilon:g}")
    if clock is not None:
        context.log.info(f"time budget: {clock.progress_line('final fit')}; the fit may run {clock.fit_seconds():.0f} s "
                         + (f"(up to {steps:,} steps: the time decides)" if time_decides else f"or {steps:,} steps, whichever ends first"))
    profile = profiled_dataset.profile
    from synth_platform.evaluation.report import copies_of_training  # local: loading the metrics takes seconds

    copies_of = (lambda rows: copies_of_training(rows, profiled_dataset.training, profile)) if config.drop_training_copies else None
    try:  # a fit or sampler that diverges is recovered inside (lower rate, re-draws); what is not ends diagnosed
        fitted = generators.fit_generator(
            training, plugin, params, seed=config.seed, workspace=platform_storage.workspace(context.run_id),
            privacy=policy, log=context.log.info, device=device,
            encoder_cache=EncoderCache(platform_storage.encoders_dir, log=context.log.info),
            **({"time_limit_s": clock.fit_seconds(), "time_budget": clock} if clock is not None else {}),
        )
        if dp:  # spent once the DP fit has trained, whatever happens to its rows afterwards
            spent = fitted.privacy_budget or policy.for_rows(len(training))
            ledger.record(privacy_ledger.Spend(
                source, context.run_id, "synthetic_table", "dp_training", float(spent["epsilon"]),
                detail=f"{plugin} fit on {len(training)} training rows, δ = {spent['delta']:.3g}, {fitted.params.get('n_iter')} epochs, "
                       f"discriminator_n_iter = {fitted.params.get('discriminator_n_iter', 1)}"))
        sampling = f", {config.sampling_steps} diffusion steps" if plugin == "ddpm" else ""
        context.log.info(f"sampling {count} synthetic rows from {plugin} ({threads} thread(s) on {device}{sampling})")
        table = generate_table(
            fitted, count, profile, seed=config.seed, enforce_contract=config.enforce_contract, copies_of=copies_of,
            max_rounds=config.max_regeneration_rounds, sampling_steps=config.sampling_steps, chunk_rows=config.chunk_rows,
            log=context.log.info,
        )
    except generators.GenerationError as exc:
        _fail_with_diagnosis(exc, platform_storage.run_dir(context.run_id))
    if fitted.recoveries:
        context.log.warning(f"{plugin} diverged and was recovered: {fitted.recoveries}")
    frame = table.frame
    trained_steps = _trained_steps(fitted, steps, len(training))
    if clock is not None:
        context.log.info(f"time budget: {clock.progress_line('sampled')}")
    if table.short_by:
        context.log.warning(f"the synthetic table has {len(frame)} of the {count} rows asked for (see the log above)")
    copies: dict[str, Any] = {
        "drop_training_copies": config.drop_training_copies,
        "training_copies_removed": table.rejected_by_rule.get(TRAINING_COPY_RULE, 0),
        "regeneration_rounds": table.rounds, "rows_short": table.short_by,
    }
    path = platform_storage.run_dir(context.run_id) / "synthetic_table.csv"
    frame.to_csv(path, index=False)
    frame.to_parquet(path.with_suffix(".parquet"), index=False)  # typed: datetimes, time zones, nullable integers
    shutil.rmtree(platform_storage.workspace(context.run_id), ignore_errors=True)
    return dg.Output(
        SyntheticTable(
            frame, plugin, fitted.params, fitted.privacy_budget, fitted.fit_seconds, tuned_hyperparameters.study_name,
            tuned_hyperparameters.best_trial_number, copies, table.rejected_by_rule, trained_steps,
        ),
        metadata={
            "plugin": plugin,
            "study_name": tuned_hyperparameters.study_name,
            "study_trial": tuned_hyperparameters.best_trial_number,
            "rows": len(frame),
            "training_steps": trained_steps,
            "time_budget": dg.MetadataValue.json({**clock.plan(), "used_s": round(clock.elapsed(), 1)} if clock else {"time_budget": "off"}),
            "budget_stop": dg.MetadataValue.json(fitted.budget_stop or {}),
            "params": dg.MetadataValue.json({k: v for k, v in fitted.params.items()}),
            "privacy_budget": dg.MetadataValue.json(fitted.privacy_budget or {"differential_privacy": "none"}),
            "privacy_ledger": _ledger_metadata(ledger, source, table_budget, context.run_id),
            "fit_seconds": round(fitted.fit_seconds, 1),
            "training_copies": dg.MetadataValue.json(copies),
            "rejected_rows": table.rejected_rows,
            "rejected_by_rule": dg.MetadataValue.json(table.rejected_by_rule),
            "regeneration_rounds": table.rounds,
            "rows_short": table.short_by,
            "missing_shares_matched": dg.MetadataValue.json(table.missing_shares or {"matched": "none was more than a point off the source"}),
            "divergence_recoveries": dg.MetadataValue.json(fitted.recoveries),  # lower rates, re-draws: empty when none
            "csv_path": dg.MetadataValue.path(str(path)),
            "preview": _frame_preview(frame.drop(columns=profile.sensitive_columns(), errors="ignore")),
        },
    )


def _trained_steps(fitted: generators.FittedGenerator, steps: int, rows: int) -> int:
    """Optimizer steps the fit trained: the steps asked for, or fewer when the time budget ended it early."""
    stop = fitted.budget_stop or {}
    if not stop.get("stopped_early_at_epoch"):
        return steps
    batch = int(fitted.params.get("batch_size") or rows)
    return int(stop["epochs"]) * math.ceil(rows / max(1, min(batch, rows)))


@dg.asset(description="Utility and privacy of the synthetic table against the training part and the holdout.")
def privacy_utility_report(
    context: dg.AssetExecutionContext,
    config: ReportConfig,
    source_sample: SourceSample,
    profiled_dataset: ProfiledDataset,
    synthetic_table: SyntheticTable,
    platform_storage: PlatformStorage,
) -> dg.Output[dict]:
    config = _table_config(context, "privacy_utility_report", config)
    _refuse(preflight.config_problems({"privacy_utility_report": config.model_dump()}))
    thresholds = config.thresholds()  # a bad threshold fails here, before any work
    # Local: the metrics' libraries (scikit-learn, scipy, matplotlib) take seconds to load, and every command that
    # loads the definitions (a refused run included) would pay for them.
    from synth_platform.evaluation.html_report import headline_png, render_html_report
    from synth_platform.evaluation.report import build_report, worst_columns_text

    context.log.info("computing utility and privacy metrics")
    profile = profiled_dataset.profile
    # The report, its plots and its JSON see the source as generators do: coded, generalised, no identifiers.
    training, holdout = (apply_disclosure_control(rows, profile) for rows in (source_sample.training, source_sample.holdout))
    report = build_report(
        training, holdout, synthetic_table.frame, profile,
        target=config.target_column, thresholds=thresholds, privacy_rows=config.privacy_rows,
        bootstrap_resamples=config.bootstrap_resamples, seed=config.seed, risk_attacks=config.risk_attacks,
        risk_secret=config.risk_secret,
    )
    report["generator"] = {
        "plugin": synthetic_table.plugin, "params": synthetic_table.params, "privacy_budget": synthetic_table.privacy_budget,
        "study_name": synthetic_table.study_name, "study_trial": synthetic_table.trial_number,
        "fit_seconds": synthetic_table.fit_seconds, "training_steps": synthetic_table.training_steps,
        "training_copies": synthetic_table.training_copies,
        "contract_rejections": synthetic_table.contract_rejections,
    }
    report["attempt"] = _place_in_chain(context)
    report["source"] = {"table": source_sample.table, "database": source_sample.source, "seed": source_sample.seed}
    report["run_id"] = context.run_id
    # What the optimizer's learning compares datasets by (never a source value: shares, counts, logs of counts).
    report["dataset"] = {"fingerprint": profiled_dataset.fingerprint,
                         "meta_features": tuning_memory.meta_features(profiled_dataset.training, profile)}
    # Rendered before anything is written: a plot that fails leaves no file behind.
    page = render_html_report(report, training, synthetic_table.frame, profile)
    headline = headline_png(report)  # metric values, intervals and thresholds only: no source value
    # Every epsilon spent on the source table, this run's and earlier runs' (read here, written by the spending
    # steps; after rendering, so a page that fails touches no store).
    ledger, source, table_budget = _table_ledger(context, platform_storage, profiled_dataset)
    report["privacy_ledger"] = ledger.standing(source, table_budget, context.run_id).to_dict()
    report["html_path"] = str(platform_storage.run_dir(context.run_id) / "privacy_utility_report.html")
    # Dagster 1.13 shows a markdown entry inline only under 1,000 characters (ui-core MetadataEntry.tsx), else
    # behind a "[Show Markdown]" click. Under `make ui` (SYNTH_FILES_URL set) the plot is a PNG beside the run's
    # page, served by the file server, and the entry a short image link to it: shown inline. Without the file server
    # (`dagster asset materialize` alone) no such file is written and the entry keeps the PNG as a data: URL, far
    # over 1,000 characters, so it is shown behind the click (it still renders there).
    headline_link = file_server.link_for(platform_storage.run_dir(context.run_id) / HEADLINE_PNG, platform_storage.root_path)
    path = write_report(report, platform_storage, context.run_id, html=page,
                        headline=headline if headline_link else None)
    context.log.info(f"report written to {path} and {report['html_path']}; all green: {report['all_green']}")
    effect = _record_attempt_outcome(context, report, platform_storage)
    if effect:
        context.log.info(f"this re-run's change: {effect}")
    metrics = {k: v for k, v in report["metrics"].items() if v is not None}
    return dg.Output(
        report,
        metadata={
            "summary": metrics_table(report),
            **({"worst_columns": worst} if (worst := worst_columns_text(report)) else {}),
            "headline_plot": headline_markdown(headline, headline_link),
            "verdicts": verdict_table(report),
            "all_green": report["all_green"],
            "report_path": dg.MetadataValue.path(str(path)),
            "report_html": dg.MetadataValue.path(report["html_path"]),
            **page_links({"report_page": report["html_path"]}, platform_storage),
            "study_name": synthetic_table.study_name,
            "study_trial": synthetic_table.trial_number if synthetic_table.trial_number is not None else -1,
            "attempt": dg.MetadataValue.json(report["attempt"]),
            "privacy_ledger": dg.MetadataValue.json(report["privacy_ledger"]),
            **({"change_effect": effect} if effect else {}),
            **{k: readable(v) for k, v in metrics.items()},
        },
    )


HEADLINE_ALT = "Checks: value, 95% interval and threshold"


def headline_markdown(png: bytes, link: str | None) -> dg.MetadataValue:
    """The headline plot as a markdown image: a link to its PNG on the file server when there is one (a short entry,
    which Dagster shows inline), else the PNG itself as a data: URL (which Dagster shows behind "[Show Markdown]")."""
    src = link or "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{HEADLINE_ALT}]({src})")


def page_links(paths: dict[str, str | Path], platform_storage: PlatformStorage) -> dict[str, dg.MetadataValue]:
    """Links that open from the UI (`MetadataValue.url`) to the pages of these files, when `make ui`'s file server
    is configured (SYNTH_FILES_URL); none otherwise (a browser opens no file:// link from the UI's page)."""
    links = {name: file_server.link_for(path, platform_storage.root_path) for name, path in paths.items()}
    return {name: dg.MetadataValue.url(url) for name, url in links.items() if url}


def _instance_of_run(context: dg.AssetExecutionContext) -> dg.DagsterInstance | None:
    """The instance of the run executing this asset; None when the asset is invoked directly, outside a run."""
    try:
        context.run
    except DagsterInvalidPropertyError:
        return None
    return context.instance


def _run_is_active(instance: dg.DagsterInstance, run_id: str, current: str, unknown_is_active: bool) -> bool:
    """Whether run `run_id` may still use its workspace: this run, or one not finished (queued, starting, started)."""
    if run_id == current:
        return True
    run = instance.get_run_by_id(run_id)
    return unknown_is_active if run is None else not run.is_finished


def _place_in_chain(context: dg.AssetExecutionContext) -> dict[str, Any]:
    """This run's optimizer chain and attempt (from its tags); a directly invoked asset has no run: attempt 0."""
    try:
        run = context.run
    except DagsterInvalidPropertyError:
        run = None
    return attempt_chain.attempt_of(run)


def _record_attempt_outcome(context: dg.AssetExecutionContext, report: dict, platform_storage: PlatformStorage) -> str:
    """For a re-run of an optimizer chain: what its change did to the metric its rule targets, against its parent's
    report, recorded in the tuning memory (the policy learns from it) and said in one sentence; "" for a first run."""
    from synth_platform.optimizer import learning
    from synth_platform.optimizer.policy import RULES

    place, instance = report["attempt"], _instance_of_run(context)
    rule = RULES.get(place["rule"])
    if instance is None or place["attempt"] < 1 or rule is None:
        return ""
    parent = attempt_chain.report_of_run(instance, place["parent_run"])
    if parent is None:
        return f"not compared: the parent run {place['parent_run']} has no report"
    outcome = learning.outcome_of(
        parent, report, chain=place["chain"], attempt=place["attempt"], run_id=context.run_id, parent_run_id=place["parent_run"],
        rule=rule.name, failure=rule.failure, change=place["change"], dataset_fingerprint=report["dataset"]["fingerprint"],
        meta_features=report["dataset"]["meta_features"],
    )
    learning.OutcomeMemory(platform_storage.tuning_memory_database_url()).record(outcome)
    return attempt_chain.lesson_of(outcome, same_fit=attempt_chain.fitted_generator(parent) == attempt_chain.fitted_generator(report))


READABLE_DIGITS = 4  # metric values in metadata: what a person reads (the report's JSON keeps full precision)


def readable(value: float | None) -> float:
    """A metric value as the UI shows it: rounded to READABLE_DIGITS decimals; NaN where it does not apply."""
    return float("nan") if value is None else round(float(value), READABLE_DIGITS)


def _metric_cells(name: str, value: float | None, interval: list | None, verdict: dict | None) -> dict:
    """A metric's cells in the report's metadata tables: its name, value, 95% interval as one string, and the
    threshold a check judges it by with its direction (empty cells where none applies: never NaN, which Dagster's
    JSON records cannot carry to the browser)."""
    return {
        "metric": name,
        "value": None if value is None else readable(value),
        "95% interval": f"{readable(interval[0]):g} – {readable(interval[1]):g}" if interval else "",
        "threshold": "" if verdict is None else (
            f"{'≥' if verdict.get('direction') == AT_LEAST else '≤'} {float(verdict['threshold']):g}"),
    }


METRIC_COLUMNS = (
    dg.TableColumn("metric", "string", description="The metric (docs/metrics.md); a check judges it when it has a threshold."),
    dg.TableColumn("value", "float", description="The metric's value; empty where it does not apply to this table."),
    dg.TableColumn("95% interval", "string", description="Bootstrap 95% interval of the value; empty when none."),
    dg.TableColumn("threshold", "string", description="≤: the value passes at or below it; ≥: at or above it; empty: not judged."),
)


def metrics_table(report: dict) -> dg.MetadataValue:
    """Every metric of the report, one row each: its value, its 95% interval and, for a judged one, its threshold.
    A table entry, which Dagster shows inline (a markdown table over 1,000 characters sits behind "[Show Markdown]")."""
    judged = {verdict["metric"]: verdict for verdict in report["verdicts"].values()}
    intervals = report.get("intervals") or {}
    records = [dg.TableRecord(_metric_cells(name, value, intervals.get(name), judged.get(name)))
               for name, value in report["metrics"].items()]
    return dg.MetadataValue.table(records, dg.TableSchema(columns=list(METRIC_COLUMNS)))


def verdict_table(report: dict) -> dg.MetadataValue:
    """One row per threshold check, as a person reads it in the UI: the metric it judges, its value, its 95% interval,
    the threshold with its direction and the verdict in words (as the HTML report's table).

    Narrow enough to be seen whole at 1600 px in the asset's Events tab (synth_platform_tests/test_report_in_browser.py):
    Dagster lays a table entry out inside its metadata table's value column (about 610 px there) and cannot wrap an
    identifier, so there is no check-name column (41 characters: the metric names the check, one per metric), the
    interval is one string and the verdict one word or a few. Empty cells where a metric does not apply (never NaN:
    Dagster sends each record as JSON, and the browser refuses NaN there: "Could not parse record"). The checks'
    own metadata keeps the typed value, threshold, interval ends and conclusiveness."""
    records = []
    for verdict in report["verdicts"].values():
        value, interval = verdict["value"], verdict.get("interval")
        if value is None:
            result = "pass (not applicable)"
        elif verdict["passed"]:
            result = "pass"
        else:
            result = "FAIL" if verdict.get("blocking", True) else "FAIL (warning)"
        if verdict.get("conclusive") is False:
            result += ", inconclusive"
        records.append(dg.TableRecord({**_metric_cells(verdict["metric"], value, interval, verdict), "verdict": result}))
    schema = dg.TableSchema(columns=[
        *METRIC_COLUMNS,
        dg.TableColumn("verdict", "string", description="pass or FAIL (a warning: a fidelity check that blocks nothing); "
                       "inconclusive: the threshold lies inside the interval, so a larger sample could flip it."),
    ])
    return dg.MetadataValue.table(records, schema)


def _write_temporary(directory: Path, suffix: str, content: str | bytes) -> str:
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=suffix)  # mkstemp creates it 0600: owner-only
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8") if isinstance(content, str) else content)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


HEADLINE_PNG = "privacy_utility_report_headline.png"  # beside the run's page; file_server.ALLOWED shows it


def write_report(report: dict, storage: PlatformStorage, run_id: str, html: str | None = None,
                 headline: bytes | None = None) -> Path:
    """The run's report (JSON, and the HTML page when given) in `runs/<run_id>/`, and the same as
    `reports/latest.json` / `reports/latest.html`; the headline plot's PNG (when given: only under the file server,
    which shows it in the UI) as `runs/<run_id>/privacy_utility_report_headline.png`. Every file is written
    owner-only (0600) to a temporary name first and moved into place only once all of them are complete, so a failed
    run never leaves half a file (nor a new JSON beside an old HTML page). Returns the run's JSON path."""
    text = json.dumps(report, indent=2, default=str)
    run_dir = storage.run_dir(run_id)
    storage.reports_dir.mkdir(parents=True, exist_ok=True)
    files: list[tuple[Path, str, str | bytes]] = [
        (run_dir, "privacy_utility_report.json", text), (storage.reports_dir, "latest.json", text)]
    if html is not None:
        files += [(run_dir, "privacy_utility_report.html", html), (storage.reports_dir, "latest.html", html)]
    if headline is not None:
        files.append((run_dir, HEADLINE_PNG, headline))
    written: list[tuple[str, Path]] = []
    try:
        for directory, name, content in files:
            written.append((_write_temporary(directory, Path(name).suffix, content), directory / name))
    except BaseException:
        for tmp, _ in written:
            os.unlink(tmp)
        raise
    for tmp, final in written:
        os.replace(tmp, final)
    return run_dir / "privacy_utility_report.json"


class BestAttemptConfig(dg.Config):
    chain: str = Field(default="", description="Id of the chain's first run; empty means the chain of this run.")


CHAIN_GREEN_CHECK = "chain_ended_green"


@dg.asset(
    deps=[privacy_utility_report],
    description="The best synthetic table of an optimizer chain (a first run and its adjusted re-runs): the best "
    "all-green attempt, or when none is green the best by a stated score, flagged as not green.",
    check_specs=[dg.AssetCheckSpec(
        CHAIN_GREEN_CHECK, asset="best_synthetic_table",
        description="Warns when the chain ended without an all-green attempt: the chosen table is the least bad, "
        "and which checks still fail, by how much, is in the check and the history table.",
    )],
)
def best_synthetic_table(
    context: dg.AssetExecutionContext, config: BestAttemptConfig, platform_storage: PlatformStorage
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    chain = config.chain or attempt_chain.attempt_of(context.run)["chain"]
    attempts = attempt_chain.chain_attempts(context.instance, chain)
    if not attempts:
        raise ValueError(f"No run belongs to chain {chain!r}; give the id of a chain's first run (tag {attempt_chain.CHAIN_TAG}).")
    choice = choose(attempts)
    best = choice.best
    if not best.synthetic_path or not Path(best.synthetic_path).exists():
        raise ValueError(f"The synthetic table of run {best.run_id} ({best.synthetic_path or 'no path'}) is gone; re-run the chain.")
    chosen = Path(best.synthetic_path)
    typed = chosen.with_suffix(".parquet")  # attempts made before the typed copy existed have the CSV only
    frame = pd.read_parquet(typed) if typed.exists() else pd.read_csv(chosen)
    path = platform_storage.run_dir(context.run_id) / "best_synthetic_table.csv"
    shutil.copyfile(chosen, path)
    if typed.exists():
        shutil.copyfile(typed, path.with_suffix(".parquet"))
    shortfalls = best.shortfalls()
    verdict = "all green" if choice.all_green else "NOT green, still failing: " + "; ".join(shortfalls)
    (context.log.info if choice.all_green else context.log.warning)(
        f"chain {chain}: chose attempt {best.attempt} (run {best.run_id}) of {len(attempts)}, {verdict}"
    )
    yield dg.Output(
        frame,
        metadata={
            "verdict": verdict,
            "chain": chain,
            "chosen_run": best.run_id,
            "chosen_attempt": best.attempt,
            "all_green": choice.all_green,
            "still_failing": dg.MetadataValue.json(shortfalls),
            "attempts": len(attempts),
            "history": _history_table(choice.history_rows),
            "score_rule": SCORE_RULE,
            "diagnosis_of_chosen": dg.MetadataValue.json(choice.diagnosis),
            "policy": dg.MetadataValue.md(policy_markdown()),
            "rows": len(frame),
            "csv_path": dg.MetadataValue.path(str(path)),
            "preview": _frame_preview(frame.drop(columns=_sensitive_columns_of(chosen.parent), errors="ignore")),
        },
    )
    yield dg.AssetCheckResult(
        check_name=CHAIN_GREEN_CHECK,
        passed=choice.all_green,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"attempt {best.attempt} of {len(attempts)} is all green" if choice.all_green else
                     f"chain ended without green: the best of {len(attempts)} attempts (attempt {best.attempt}) still fails "
                     + "; ".join(shortfalls)),
        metadata={"chosen_attempt": best.attempt, "attempts": len(attempts), "still_failing": dg.MetadataValue.json(shortfalls)},
    )


def _history_table(rows: list[dict[str, Any]]) -> dg.MetadataValue:
    """The chain's attempts as a table the UI shows inline (a markdown entry this long hides behind a click)."""
    kinds = {"attempt": "int", "KS mean": "float", "corr Δ": "float", "MIA AUC": "float", "copies": "float"}
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kinds.get(name, "string")) for name in HISTORY_COLUMNS])
    return dg.MetadataValue.table([dg.TableRecord({k: (readable(v) if isinstance(v, float) else v) for k, v in row.items()})
                                   for row in rows], schema)


def _sensitive_columns_of(run_dir: Path) -> list[str]:
    """The sensitive columns of the run whose table was chosen (from its profile.json); none if it has no profile."""
    path = run_dir / "profile.json"
    if not path.exists():
        return []
    return DatasetProfile.from_dict(json.loads(path.read_text(encoding="utf-8"))).sensitive_columns()


ALL_ASSETS = [source_sample, profiled_dataset, tuned_hyperparameters, synthetic_table, privacy_utility_report, best_synthetic_table]
