"""What the source database lets a read do besides reading: the role it runs as, and functions a view would call.

Pure logic: no Dagster here. A read-only transaction stops writes to tables, but not everything with a side effect:
on PostgreSQL a superuser, or a member of `pg_execute_server_program` / `pg_write_server_files` /
`pg_read_server_files`, can run `COPY … TO PROGRAM` (a shell command) or read and write server files from inside a
function that a view's `WHERE` calls, read-only transaction or not. So, before anything is read:

* `privileged_role_reasons` reads the attributes and memberships of both `session_user` (who logged in) and
  `current_user` (who the session acts as: a role's `SET role` default can change it) and says what makes either
  privileged; the read is refused unless the request sets `allow_privileged_role` (and the audit records it);
* `side_effect_functions` lists the user-defined functions that reading a relation would call (through a view's
  definition, views it reads, operators it uses, and row-level-security policies) and that could have side effects:
  VOLATILE ones, SECURITY DEFINER ones (they run with their owner's rights) and, outside extensions, ones in an
  untrusted language. The read is refused unless the request sets `allow_side_effect_functions`.

Other dialects have no such catalog the platform knows how to read: they are refused unless `allow_privileged_role`
is set, because an unverified role is an unverified one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

SERVER_ROLES = ("pg_execute_server_program", "pg_write_server_files", "pg_read_server_files")

_ROLE_QUERY = sa.text(
    """
    SELECT who.kind, who.name, r.rolname, r.rolsuper, r.rolcreaterole
    FROM (VALUES ('session_user', session_user::text), ('current_user', current_user::text)) AS who(kind, name)
    JOIN pg_catalog.pg_roles r ON pg_catalog.pg_has_role(who.name, r.oid, 'MEMBER')
    WHERE r.rolsuper OR (r.rolcreaterole AND r.rolname = who.name) OR r.rolname = ANY(:server_roles)
    """
)

# Functions reached from a relation: views' rewrite rules (recursively through the relations they read), operators
# those use, and row-level-security policies. Only user-defined ones (not pg_catalog / information_schema) that
# are volatile, security definer, or (outside an extension) written in an untrusted language.
_FUNCTION_QUERY = sa.text(
    """
    WITH RECURSIVE rels(oid) AS (
        SELECT CAST(:relation AS regclass)::oid
        UNION
        SELECT d.refobjid FROM rels
        JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = rels.oid
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid
             AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> rels.oid
    ),
    deps(classid, objid) AS (
        SELECT 'pg_catalog.pg_rewrite'::regclass, rw.oid FROM rels JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = rels.oid
        UNION
        SELECT 'pg_catalog.pg_policy'::regclass, p.oid FROM rels JOIN pg_catalog.pg_policy p ON p.polrelid = rels.oid
    ),
    funcs(oid) AS (
        SELECT d.refobjid FROM deps JOIN pg_catalog.pg_depend d ON d.classid = deps.classid AND d.objid = deps.objid
        WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass
        UNION
        SELECT o.oprcode::oid FROM deps JOIN pg_catalog.pg_depend d ON d.classid = deps.classid AND d.objid = deps.objid
        JOIN pg_catalog.pg_operator o ON o.oid = d.refobjid
        WHERE d.refclassid = 'pg_catalog.pg_operator'::regclass
    )
    SELECT p.oid::regprocedure::text AS name, p.provolatile = 'v' AS volatile, p.prosecdef AS security_definer,
           NOT l.lanpltrusted AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_depend e
               WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e'
           ) AS untrusted
    FROM funcs JOIN pg_catalog.pg_proc p ON p.oid = funcs.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_catalog.pg_language l ON l.oid = p.prolang
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    ORDER BY 1
    """
)


@dataclass(frozen=True)
class RoleCheck:
    """Who a read runs as and what makes that role privileged (empty: nothing)."""

    role: str
    reasons: tuple[str, ...]

    @property
    def privileged(self) -> bool:
        return bool(self.reasons)

    def describe(self) -> str:
        """One line for the audit: the role, and why it is privileged when it is."""
        return self.role if not self.reasons else f"{self.role} ({'; '.join(self.reasons)})"


def privileged_role_reasons(conn: sa.Connection) -> RoleCheck:
    """The role of `conn` and every reason it is privileged (see the module text). Any dialect but PostgreSQL and
    SQLite (no roles, no server-side programs) comes back privileged: the platform cannot check it."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return RoleCheck("sqlite (no database roles)", ())
    if dialect != "postgresql":
        return RoleCheck(f"{dialect} role", (f"the platform cannot read {dialect} role privileges, so it cannot rule them out",))
    session_user, current_user = conn.execute(sa.text("SELECT session_user::text, current_user::text")).one()
    found: dict[str, list[str]] = {}  # "session_user alice" -> reasons, in query order
    for kind, name, member_of, is_super, create_role in conn.execute(_ROLE_QUERY, {"server_roles": list(SERVER_ROLES)}):
        if member_of == name and is_super:
            reason = "is a superuser"
        elif is_super:
            reason = f"can SET ROLE to superuser {member_of}"
        elif member_of == name and create_role:
            reason = f"has CREATEROLE (it can grant itself {SERVER_ROLES[0]})"
        else:
            reason = f"is a member of {member_of}"
        if session_user == current_user:
            if kind == "current_user":
                continue  # one role: said once
            kind = "role"
        found.setdefault(f"{kind} {name}", []).append(reason)
    reasons: list[str] = []
    for who, whys in found.items():
        # A superuser is a member of every role: its own attribute says it all.
        for why in ["is a superuser"] if "is a superuser" in whys else sorted(set(whys)):
            reasons.append(f"{who} {why}")
    role = session_user if session_user == current_user else f"{session_user} acting as {current_user}"
    return RoleCheck(role, tuple(reasons))


@dataclass(frozen=True)
class RiskyFunction:
    name: str  # regprocedure text: schema-qualified where needed, with argument types
    volatile: bool
    security_definer: bool
    untrusted: bool

    def describe(self) -> str:
        why = [w for w, on in (("VOLATILE", self.volatile), ("SECURITY DEFINER", self.security_definer),
                               ("untrusted language", self.untrusted)) if on]
        return f"{self.name} ({', '.join(why)})"


def side_effect_functions(conn: sa.Connection, schema: str | None, name: str) -> list[RiskyFunction]:
    """User-defined functions that reading `schema.name` would call and that could have side effects (see the
    module text). Only PostgreSQL has them; empty elsewhere."""
    if conn.dialect.name != "postgresql":
        return []
    preparer = conn.dialect.identifier_preparer
    relation = preparer.quote(name) if schema is None else f"{preparer.quote_schema(schema)}.{preparer.quote(name)}"
    rows = conn.execute(_FUNCTION_QUERY, {"relation": relation}).all()
    return [RiskyFunction(r.name, r.volatile, r.security_definer, r.untrusted)
            for r in rows if r.volatile or r.security_definer or r.untrusted]
