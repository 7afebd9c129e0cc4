"""The privacy ledger: every epsilon spent on a source table, summed per table, against a budget per table.

What is a spend. Three steps of the chain spend differential-privacy budget on the rows of a source table, and
each records what it spent as one `Spend`:

- `noised_read` — `source_sample` with query-level noise: the bounded Laplace mechanism, ε-locally differentially
  private for the noised columns of each row (`sampling/noise.py`); a noised read spends its ε again every time.
- `dp_tuning` — `tuned_hyperparameters` with a DP generator (`generators.DP_PLUGINS`): every trial that trained
  fits a DP model on the tuning rows (a part of the same training rows), so n trials spend n × ε.
- `dp_training` — `synthetic_table` with a DP generator: the final fit on the training rows spends its ε.

How spends compose. Basic (sequential) composition: ε_total = Σ ε_i over every spend recorded on the table. It is an
upper bound that holds for any sequence of ε-DP mechanisms run on the same rows, each chosen after seeing the
results of the ones before; (ε, δ)-DP training adds its δ too (δ = 1/(10 n) per fit, named in each entry's
detail). Local-DP reads and central-DP training count alike: the sum does not claim they protect the same thing,
it bounds what all of them together reveal. Tighter accountants (advanced composition, RDP) would give a smaller
total; the ledger keeps the simple bound that needs no assumption. Re-runs of an auto-optimizer chain are ordinary
runs: they spend and are summed the same way.

What is not counted. Steps without differential privacy spend no ε and are not bounded by any: a non-DP generator
(ddpm, ctgan, tvae) trained on the rows, the columns a noised read returns exactly, the holdout the report compares
with, and the choice among tuning trials (scored on validation rows without noise).

The budget. `check` refuses a step whose planned spend would take the table's total past its budget, before the
step spends anything; a budget of 0 means no limit (spends are still recorded). Two runs spending on the same table
at the same moment are each checked against what was recorded before them (the check and the record are not one
transaction).

Which table. `source_id` names a table by its database and schema-qualified name —
`<dialect>://<host>:<port>/<database>#<schema.table>` — built from the source URL without user, password or query
parameters: the ledger never holds a credential, and nothing else of the URL that could differ between two
connections to the same table. A source whose host lives only in the query (`?host=…`, a service file) is named
without it: such sources share one total, which can only refuse more, never less.

Pure logic: no Dagster here. The table's DDL lives in `sql/privacy_ledger.<dialect>.sql`; it is created on first use
in the memory database (the tuning memory's, SQLite or PostgreSQL). Rows are appended, never changed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from synth_platform import ddl
from synth_platform.sampling.credentials import _parts as url_parts  # the URL's real host (a raw `@` in a password)

LEDGER_TABLE = "synth_privacy_ledger"
KINDS = ("noised_read", "dp_tuning", "dp_training")
COMPOSITION_RULE = (
    "basic composition: the epsilons of every spend on the table add up, ε_total = Σ ε_i, an upper bound valid "
    "for any sequence of ε-DP mechanisms on the same rows (adaptively chosen or not); (ε, δ)-DP training adds its "
    "δ too. Query-level noised reads (local DP on the noised columns) and DP tuning trials and training (central "
    "DP on the training rows) count alike."
)
NOT_COUNTED = (
    "steps without differential privacy spend no ε and are not bounded by the budget: non-DP generators trained "
    "on the rows, the columns a noised read returns exactly, the holdout the report compares with, and the choice "
    "among tuning trials (scored on validation rows without noise)."
)
TOLERANCE = 1e-9  # 0.6 + 0.4 may sum to 1.0000000000000002: not over a budget of 1.0
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
SHOWN_ENTRIES = 50  # entries a standing lists (the newest); the sums always cover all
SHOWN_RUNS = 10  # runs a refusal names per kind
BUDGET_SETTING = "ops.source_sample.config.privacy_budget_epsilon"
EPSILON_SETTING = "ops.tuned_hyperparameters.config.epsilon"


def _parsed(url: str) -> tuple[sa.URL, str]:
    """`url` parsed, and its real host (a raw `@` in a password never ends up in it); ValueError without echoing
    the URL when it cannot be parsed."""
    try:
        parsed, _, host = url_parts(url)
    except Exception:  # noqa: BLE001 - never echo the URL: it may hold a secret
        raise ValueError("The source database URL cannot be parsed, so the privacy ledger cannot name its table.") from None
    return parsed, host or ""


def source_id(url: str, table: str) -> str:
    """Which table of which database: `<dialect>://<host>:<port>/<database>#<table>` with `table` as read
    (schema-qualified: `public.patients`, `main.adult`). The user, password and query parameters of `url` are left
    out (never read, never rendered); the dialect loses its driver (`postgresql+psycopg2` → `postgresql`), the host
    is lower-cased, a missing port is the dialect's default and a SQLite file's path is made absolute, so two
    spellings of one database agree."""
    parsed, host = _parsed(url)
    backend = parsed.get_backend_name()
    backend = "postgresql" if backend == "postgres" else backend
    host = host.lower()
    port = parsed.port or DEFAULT_PORTS.get(backend)
    database = parsed.database or ""
    if backend == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        database = os.path.abspath(database)
    server = f"{host}:{port}" if port else host
    return f"{backend}://{server}/{database}#{table}"


def source_id_before_read(url: str, table: str) -> str | None:
    """The table's `source_id` when it is known without connecting: a schema-qualified name, or any name on
    SQLite (always `main`, as `sampling.source.resolve_schema` says). None for an unqualified name elsewhere, which
    the database's search_path resolves, and for a URL that cannot be parsed (the read refuses it on its own)."""
    try:
        backend = _parsed(url)[0].get_backend_name()
    except ValueError:
        return None
    schema, _, _ = str(table).rpartition(".")
    if schema:
        return source_id(url, table)
    if backend == "sqlite":
        return source_id(url, f"main.{table}")
    return None


@dataclass(frozen=True)
class Spend:
    """One spend of privacy budget on a source table."""

    source: str  # source_id: never a credential
    run_id: str  # the Dagster run
    step: str  # the asset that spent
    kind: str  # one of KINDS
    epsilon: float
    detail: str = ""  # the mechanism in words: never a source value
    created_at: str = ""  # ISO time the ledger stored it (empty before it is stored)
    id: int | None = None

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"A spend's kind must be one of {list(KINDS)}, got {self.kind!r}.")
        if isinstance(self.epsilon, bool) or not isinstance(self.epsilon, (int, float)) or not math.isfinite(self.epsilon) or self.epsilon < 0:
            raise ValueError(f"A spend's epsilon must be a finite number ≥ 0, got {self.epsilon!r}.")
        if not self.source or not self.run_id or not self.step:
            raise ValueError("A spend names its source table, run and step.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LedgerRefusal(ValueError):
    """A step would take a table past its privacy budget; nothing was spent. The message says what to change."""


def _eps(value: float) -> str:
    """An epsilon as people read it: 0.6, 1.0, 1.2 (not 1.2000000000000002)."""
    return repr(float(f"{float(value):.9g}"))


def _sum(values: Iterable[float]) -> float:
    return float(f"{math.fsum(values):.12g}")


def spent_by_kind(entries: Sequence[Spend]) -> dict[str, float]:
    """ε per kind (only kinds with a spend)."""
    return {kind: _sum(e.epsilon for e in entries if e.kind == kind) for kind in KINDS if any(e.kind == kind for e in entries)}


def breakdown(entries: Sequence[Spend]) -> str:
    """What was spent, by kind with its runs: "noised_read ε = 0.6 (run 4f…), dp_training ε = 1.2 (runs a…, b…)"."""
    parts = []
    for kind, total in spent_by_kind(entries).items():
        runs = list(dict.fromkeys(e.run_id for e in entries if e.kind == kind))
        shown = ", ".join(runs[:SHOWN_RUNS]) + (f" and {len(runs) - SHOWN_RUNS} more" if len(runs) > SHOWN_RUNS else "")
        parts.append(f"{kind} ε = {_eps(total)} ({'run' if len(runs) == 1 else 'runs'} {shown})")
    return ", ".join(parts) or "nothing"


def _check_number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"The {name} must be a finite number ≥ 0, got {value!r}.")
    return float(value)


def refusal(source: str, planned: float, budget: float, entries: Sequence[Spend], what: str) -> LedgerRefusal | None:
    """The refusal of a step planning to spend `planned` on `source` with `entries` already spent, or None when it
    fits the budget (or the budget is 0: no limit, or the step spends nothing)."""
    planned, budget = _check_number("planned epsilon", planned), _check_number("privacy budget", budget)
    spent = _sum(e.epsilon for e in entries)
    if budget == 0 or planned == 0 or spent + planned <= budget + TOLERANCE:
        return None
    return LedgerRefusal(
        f"The privacy budget of table {source} refuses {what}: it would spend ε = {_eps(planned)}, and "
        f"ε = {_eps(spent)} is spent already ({breakdown(entries)}); {_eps(spent)} spent + {_eps(planned)} planned = "
        f"{_eps(spent + planned)} > the table's budget of ε = {_eps(budget)} (basic composition: the epsilons of every "
        "noised read and DP run on a table add up). Nothing was spent by this step. To go on: raise the table's budget "
        f"({BUDGET_SETTING}), use a DP plugin with a smaller epsilon ({EPSILON_SETTING}; tuning spends it once per "
        "trial, so fewer n_trials, or 0, spend less), or stop spending on this table."
    )


@dataclass(frozen=True)
class Standing:
    """Where a table stands: its budget and every spend, split into this run's and the earlier runs'."""

    source: str
    budget: float  # 0: no limit
    run_id: str = ""
    entries: tuple[Spend, ...] = field(default_factory=tuple)

    @property
    def total(self) -> float:
        return _sum(e.epsilon for e in self.entries)

    @property
    def this_run(self) -> float:
        return _sum(e.epsilon for e in self.entries if e.run_id == self.run_id)

    @property
    def spent_before(self) -> float:
        """Spent by other runs (before this one, or beside it)."""
        return _sum(e.epsilon for e in self.entries if e.run_id != self.run_id)

    @property
    def remaining(self) -> float | None:
        """Budget left (negative: over a budget lowered after the spends); None without a limit."""
        return _sum([self.budget, -self.total]) if self.budget > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for asset metadata and the report."""
        shown = self.entries[-SHOWN_ENTRIES:]
        return {
            "source": self.source,
            "budget_epsilon": self.budget,
            "budget": f"ε = {_eps(self.budget)}" if self.budget > 0 else "no limit (0); spends are still recorded",
            "spent_before_this_run": self.spent_before,
            "this_run": self.this_run,
            "total": self.total,
            "remaining": self.remaining,
            "by_kind": spent_by_kind(self.entries),
            "runs": len({e.run_id for e in self.entries}),
            "entries": [e.to_dict() for e in shown],
            "entries_not_shown": len(self.entries) - len(shown),
            "composition": COMPOSITION_RULE,
            "not_counted": NOT_COUNTED,
        }


def ddl_path(dialect: str):
    return ddl.ddl_path("privacy_ledger", dialect, "privacy-ledger")


def ensure_ledger_table(engine: sa.Engine) -> sa.Table:
    """Create the ledger table from its DDL file when missing; return it reflected."""
    return ddl.ensure_table(engine, LEDGER_TABLE, ddl_path(engine.dialect.name))


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


class PrivacyLedger(ddl.TableStore):
    """The privacy ledger at a SQLAlchemy `url` (SQLite or PostgreSQL); its table is created on first use."""

    ensure = staticmethod(ensure_ledger_table)

    def record(self, spend: Spend) -> int:
        """Append `spend`; return its id."""
        spend.validate()
        row = {"source": spend.source, "run_id": spend.run_id, "step": spend.step, "kind": spend.kind,
               "epsilon": float(spend.epsilon), "detail": spend.detail[:2000]}
        with self._table() as (engine, table), engine.begin() as conn:
            return int(conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one())

    def entries(self, source: str) -> list[Spend]:
        """Every spend on `source`, oldest first."""
        with self._table() as (engine, table), engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.source == source).order_by(table.c.id)).mappings().all()
        return [Spend(source=r["source"], run_id=r["run_id"], step=r["step"], kind=r["kind"], epsilon=float(r["epsilon"]),
                      detail=r["detail"] or "", created_at=_iso(r["created_at"]), id=int(r["id"])) for r in rows]

    def spent(self, source: str) -> float:
        """ε spent on `source` so far: the sum of its spends (basic composition, see the module docstring)."""
        return _sum(e.epsilon for e in self.entries(source))

    def check(self, source: str, planned: float, budget: float, what: str = "this step") -> None:
        """Refuse (`LedgerRefusal`, naming `what` the step is) a step that plans to spend `planned` on `source` when
        the spends so far plus `planned` exceed `budget`; a budget of 0 means no limit. Records nothing (the step
        records what it really spent once it has spent it)."""
        planned, budget = _check_number("planned epsilon", planned), _check_number("privacy budget", budget)
        if planned == 0 or budget == 0:
            return  # nothing to spend, or no limit: nothing to refuse, whatever was spent before
        refused = refusal(source, planned, budget, self.entries(source), what)
        if refused is not None:
            raise refused

    def standing(self, source: str, budget: float, run_id: str = "") -> Standing:
        """The table's budget and spends, with `run_id`'s own apart."""
        return Standing(source, float(budget), run_id, tuple(self.entries(source)))
