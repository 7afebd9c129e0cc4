"""Blocking asset checks: the synthetic table against the source's contract, one per "all green" threshold of the
report, and one per fidelity threshold (detection AUC, TSTR/TRTR ratio). Every check is defined blocking; Dagster
blocks downstream assets only on a failure of ERROR severity, so the fidelity checks, which fail with WARN unless
the report's thresholds say `fidelity_checks_blocking`, warn without blocking by default."""

import json

import dagster as dg

from synth_platform.assets import (
    ProfiledDataset, SyntheticTable, page_links, privacy_utility_report, readable, synthetic_table,
)
from synth_platform.profiling.contract import validate_contract
from synth_platform.profiling.disclosure import KINDS, find_disclosures
from synth_platform.resources import PlatformStorage
from synth_platform.sampling.source import SourceSample
from synth_platform.evaluation.thresholds import FIDELITY_RULES, THRESHOLD_RULES, ThresholdRule, evaluate_threshold


def _digits_apart(value: float, threshold: float, least: int = 4, most: int = 10) -> int:
    """Decimals enough to tell a value from its threshold (4 usually; more when they differ further down: a KS
    mean of 0.10004 failing 0.1 must not read "0.1000 > 0.1000")."""
    digits = least
    while digits < most and value != threshold and f"{value:.{digits}f}" == f"{threshold:.{digits}f}":
        digits += 1
    return digits


def threshold_check(rule: ThresholdRule) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=privacy_utility_report, name=rule.check_name, blocking=True, description=rule.description)
    def _check(privacy_utility_report: dict) -> dg.AssetCheckResult:
        verdict = evaluate_threshold(privacy_utility_report, rule)
        value = verdict["value"]
        if value is None:
            text = f"{rule.metric} is not applicable to this table"
        else:
            relation = rule.relation(verdict["passed"])
            interval = verdict.get("interval")
            digits = _digits_apart(value, verdict["threshold"])
            shown = f"{value:.{digits}f}" + (f" (95% interval {interval[0]:.4f}–{interval[1]:.4f})" if interval else "")
            text = (f"{rule.metric} = {shown} {relation} {verdict['threshold']:.{digits}f} "
                    f"(margin {verdict['margin']:+.{digits}f})")
            if verdict.get("conclusive") is False:
                text += "; the threshold lies inside the interval, so this verdict is not conclusive"
            if not verdict["passed"] and not verdict["blocking"]:
                text += "; a warning: it blocks nothing (set fidelity_checks_blocking to make it block)"
        interval_metadata = {}
        if verdict.get("interval"):
            interval_metadata = {
                "interval_low": readable(verdict["interval"][0]),
                "interval_high": readable(verdict["interval"][1]),
                "conclusive": verdict["conclusive"],
            }
        return dg.AssetCheckResult(
            passed=verdict["passed"],
            # The four "all green" checks always ERROR; the fidelity ones only when the report says they block.
            severity=dg.AssetCheckSeverity.ERROR if verdict["blocking"] else dg.AssetCheckSeverity.WARN,
            description=text,
            metadata={
                "metric": rule.metric,
                "direction": rule.direction,
                "blocking": verdict["blocking"],
                "value": readable(value),
                "threshold": verdict["threshold"],
                "margin": readable(verdict["margin"]),
                "summary": text,
                **interval_metadata,
            },
        )

    return _check


THRESHOLD_CHECKS = [threshold_check(rule) for rule in THRESHOLD_RULES]
FIDELITY_CHECKS = [threshold_check(rule) for rule in FIDELITY_RULES]


@dg.asset_check(
    asset=synthetic_table,
    name="synthetic_table_meets_source_contract",
    blocking=True,
    additional_ins={"profiled_dataset": dg.AssetIn("profiled_dataset")},
    description="The synthetic table passes the source's Great Expectations suite (types, required values, ranges, "
    "allowed values, unique keys, orderings; missing-value rates warn).",
)
def synthetic_table_meets_source_contract(
    context: dg.AssetCheckExecutionContext,
    synthetic_table: SyntheticTable,
    profiled_dataset: ProfiledDataset,
    platform_storage: PlatformStorage,
) -> dg.AssetCheckResult:
    profile = profiled_dataset.profile
    docs_dir = platform_storage.run_dir(context.op_execution_context.run_id) / "great_expectations"
    validation = validate_contract(synthetic_table.frame, profiled_dataset.expectation_suite, data_docs_dir=docs_dir)
    sensitive = set(profile.sensitive_columns())
    critical, warnings = validation.critical_failures, validation.warnings
    passed = not validation.failed
    parts = [f"{validation.evaluated - len(validation.failed)} of {validation.evaluated} expectations met"]
    if critical:
        parts.append("failed: " + "; ".join(f.summary(show_examples=not sensitive & set(f.columns)) for f in critical))
    if warnings:
        parts.append("warnings: " + "; ".join(f.summary() for f in warnings))
    text = ". ".join(parts)
    (context.log.info if passed else context.log.error)(text)
    records = [
        dg.TableRecord({
            "expectation": f.expectation, "columns": ", ".join(f.columns), "rule": f.rule, "severity": f.severity,
            "unexpected_rows": f.unexpected_count if f.unexpected_count is not None else -1,
            "unexpected_percent": f.unexpected_percent if f.unexpected_percent is not None else float("nan"),
            "examples": "(withheld: sensitive column)" if sensitive & set(f.columns) else json.dumps(f.examples, default=str),
            "description": f.description,
        })
        for f in validation.failed
    ]
    schema = dg.TableSchema(columns=[
        dg.TableColumn("expectation", "string"), dg.TableColumn("columns", "string"), dg.TableColumn("rule", "string"),
        dg.TableColumn("severity", "string"), dg.TableColumn("unexpected_rows", "int"),
        dg.TableColumn("unexpected_percent", "float"), dg.TableColumn("examples", "string"),
        dg.TableColumn("description", "string"),
    ])
    return dg.AssetCheckResult(
        passed=passed,
        # Only warnings (missing-value rates) failing: the table is valid but less faithful; it does not block.
        severity=dg.AssetCheckSeverity.ERROR if critical else dg.AssetCheckSeverity.WARN,
        description=text,
        metadata={
            "summary": text,
            "expectations": validation.evaluated,
            "failed_critical": len(critical),
            "failed_warnings": len(warnings),
            "failed_expectations": dg.MetadataValue.table(records, schema),
            "rejected_during_generation": dg.MetadataValue.json(synthetic_table.contract_rejections),
            "expectation_suite_path": dg.MetadataValue.path(profiled_dataset.expectation_suite_path),
            "data_docs": dg.MetadataValue.path(str(validation.data_docs_index)),
            **page_links({"data_docs_page": validation.data_docs_index}, platform_storage),
        },
    )


@dg.asset_check(
    asset=synthetic_table,
    name="synthetic_table_discloses_no_source_values",
    blocking=True,
    additional_ins={"profiled_dataset": dg.AssetIn("profiled_dataset"), "source_sample": dg.AssetIn("source_sample")},
    description="No cell of the synthetic table holds a source identifier value (names, e-mails, record numbers, "
    "keys), a category seen in fewer than k source rows, a number or datetime beyond the published coded range, or "
    "a sensitive filter value. Counts by column only, never the values.",
)
def synthetic_table_discloses_no_source_values(
    context: dg.AssetCheckExecutionContext,
    synthetic_table: SyntheticTable,
    profiled_dataset: ProfiledDataset,
    source_sample: SourceSample,
) -> dg.AssetCheckResult:
    profile = profiled_dataset.profile
    findings = find_disclosures(
        synthetic_table.frame, source_sample.training, profile, holdout=source_sample.holdout,
        secret_values=source_sample.secret_values,
    )
    text = findings.summary()
    (context.log.info if findings.passed else context.log.error)(f"value disclosure: {text}")
    by_kind = findings.to_dict()
    return dg.AssetCheckResult(
        passed=findings.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=text,
        metadata={
            "summary": text,
            "cells_found": findings.cells,
            "rare_value_k": profile.rare_value_k,
            **{kind: dg.MetadataValue.json(by_kind[kind]) for kind in KINDS},
            "identifier_columns_searched_for": profile.identifiers(),
        },
    )


ALL_CHECKS = [synthetic_table_meets_source_contract, synthetic_table_discloses_no_source_values, *THRESHOLD_CHECKS,
              *FIDELITY_CHECKS]
