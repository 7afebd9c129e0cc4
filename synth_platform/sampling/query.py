"""The SQL of a read: the counting query and the seeded sampling SELECT, built with SQLAlchemy Core from the reflected
table and its `Relation` (kind, readable columns, how a row is named). Pure logic: no Dagster, nothing executed here.

Sampling happens in the database: rows are ordered by a seeded hash of what names them (`seeded_hash`: the primary
key, ctid, rowid, or the row's readable values, see `relation.py`) and the first n kept; `sample_fraction` keeps
each row independently (`TABLESAMPLE BERNOULLI … REPEATABLE` where PostgreSQL allows it, else a seeded hash below a
cutoff); large PostgreSQL reads are pre-thinned (`_thinned`) so the ordering runs on a few n rows, not all M.

The names the query gives its own columns and subqueries (`InternalNames`) start with a prefix no column of the
table starts with (compared case-insensitively, as SQLite compares names), so they cannot collide with a column.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from synth_platform.sampling.column_types import DRIVER, ColumnPlan, column_expression
from synth_platform.sampling.relation import Relation, assumed_relation
from synth_platform.sampling.request import LIST_OPS, REDACTED, Filter, SampleRequest, _jsonable

HASH_PRIME = 2_147_483_647  # 2**31 - 1: products of two values below it stay inside SQLite's 64-bit integers
SQLITE_ROW_HASH = "synth_row_hash"  # the function `sqlite_row_hash` is registered as on SQLite read connections


@dataclass(frozen=True)
class InternalNames:
    """The labels and aliases the query builder uses; each is `prefix` + a word."""

    prefix: str

    @property
    def stratum(self) -> str:
        return f"{self.prefix}stratum"

    @property
    def key(self) -> str:
        return f"{self.prefix}key"

    @property
    def rn(self) -> str:
        return f"{self.prefix}rn"

    @property
    def ranked(self) -> str:
        return f"{self.prefix}ranked"

    @property
    def sampled(self) -> str:
        return f"{self.prefix}sampled"

    @property
    def thinned(self) -> str:
        return f"{self.prefix}thinned"


def internal_names(columns: Iterable[str]) -> InternalNames:
    """Names distinct from every column: `__synth_`, or `__synth1_`, `__synth2_`, … when a column (compared in
    lower case) starts with it. Each column starts with at most one of these prefixes, so the search ends after at
    most as many steps as there are columns, and no internal name equals a column name."""
    taken = [str(c).lower() for c in columns]
    prefix, n = "__synth_", 0
    while any(c.startswith(prefix) for c in taken):
        n += 1
        prefix = f"__synth{n}_"
    return InternalNames(prefix)


def sqlite_row_hash(seed: int, *values: Any) -> int:
    """A seeded, deterministic hash of a row's values in [0, HASH_PRIME): blake2b keyed by the seed over each value
    tagged with its storage class and length (so (1, 'a') and ('1', 'a'), or ('ab', 'c') and ('a', 'bc'), differ)."""
    digest = hashlib.blake2b(digest_size=8, key=int(seed).to_bytes(8, "little", signed=True))
    for value in values:
        if value is None:
            encoded = b"n"
        elif isinstance(value, bytes):
            encoded = b"b" + value
        elif isinstance(value, str):
            encoded = b"s" + value.encode("utf-8", "surrogatepass")
        elif isinstance(value, float):
            encoded = b"f" + repr(value).encode()
        else:
            encoded = b"i" + str(value).encode()
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return int.from_bytes(digest.digest(), "big") % HASH_PRIME


@dataclass
class CompiledQuery:
    statement: sa.Select
    shape: str
    parameters: dict[str, Any]
    redacted_parameters: dict[str, Any]
    query_hash: str


def _condition(column: sa.ColumnElement, item: Filter, index: int) -> sa.ColumnElement[bool]:
    name = f"f{index}"
    kind = column.type
    if item.op == "is null":
        return column.is_(None)
    if item.op == "is not null":
        return column.is_not(None)
    if item.op in LIST_OPS:
        param = sa.bindparam(name, list(item.value), expanding=True, type_=kind)
        return column.in_(param) if item.op == "in" else column.not_in(param)
    if item.op == "between":
        return column.between(sa.bindparam(f"{name}_lo", item.value[0], type_=kind), sa.bindparam(f"{name}_hi", item.value[1], type_=kind))
    param = sa.bindparam(name, item.value, type_=kind)
    return {
        "=": column == param, "!=": column != param, "<": column < param,
        "<=": column <= param, ">": column > param, ">=": column >= param,
    }[item.op]


def identity_text(source: sa.FromClause, relation: Relation) -> sa.ColumnElement:
    """PostgreSQL: the text naming a row of `source`: its key, its system row id, or its readable values."""
    if relation.key:
        return sa.func.concat_ws("|", *[sa.cast(source.c[name], sa.Text) for name in relation.key])
    if len(relation.row_id) == 1:
        return sa.cast(sa.literal_column(relation.row_id[0]), sa.Text)
    if relation.row_id:
        return sa.func.concat_ws("|", *[sa.cast(sa.literal_column(name), sa.Text) for name in relation.row_id])
    return sa.cast(sa.func.row(*[source.c[name] for name in relation.readable]), sa.Text)


def seeded_hash(source: sa.FromClause, relation: Relation, seed: int, prefix: str = "hash") -> sa.ColumnElement:
    """A deterministic pseudo-random key per row, fixed by `seed`: ordering by it is a seeded shuffle."""
    if relation.dialect == "postgresql":
        return sa.func.md5(identity_text(source, relation).concat(sa.bindparam(f"{prefix}_seed", f"|{seed}", type_=sa.Text)))
    if relation.dialect == "sqlite" and not relation.row_id:
        values = [source.c[name] for name in relation.readable]
        return getattr(sa.func, SQLITE_ROW_HASH)(sa.bindparam(f"{prefix}_seed", seed, type_=sa.Integer), *values, type_=sa.Integer)
    # SQLite tables and others: an integer mix of the rowid with bound, seed-derived constants (affine steps modulo a
    # prime, separated by a xorshift, so different seeds give unrelated orders).
    rng = np.random.default_rng(seed)
    a1, b1, a2, b2 = (int(v) for v in rng.integers(1, HASH_PRIME - 1, size=4))
    row = sa.literal_column(relation.row_id[0] if relation.row_id else "rowid")
    p = sa.bindparam(f"{prefix}_p", HASH_PRIME, type_=sa.Integer)
    h = (row % p * sa.bindparam(f"{prefix}_a1", a1, type_=sa.Integer) + sa.bindparam(f"{prefix}_b1", b1, type_=sa.Integer)) % p
    shifted = h.op(">>")(sa.bindparam(f"{prefix}_s", 13, type_=sa.Integer))
    h = h.op("|")(shifted) - h.op("&")(shifted)  # xor without a xor operator
    return (h * sa.bindparam(f"{prefix}_a2", a2, type_=sa.Integer) + sa.bindparam(f"{prefix}_b2", b2, type_=sa.Integer)) % p


def _int8_cutoff(p: float) -> int:
    """Keep h < cutoff: a share p of PostgreSQL's 64-bit hash range [-2^63, 2^63)."""
    return -(2**63) + min(int(p * 2.0**64), 2**64 - 1)


def _fraction(table: sa.Table, relation: Relation, request: SampleRequest, names: InternalNames) -> tuple[sa.FromClause, list[sa.ColumnElement]]:
    """The FROM clause (the table, or its TABLESAMPLE on PostgreSQL) and extra WHERE conditions for the fraction."""
    if request.sample_fraction is None or request.sample_fraction >= 1.0:
        return table, []
    if relation.dialect == "postgresql":
        if relation.tablesample:
            sampled = table.tablesample(
                sa.func.bernoulli(sa.bindparam("fraction_pct", request.sample_fraction * 100.0, type_=sa.Float)),
                name=names.sampled,
                seed=sa.bindparam("fraction_seed", request.seed, type_=sa.Integer),
            )
            return sampled, []
        # Views and foreign tables: a seeded 64-bit hash of the row's name below a cutoff (Jenkins hash; the order
        # is by md5, an unrelated function, so which rows are kept says nothing about their order).
        hashed = sa.func.hashtextextended(identity_text(table, relation), sa.bindparam("fraction_seed", request.seed, type_=sa.BigInteger), type_=sa.BigInteger)
        return table, [hashed < sa.bindparam("fraction_cutoff", _int8_cutoff(request.sample_fraction), type_=sa.BigInteger)]
    key = seeded_hash(table, relation, request.seed + 1, prefix="fraction")
    bound = sa.bindparam("fraction_bound", int(request.sample_fraction * HASH_PRIME), type_=sa.Integer)
    return table, [key < bound]


def _thinned(table: sa.Table, relation: Relation, seed: int, p: float, names: InternalNames) -> tuple[sa.FromClause, list[sa.ColumnElement]]:
    """The FROM clause and extra WHERE condition that keep each row of `table` independently with probability `p`.

    With a readable primary key: `hashint8extended(key, seed)` (one integer key column) or `hashtextextended(the
    key text, seed)` below a bound cutoff. Both are PostgreSQL's 64-bit Jenkins hashes (PostgreSQL 11+), uniform over
    the int8 range, so P(kept) = p; they depend on the key and seed only, so, like the md5 order, the same rows are
    kept after UPDATE / VACUUM FULL / CLUSTER move them. Without one, on tables and materialized views:
    `TABLESAMPLE BERNOULLI(100·p) REPEATABLE(seed)` (it hashes each tuple's TID with the seed; the md5 order of such
    a table is of the ctid too, so a physical rewrite changes the sample either way), cheaper still: no expression
    per row. Views and foreign tables: `hashtextextended` of the row's readable values below the cutoff."""
    thin_seed = sa.bindparam("thin_seed", seed, type_=sa.BigInteger)
    cutoff = sa.bindparam("thin_cutoff", _int8_cutoff(p), type_=sa.BigInteger)
    if relation.key:
        key = relation.key
        if len(key) == 1 and isinstance(table.c[key[0]].type, sa.Integer):
            hashed = sa.func.hashint8extended(sa.cast(table.c[key[0]], sa.BigInteger), thin_seed, type_=sa.BigInteger)
        else:
            hashed = sa.func.hashtextextended(identity_text(table, relation), thin_seed, type_=sa.BigInteger)
        return table, [hashed < cutoff]
    if relation.tablesample:
        sampled = table.tablesample(
            sa.func.bernoulli(sa.bindparam("thin_pct", p * 100.0, type_=sa.Float)),
            name=names.thinned,
            seed=sa.bindparam("thin_seed", seed, type_=sa.Integer),
        )
        return sampled, []
    return table, [sa.func.hashtextextended(identity_text(table, relation), thin_seed, type_=sa.BigInteger) < cutoff]


def finish(statement: sa.Select, engine: sa.Engine, request: SampleRequest) -> CompiledQuery:
    compiled = statement.compile(dialect=engine.dialect)
    shape = str(compiled)
    parameters = {k: _jsonable(v) for k, v in compiled.params.items()}
    sensitive_columns = request.all_sensitive_columns
    sensitive = {f"f{i}" for i, f in enumerate(request.filters) if f.column in sensitive_columns}
    if request.stratify_by in sensitive_columns:
        sensitive |= {k.rsplit("_", 1)[0] for k in parameters if k.startswith("stratum_")}
    redacted = {
        k: (REDACTED if k in sensitive or k.rsplit("_", 1)[0] in sensitive else v) for k, v in parameters.items()
    }
    digest = hashlib.sha256((shape + "\n" + json.dumps(redacted, sort_keys=True, default=str)).encode()).hexdigest()
    return CompiledQuery(statement, shape, parameters, redacted, digest)


def build_queries(table: sa.Table, engine: sa.Engine, request: SampleRequest, relation: Relation | None = None):
    """The counting query (matched rows, per stratum when stratified) and a function turning its result into the
    sampling SELECT. `relation` (from `relation.describe_relation`) says how rows are named and columns read;
    without it the reflected table is taken for a table the role reads whole (`assumed_relation`).

    `sample_query(limit, quotas, thin=p)` (PostgreSQL only) first keeps each row with probability p (`_thinned`: a
    seeded 64-bit hash of the primary key below a cutoff, TABLESAMPLE BERNOULLI without a key, or a seeded hash of
    the row's values for views), then orders by the seeded md5 key and keeps the first `limit` rows (per-stratum
    quotas) as usual. If that read holds at least `limit` rows (each stratum at least its quota), the result is
    still a simple random sample of `limit` of the M matched rows (stratified: one per stratum, independent across
    strata): inclusion is independent per row with the same p, so given k survivors they are a uniformly random
    k-subset of the M; the md5 order is unrelated to which rows survived (Jenkins hash or the TID sampler vs md5,
    unrelated functions), so the first `limit` survivors by it are a uniformly random `limit`-subset of the k; and
    a uniform subset of a uniform subset is a uniform subset of the whole. Whether the read came up short depends
    on k only, so re-running unthinned in that case (itself a simple random sample) leaves the overall draw
    uniform. Thinned and unthinned reads with the same seed pick different (equally random) rows; the same seed on
    the same rows picks the same ones (for keyed tables whatever their physical layout, as without thinning)."""
    dialect = engine.dialect.name
    relation = relation or assumed_relation(table, dialect)
    names = internal_names([c.name for c in table.columns] + list(relation.columns))
    read_columns = list(request.columns) or relation.kept

    def plan_of(name: str) -> ColumnPlan:
        return relation.columns.get(name) or ColumnPlan(name, "", DRIVER)

    def stratum_of(source: sa.FromClause) -> sa.ColumnElement:
        assert request.stratify_by is not None
        return column_expression(plan_of(request.stratify_by), source.c[request.stratify_by], dialect)

    source, extra = _fraction(table, relation, request, names)
    conditions = [_condition(source.c[f.column], f, i) for i, f in enumerate(request.filters)] + extra
    if request.stratify_by is not None:
        stratum = stratum_of(source)
        count_query = sa.select(stratum.label(names.stratum), sa.func.count()).select_from(source).where(*conditions).group_by(stratum)
    else:
        count_query = sa.select(sa.func.count()).select_from(source).where(*conditions)

    def sample_query(limit: int, quotas: list[tuple[Any, int]] | None, thin: float | None = None) -> CompiledQuery:
        source, extra = _fraction(table, relation, request, names)
        if thin is not None:
            if dialect != "postgresql" or source is not table or extra:
                raise ValueError("Pre-thinning is for PostgreSQL requests without sample_fraction only.")
            source, extra = _thinned(table, relation, request.seed, thin, names)
        conditions = [_condition(source.c[f.column], f, i) for i, f in enumerate(request.filters)] + extra
        selected = [column_expression(plan_of(name), source.c[name], dialect).label(name) for name in read_columns]
        key = seeded_hash(source, relation, request.seed)
        if quotas is None:
            statement = sa.select(*selected).select_from(source).where(*conditions).order_by(key).limit(limit)
            return finish(statement, engine, request)
        stratum = stratum_of(source)
        inner = (
            sa.select(
                *selected,
                stratum.label(names.stratum),
                key.label(names.key),
                sa.func.row_number().over(partition_by=stratum, order_by=key).label(names.rn),
            )
            .select_from(source)
            .where(*conditions)
            .subquery(names.ranked)
        )
        whens = []
        for i, (value, quota) in enumerate(quotas):
            match = inner.c[names.stratum].is_(None) if value is None else (
                inner.c[names.stratum] == sa.bindparam(f"stratum_{i}", value, type_=stratum.type)
            )
            whens.append((match, sa.bindparam(f"quota_{i}", quota, type_=sa.Integer)))
        quota_expr = sa.case(*whens, else_=sa.literal(0, type_=sa.Integer)) if whens else sa.literal(0)
        statement = (
            sa.select(*[inner.c[name] for name in read_columns])
            .where(inner.c[names.rn] <= quota_expr)
            .order_by(inner.c[names.key])
            .limit(limit)
        )
        return finish(statement, engine, request)

    return count_query, sample_query


def proportional_quotas(counts: list[tuple[Any, int]], n: int) -> list[tuple[Any, int]]:
    """Largest-remainder allocation of `n` rows over strata: each stratum within one row of its exact share."""
    total = sum(c for _, c in counts)
    if total == 0:
        return [(v, 0) for v, _ in counts]
    n = min(n, total)
    exact = [n * c / total for _, c in counts]
    quotas = [int(math.floor(e)) for e in exact]
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in order[: n - sum(quotas)]:
        quotas[i] += 1
    return [(counts[i][0], min(quotas[i], counts[i][1])) for i in range(len(counts))]
