"""The profile's data model: what is recorded about each column and about the table, and the internal names an
encoded table uses. Pure logic: no Dagster here. `profile.py` fills it in; `encoding.py` turns rows into what a
generator learns and back by it; `contract.py` turns it into the source's data contract.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SemanticType = Literal[
    "numeric_continuous", "numeric_discrete", "categorical", "boolean", "datetime", "free_text", "identifier"
]
SEMANTIC_TYPES: tuple[str, ...] = SemanticType.__args__  # type: ignore[attr-defined]
ColumnKind = Literal["numeric", "categorical", "datetime", "identifier", "text"]  # what metrics and encoders use
KIND_OF_TYPE: dict[str, ColumnKind] = {
    "numeric_continuous": "numeric", "numeric_discrete": "numeric", "categorical": "categorical",
    "boolean": "categorical", "datetime": "datetime", "free_text": "text", "identifier": "identifier",
}
# model: the generator learns it. surrogate: left out of the generator, fresh keys in the synthetic table.
# drop: left out of the generator and of the synthetic table. refuse: the run stops until the column is dropped.
Treatment = Literal["model", "surrogate", "drop", "refuse"]
TREATMENTS: tuple[str, ...] = Treatment.__args__  # type: ignore[attr-defined]

MISSING_TOKEN = "__missing__"  # the category missing values become; another one where a column holds this text
OTHER_VALUE = "(other)"  # what categories seen in fewer than k source rows become (text columns)
RARE_VALUE_K = 5  # a value must occur in at least this many source rows to be learnt, published or generated
RareCategoryHandling = Literal["other", "missing"]
RARE_CATEGORY_HANDLINGS: tuple[str, ...] = RareCategoryHandling.__args__  # type: ignore[attr-defined]
# Indicator columns of the encoded table are named `<column><marker><state>`: `age__is_missing`. The marker is
# chosen per profile so that no indicator name is also the name of a column (`x` next to a column `x__is_missing`
# gets `x__is2_missing`); MISSING_INDICATOR_SUFFIX is the usual one.
INDICATOR_MARKER = "__is_"
MISSING_STATE = "missing"
MISSING_INDICATOR_SUFFIX = INDICATOR_MARKER + MISSING_STATE
POSITIVE_INFINITY, NEGATIVE_INFINITY, SENTINEL = "posinf", "neginf", "sentinel"  # special states (+ a number)
SURROGATE_PREFIX = "SYN-"
SURROGATE_EMAIL_DOMAIN = "synthetic.invalid"  # RFC 2606: .invalid never resolves
DATETIME_RESOLUTIONS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


class ProfileError(ValueError):
    """The table or an override cannot be turned into a generator's training frame; the message says what to do."""


@dataclass
class ColumnProfile:
    name: str
    semantic_type: SemanticType
    dtype: str
    missing_fraction: float
    cardinality: int
    treatment: Treatment = "model"
    minimum: float | None = None  # numeric: the value; datetime: seconds since 1970 (UTC); special values aside
    maximum: float | None = None
    allowed_values: list[Any] | None = None  # categorical and boolean: the values seen (nulls aside)
    identifier_reason: str = ""  # why the column identifies a person ("" when it does not)
    quasi_identifier: bool = False  # an attribute that helps re-identify people in combination with others
    datetime_resolution: str | None = None  # day / hour / minute / second: synthetic datetimes are rounded to it
    datetime_timezone: str | None = None  # the source's time zone; None for naive datetimes
    overridden: bool = False  # type or treatment set by config, not inferred
    handling: str = ""  # what happens to the column, in words
    sensitive: bool = False  # declared sensitive: modelled, but its values are never published (profile, suite, previews)
    acknowledged_identifier: str = ""  # detected as an identifier (the reason), modelled because config acknowledged it
    rare_values_generalised: int = 0  # distinct categories seen in fewer than k source rows, generalised
    rows_generalised: int = 0  # source rows whose category was generalised
    rows_bottom_coded: int = 0  # source rows below the k-th smallest value, raised to it
    rows_top_coded: int = 0  # source rows above the k-th largest value, lowered to it
    source_type: str = ""  # the column's SQL type as the sampler read it ("" when not given)
    conversion: str = ""  # how values are read before anything else (values.CONVERSIONS), "" when as they are
    decimals: int | None = None  # numeric(p, s): synthetic values are rounded to s decimals
    # How synthetic datetimes are held: None for pandas datetime64[ns]; "date" / "datetime" for Python objects
    # and "datetime64[s]" (or ms, us) for columns with values outside datetime64[ns]'s years 1677-2262.
    datetime_form: str | None = None
    # Values modelled as states of their own, each by an indicator column and restored as itself: ±inf in numbers,
    # sentinel dates (9999-12-31). Each {"state", "value" (as text), "rows", and for sentinels "seconds"}.
    special_values: list[dict[str, Any]] = field(default_factory=list)
    rows_special_to_missing: int = 0  # rows of special values seen in fewer than k rows: coded to missing
    missing_token: str = MISSING_TOKEN  # categorical: the category missing values become (never one of its values)
    transform: str | None = None  # "asinh": numbers too large for float32 generators, modelled as asinh(x / scale)
    transform_scale: float = 1.0

    @property
    def kind(self) -> ColumnKind:
        return KIND_OF_TYPE[self.semantic_type]

    @property
    def is_integer(self) -> bool:
        return self.semantic_type == "numeric_discrete"

    @property
    def has_missing(self) -> bool:
        return self.missing_fraction > 0

    @property
    def modelled(self) -> bool:
        return self.treatment == "model"

    def special_states(self) -> list[str]:
        return [special["state"] for special in self.special_values]


@dataclass(frozen=True)
class Ordering:
    """`low` ≤ `high` on every source row where both are present (e.g. admission ≤ discharge)."""

    low: str
    high: str

    def __str__(self) -> str:
        return f"{self.low} ≤ {self.high}"


@dataclass
class DatasetProfile:
    n_rows: int
    columns: list[ColumnProfile] = field(default_factory=list)
    orderings: list[Ordering] = field(default_factory=list)
    rows_unique_on_quasi_identifiers: float | None = None  # share of rows no other row shares the QI values of
    rare_value_k: int = RARE_VALUE_K  # values seen in fewer source rows are generalised (categories) or coded (ranges)
    rare_category_handling: RareCategoryHandling = "other"
    indicator_marker: str = INDICATOR_MARKER  # see `indicator`: chosen so no indicator name is a column's name
    # Columns of the source that are not in the profile, and why: left out by the sampler (not read) or by the
    # profiler (values of a type no generator can learn, e.g. bytes). The synthetic table has none of them.
    left_out_columns: dict[str, str] = field(default_factory=dict)

    def by_kind(self, *kinds: ColumnKind) -> list[str]:
        """The modelled columns of these kinds (the ones a generator learns and the report compares)."""
        return [column.name for column in self.columns if column.kind in kinds and column.modelled]

    def by_treatment(self, *treatments: Treatment) -> list[str]:
        return [column.name for column in self.columns if column.treatment in treatments]

    def identifiers(self) -> list[str]:
        return [column.name for column in self.columns if column.semantic_type == "identifier"]

    def quasi_identifiers(self) -> list[str]:
        return [column.name for column in self.columns if column.quasi_identifier and column.modelled]

    def output_columns(self) -> list[str]:
        """The synthetic table's columns, in source order: everything but the dropped columns."""
        return [column.name for column in self.columns if column.treatment in ("model", "surrogate")]

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def sensitive_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.sensitive]

    def indicator(self, column: str, state: str = MISSING_STATE) -> str:
        """The encoded table's 0/1 column saying the value of `column` is missing (or in a special `state`)."""
        return f"{column}{self.indicator_marker}{state}"

    def to_dict(self, published: bool = True) -> dict:
        """The profile as JSON. `published` (the default: profile.json, metadata) withholds the values of sensitive
        columns (allowed values, range and special values); `published=False` keeps them, for the platform's own
        sealed storage."""
        columns = [asdict(column) for column in self.columns]
        if published:
            for column in columns:
                if column["sensitive"]:
                    column.update(allowed_values=None, minimum=None, maximum=None)
                    column["special_values"] = [
                        {**special, "value": None, "seconds": None} for special in column["special_values"]
                    ]
        return {
            "n_rows": self.n_rows,
            "columns": columns,
            "orderings": [asdict(ordering) for ordering in self.orderings],
            "rows_unique_on_quasi_identifiers": self.rows_unique_on_quasi_identifiers,
            "rare_value_k": self.rare_value_k,
            "rare_category_handling": self.rare_category_handling,
            "indicator_marker": self.indicator_marker,
            "left_out_columns": dict(self.left_out_columns),
        }

    @classmethod
    def from_dict(cls, data: dict) -> DatasetProfile:
        return cls(
            n_rows=data["n_rows"],
            columns=[ColumnProfile(**column) for column in data["columns"]],
            orderings=[Ordering(**ordering) for ordering in data.get("orderings", [])],
            rows_unique_on_quasi_identifiers=data.get("rows_unique_on_quasi_identifiers"),
            rare_value_k=data.get("rare_value_k", RARE_VALUE_K),
            rare_category_handling=data.get("rare_category_handling", "other"),
            indicator_marker=data.get("indicator_marker", INDICATOR_MARKER),
            left_out_columns=dict(data.get("left_out_columns", {})),
        )
