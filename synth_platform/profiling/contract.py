"""The source's data contract as a Great Expectations suite, and the row rules a synthetic table is held to.

Pure logic: no Dagster here. `expectation_suite` turns a profile into a GE suite (saved as GE's own JSON, so any GE
user can load it); `validate_contract` validates a table against it and can write GE's Data Docs;
`row_violations` computes the row-level rules of the same suite (ranges, allowed values, required values,
orderings) in pandas, fast enough to reject and regenerate generated rows. The suite publishes only what the profile
publishes: coded ranges, categories shared by at least k source rows, and nothing of sensitive columns' values; the
search for disclosed source values is `synth_platform.evaluation.disclosure`.

Columns with special values (±inf, sentinel dates) keep them out of their range rule by a pandas row condition;
columns whose names differ only by case (`Age`, `age`) are validated under stand-in names, because GE matches a
pandas column's name case-insensitively (the first match wins), and failures name the real columns.

Severity, in GE's own terms: a broken rule of the table's shape or of single rows is critical (the synthetic table
is wrong); a missing-value rate outside the tolerance is a warning (the table is valid but less faithful).
"""

from __future__ import annotations

import functools

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd

from synth_platform.profiling.data_docs import make_data_docs_offline
from synth_platform.profiling.profile import (
    ColumnProfile, DatasetProfile, align_for_comparison, apply_disclosure_control, as_number, special_masks,
)
from synth_platform.profiling.encoding import special_datetime, special_number
from synth_platform.profiling.values import datetime_text

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network from here, ever

MISSING_RATE_TOLERANCE = 0.03  # |synthetic − source| share of missing values, absolute (3 percentage points)
EXAMPLES = 5  # unexpected values shown per failed expectation
# GE resolves numpy names with np.dtype and pandas' nullable types by their class name in pandas (Int64Dtype).
NUMERIC_TYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
    "Float32Dtype", "Float64Dtype",
]
# GE names a naive datetime column's dtype ("datetime64") and, for a column of Python objects, each value's type.
# A time-zone aware column (datetime64[ns, UTC]) matches no name in GE's type-list check (it compares the dtype
# itself), so its type is checked by ExpectColumnValuesToBeOfType, which compares the dtype's scalar type: Timestamp.
DATETIME_TYPES = ["datetime64", "datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]", "Timestamp", "datetime"]
ZONED_DATETIME_TYPE = "Timestamp"
PYTHON_DATETIME_TYPES = {"date": ["date"], "datetime": ["datetime"]}  # columns of Python objects, value by value
DURATION_TYPES = ["timedelta64", "timedelta64[ns]"]
SECOND_FORMAT = "%Y-%m-%dT%H:%M:%S"
BOOLEAN_TYPES = ["bool", "BooleanDtype"]
TEXT_TYPES = ["str", "object", "StringDtype"]
ROW_RULES = ("not_null", "range", "allowed_values", "ordering")  # the rules rejection enforces, row by row


class ContractError(ValueError):
    """A suite the source itself fails: the profile is wrong, which is a bug; the message lists the failures."""


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str  # GE's expectation type
    columns: list[str]
    rule: str  # columns / type / not_null / missing_rate / range / allowed_values / unique_key / ordering
    severity: str  # critical or warning
    description: str  # the rule in words
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[Any] = field(default_factory=list)  # distinct unexpected values (pairs for orderings), with counts
    observed: Any = None

    def summary(self, show_examples: bool = True) -> str:
        where = f"{self.unexpected_count} row(s) ({self.unexpected_percent:.2f}%)" if self.unexpected_count is not None else ""
        seen = f"observed {self.observed}" if self.observed is not None and show_examples else ""
        shown = f"e.g. {', '.join(str(e) for e in self.examples)}" if self.examples and show_examples else ""
        return f"{self.description}: " + "; ".join(part for part in (where, seen, shown) if part)


@dataclass
class ContractValidation:
    success: bool  # every critical expectation met
    evaluated: int
    failed: list[FailedExpectation]
    data_docs_index: Path | None = None

    @property
    def critical_failures(self) -> list[FailedExpectation]:
        return [f for f in self.failed if f.severity == "critical"]

    @property
    def warnings(self) -> list[FailedExpectation]:
        return [f for f in self.failed if f.severity != "critical"]


def _type_list(column: ColumnProfile) -> list[str]:
    """The dtypes a column may have in a source-shaped table (align_for_comparison) or a decoded synthetic one."""
    if column.kind == "datetime":
        return PYTHON_DATETIME_TYPES.get(column.datetime_form or "", DATETIME_TYPES)
    if column.kind == "numeric" and column.conversion == "timedelta":
        return DURATION_TYPES
    if column.kind == "numeric" or column.dtype.lower().startswith(("int", "uint", "float")):
        return NUMERIC_TYPES
    if column.allowed_values and all(isinstance(v, bool) for v in column.allowed_values):
        return BOOLEAN_TYPES  # bool, or object holding bools when the column has gaps
    return TEXT_TYPES


def _datetime_bound(seconds: float, column: ColumnProfile, round_up: bool) -> str:
    whole = float(np.ceil(seconds) if round_up else np.floor(seconds))
    if column.datetime_form is not None:  # any year: Python's datetime holds 1-9999
        return datetime_text(whole, column.datetime_form, column.datetime_timezone)
    stamp = pd.Timestamp(whole, unit="s")
    if column.datetime_timezone:
        stamp = stamp.tz_localize("UTC").tz_convert(column.datetime_timezone)
    return stamp.isoformat()


@functools.lru_cache(maxsize=1024)
def _queryable(name: str) -> bool:
    """Whether a pandas query can name the column (backtick-quoted): not with a backtick, `#` or symbols such as
    ⟨ that pandas cannot turn into a Python identifier."""
    if "`" in name:
        return False
    try:
        pd.DataFrame({name: [0.0]}).query(f"~`{name}`.astype('str').isin(['x'])", engine="python")
    except Exception:  # noqa: BLE001 - pandas' own parse error: the name cannot be queried
        return False
    return True


def _special_values_aside(column: ColumnProfile) -> dict | None:
    """GE kwargs that leave a column's special values (±inf, sentinel dates) out of its range rule: a pandas row
    condition on their text (the same for source and synthetic values); {} when it has none. None when the column's
    name cannot be written in a pandas query (a backtick in it): the range is then a row rule only."""
    if not column.special_values:
        return {}
    if not _queryable(column.name):
        return None
    quoted = f"`{column.name}`"
    if column.kind == "datetime" and column.datetime_form not in PYTHON_DATETIME_TYPES:
        texts = sorted({special_datetime(column, s).strftime(SECOND_FORMAT) for s in column.special_values})
        accessor = f'{quoted}.dt.strftime("{SECOND_FORMAT}")'
    elif column.kind == "datetime":
        texts = sorted({str(special_datetime(column, s)) for s in column.special_values})
        accessor = f'{quoted}.astype("str")'
    else:
        texts = sorted({str(special_number(column, s)) for s in column.special_values})
        accessor = f'{quoted}.astype("str")'
    return {"row_condition": f"~{accessor}.isin({texts!r})", "condition_parser": "pandas"}


def _expectation_specs(profile: DatasetProfile, missing_rate_tolerance: float) -> list[tuple[str, dict, dict]]:
    """(GE expectation class name, kwargs, meta) for every rule of the contract, in a stable order."""
    specs: list[tuple[str, dict, dict]] = []

    def add(kind: str, kwargs: dict, rule: str, description: str, severity: str = "critical") -> None:
        specs.append((kind, kwargs, {"rule": rule, "description": description, "severity": severity}))

    output = profile.output_columns()
    add("ExpectTableColumnsToMatchOrderedList", {"column_list": output}, "columns",
        f"the synthetic table has the source's columns in order ({len(output)}; dropped columns left out)")
    for column in profile.columns:
        if column.name not in output:
            continue
        name = column.name
        if column.modelled and column.kind == "datetime" and column.datetime_timezone and column.datetime_form not in PYTHON_DATETIME_TYPES:
            add("ExpectColumnValuesToBeOfType", {"column": name, "type_": ZONED_DATETIME_TYPE}, "type",
                f"{name} has a {column.semantic_type} type (time zone {column.datetime_timezone})")
        elif column.modelled:  # surrogate keys are text whatever the source keys were
            add("ExpectColumnValuesToBeInTypeList", {"column": name, "type_list": _type_list(column)}, "type",
                f"{name} has a {column.semantic_type} type")
        if not column.has_missing:
            add("ExpectColumnValuesToNotBeNull", {"column": name}, "not_null", f"{name} is never missing (as in the source)")
        elif column.modelled:
            rate = column.missing_fraction
            low, high = max(0.0, rate - missing_rate_tolerance), min(1.0, rate + missing_rate_tolerance)
            words = f"{name} is missing in {low:.1%}–{high:.1%} of rows (source {rate:.1%} ± {missing_rate_tolerance:.0%})"
            if high < 1:
                add("ExpectColumnValuesToNotBeNull", {"column": name, "mostly": round(1 - high, 6)}, "missing_rate", words, "warning")
            if low > 0:
                add("ExpectColumnValuesToBeNull", {"column": name, "mostly": round(low, 6)}, "missing_rate", words, "warning")
        if column.treatment == "surrogate":
            if column.cardinality == profile.n_rows:
                add("ExpectColumnValuesToBeUnique", {"column": name}, "unique_key", f"{name} holds unique keys (as in the source)")
            continue
        if column.sensitive:
            continue  # its range and values are never published: the row rules enforce them (`row_violations`)
        aside = _special_values_aside(column)
        if aside is None or (column.kind == "numeric" and column.conversion == "timedelta"):
            pass  # GE cannot compare durations with numbers, nor query such a name: the row rules enforce the range
        elif column.kind == "numeric" and column.minimum is not None:
            add("ExpectColumnValuesToBeBetween", {"column": name, "min_value": column.minimum, "max_value": column.maximum, **aside},
                "range", f"{name} between {column.minimum:g} and {column.maximum:g}{_aside_words(column)}")
        elif column.kind == "datetime" and column.minimum is not None:
            low_text = _datetime_bound(column.minimum, column, round_up=False)
            high_text = _datetime_bound(column.maximum, column, round_up=True)
            add("ExpectColumnValuesToBeBetween", {"column": name, "min_value": low_text, "max_value": high_text, **aside},
                "range", f"{name} between {low_text} and {high_text}{_aside_words(column)}")
        elif column.kind == "categorical" and column.allowed_values is not None:
            shown = ", ".join(map(str, column.allowed_values[:8])) + (", …" if len(column.allowed_values) > 8 else "")
            add("ExpectColumnValuesToBeInSet", {"column": name, "value_set": list(column.allowed_values)},
                "allowed_values", f"{name} is one of the source's {len(column.allowed_values)} values ({shown})")
    for ordering in profile.orderings:
        add("ExpectColumnPairValuesAToBeGreaterThanB",
            {"column_A": ordering.high, "column_B": ordering.low, "or_equal": True, "ignore_row_if": "either_value_is_missing"},
            "ordering", f"{ordering.low} ≤ {ordering.high} (holds on every source row)")
    return specs


def _aside_words(column: ColumnProfile) -> str:
    if not column.special_values:
        return ""
    return f" (or one of its {len(column.special_values)} special value(s): {', '.join(s['value'] for s in column.special_values)})"


def expectation_suite(profile: DatasetProfile, name: str, missing_rate_tolerance: float = MISSING_RATE_TOLERANCE) -> dict:
    """The contract as a Great Expectations suite, in GE's JSON form (`gx.ExpectationSuite(**suite)` loads it)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    if not 0 <= missing_rate_tolerance < 1:
        raise ValueError(f"missing_rate_tolerance must be in [0, 1), got {missing_rate_tolerance}.")
    expectations = [
        getattr(gxe, kind)(**kwargs, meta=meta, severity=meta["severity"])
        for kind, kwargs, meta in _expectation_specs(profile, missing_rate_tolerance)
    ]
    meta = {"missing_rate_tolerance": missing_rate_tolerance, "rows_profiled": profile.n_rows}
    return gx.ExpectationSuite(name=name, expectations=expectations, meta=meta).to_json_dict()


def _context(project_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if project_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        project_dir.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def validate_contract(
    frame: pd.DataFrame, suite: dict, *, table_name: str = "synthetic_table", data_docs_dir: Path | None = None
) -> ContractValidation:
    """Validate `frame` against the suite. With `data_docs_dir`, through a GE checkpoint in a file project there,
    which also writes GE's Data Docs (HTML) of the suite and this validation; `data_docs_index` is their index page,
    which lists the validations of the project. The pages load their CSS, JavaScript and fonts from copies beside
    them (`data_docs.make_data_docs_offline`), so they work without a network."""
    import great_expectations as gx

    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 200}
    frame, suite, original_names = _distinct_names_for_ge(frame, suite)
    context = _context(data_docs_dir)
    # add_or_update: a project directory validated again (a re-run check) keeps one definition of each
    source = context.data_sources.add_or_update_pandas("tables")
    batch_definition = source.add_dataframe_asset(table_name).add_batch_definition_whole_dataframe("whole")
    loaded = gx.ExpectationSuite(**{k: v for k, v in suite.items() if k != "id"})
    index = None
    if data_docs_dir is None:
        result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(loaded, result_format=result_format)
    else:
        loaded = context.suites.add_or_update(loaded)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(data=batch_definition, suite=loaded, name=f"{table_name}_vs_source_contract")
        )
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name="source_contract", validation_definitions=[definition], result_format=result_format,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
        ))
        (result,) = checkpoint.run(batch_parameters={"dataframe": frame}).run_results.values()
        index = Path(url2pathname(urlparse(context.get_docs_sites_urls()[0]["site_url"]).path))
        make_data_docs_offline(index.parent)  # GE's pages load their CSS and JS from CDNs: local copies instead
    failed = [_failed(r, original_names) for r in result.results if not r.success]
    return ContractValidation(
        success=not any(f.severity == "critical" for f in failed), evaluated=len(result.results), failed=failed,
        data_docs_index=index,
    )


def _distinct_names_for_ge(frame: pd.DataFrame, suite: dict) -> tuple[pd.DataFrame, dict, dict[str, str]]:
    """GE finds a pandas column by a case-insensitive match, the first one in the table's order (its SQL dialects
    fold case), so with columns `Age`, `age` and `AGE` every expectation on `age` or `AGE` checks `Age`. Columns
    whose names fold to the same text are validated under stand-in names (`age (2)`) in the frame and the suite;
    failures name the real columns again. Returns the frame, the suite and {stand-in: real name}."""
    names = [str(name) for name in frame.columns]
    folded: dict[str, list[str]] = {}
    for name in names:
        folded.setdefault(name.casefold(), []).append(name)
    clashing = [group for group in folded.values() if len(group) > 1]
    if not clashing:
        return frame, suite, {}
    taken = {name.casefold() for name in names}
    renamed: dict[str, str] = {}
    for group in clashing:
        for number, name in enumerate(group, start=1):
            stand_in, extra = f"{name} ({number})", number  # a name pandas queries (row conditions) can hold
            while stand_in.casefold() in taken or not _queryable(stand_in):
                extra += len(group)
                stand_in = f"{name} ({extra})" if _queryable(f"{name} ({extra})") else f"column ({extra})"
            taken.add(stand_in.casefold())
            renamed[name] = stand_in
    suite = {**suite, "expectations": [_renamed_expectation(e, renamed) for e in suite.get("expectations", [])]}
    return frame.rename(columns=renamed), suite, {new: old for old, new in renamed.items()}


def _renamed_expectation(expectation: dict, renamed: dict[str, str]) -> dict:
    kwargs = dict(expectation.get("kwargs", {}))
    for key in ("column", "column_A", "column_B"):
        if key in kwargs:
            kwargs[key] = renamed.get(kwargs[key], kwargs[key])
    if "column_list" in kwargs:
        kwargs["column_list"] = [renamed.get(name, name) for name in kwargs["column_list"]]
    condition = kwargs.get("row_condition")  # the pandas query of special values aside (as text, or GE's dict of it)
    if isinstance(condition, dict) and isinstance(condition.get("pass_through_filter"), str):
        kwargs["row_condition"] = {**condition, "pass_through_filter": _renamed_query(condition["pass_through_filter"], renamed)}
    elif isinstance(condition, str):
        kwargs["row_condition"] = _renamed_query(condition, renamed)
    return {**expectation, "kwargs": kwargs}


def _renamed_query(query: str, renamed: dict[str, str]) -> str:
    return re.sub(r"`([^`]*)`", lambda match: f"`{renamed.get(match.group(1), match.group(1))}`", query)


def _failed(result, original_names: dict[str, str] | None = None) -> FailedExpectation:
    config = result.expectation_config
    kwargs, meta = dict(config.kwargs), dict(config.meta or {})
    original_names = original_names or {}
    columns = [original_names.get(kwargs[k], kwargs[k]) for k in ("column", "column_A", "column_B") if k in kwargs]
    details = result.result or {}
    examples: list[Any] = []
    for entry in (details.get("partial_unexpected_counts") or [])[:EXAMPLES]:
        value = entry["value"]
        value = tuple(_readable(v) for v in value) if isinstance(value, (tuple, list)) else _readable(value)
        examples.append(f"{value} ×{entry['count']}" if entry.get("count", 1) > 1 else value)
    if not examples:
        examples = [_readable(v) for v in (details.get("partial_unexpected_list") or [])[:EXAMPLES]]
    exception = (result.exception_info or {}).get("exception_message") if isinstance(result.exception_info, dict) else None
    return FailedExpectation(
        expectation=config.type,
        columns=columns,
        rule=meta.get("rule", config.type),
        severity=meta.get("severity", "critical"),
        description=meta.get("description", config.type) + (f" (GE could not evaluate it: {exception})" if exception else ""),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=details.get("unexpected_percent"),
        examples=examples,
        observed=_renamed_back(_readable(details.get("observed_value")), original_names),
    )


def _renamed_back(value: Any, original_names: dict[str, str]) -> Any:
    if original_names and isinstance(value, list):
        return [original_names.get(item, item) if isinstance(item, str) else item for item in value]
    return value


def _readable(value: Any) -> Any:
    if isinstance(value, (np.datetime64, pd.Timestamp)):
        return str(pd.Timestamp(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_suite_on_source(training: pd.DataFrame, profile: DatasetProfile, suite: dict) -> ContractValidation:
    """Validate the suite on the source rows it was made from, as the profile codes them (rare values generalised,
    ranges coded: `apply_disclosure_control`); any failure (warnings too) is a bug in the profile."""
    controlled = apply_disclosure_control(training, profile)
    validation = validate_contract(align_for_comparison(controlled, profile), suite, table_name="source_training")
    if validation.failed:
        raise ContractError(
            "The source fails its own expectation suite, so the profile is wrong (please report it): "
            + "; ".join(f.summary(show_examples=False) for f in validation.failed)  # never the source's values
        )
    return validation


def row_violations(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """One boolean column per row rule of the contract ("range: age", "ordering: start ≤ end", …): True where the
    row breaks it. The same rules, with the same bounds, as the suite's critical row-level expectations."""
    aligned = align_for_comparison(frame, profile)
    broken: dict[str, pd.Series] = {}
    for column in profile.columns:
        if column.name not in aligned or column.treatment != "model":
            continue
        values = aligned[column.name]
        present = values.notna()
        if not column.has_missing:
            broken[f"not_null: {column.name}"] = ~present
        if column.kind in ("numeric", "datetime") and column.minimum is not None:
            numbers = _numbers(values, column)
            low, high = column.minimum, column.maximum
            if column.kind == "datetime":
                low, high = float(np.floor(low)), float(np.ceil(high))
            special = np.zeros(len(numbers), dtype=bool)
            for mask in special_masks(numbers.to_numpy(), column).values():
                special |= mask
            broken[f"range: {column.name}"] = present & ~((numbers >= low) & (numbers <= high)) & ~special
        elif column.kind == "categorical" and column.allowed_values is not None:
            broken[f"allowed_values: {column.name}"] = present & ~values.isin(column.allowed_values)
    for ordering in profile.orderings:
        low_column, high_column = profile.column(ordering.low), profile.column(ordering.high)
        low, high = _numbers(aligned[ordering.low], low_column), _numbers(aligned[ordering.high], high_column)
        broken[f"ordering: {ordering}"] = low.notna() & high.notna() & (low > high)
    return pd.DataFrame(broken, index=aligned.index).astype(bool)


def _numbers(values: pd.Series, column: ColumnProfile) -> pd.Series:
    return pd.Series(as_number(values, column.kind), index=values.index)
